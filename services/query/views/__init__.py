"""Read views of the query service (CQRS): every statement it runs, as raw SQL with
$n parameters, over the tables the costing engine writes and the rollups kept by the
triggers of 0003_query.sql. Each function takes a connection and the tenant; every
statement is scoped by ``tenant_id``. One module per concern:

* ``sales_list``: the filtered, sorted, paginated list and its summary;
* ``sale_detail``: one sale with its lines, allocations and history;
* ``products``: margins per product and a product's stock;
* ``shortages``: short lines in demand order, and the shortage records (open/resolved);
* ``stock_moves``: a product's stock transactions (the ledger) with the running on hand;
* ``events``: an event's status.

The names the routes, params, tests and benchmarks use are importable from here.
"""

from services.query.views.events import event_status
from services.query.views.products import Stock, product_margins, product_stock
from services.query.views.sale_detail import SaleDetail, sale_detail
from services.query.views.sales_list import (
    SORT_KEYS,
    SalesQuery,
    Statement,
    direct_summary_sql,
    sales_list_statement,
    sales_page_sql,
    sales_summary_statement,
)
from services.query.views.shortages import shortage_records, shortages
from services.query.views.stock_moves import MOVES_ALL, product_id, stock_moves

__all__ = [
    "MOVES_ALL",
    "SORT_KEYS",
    "SaleDetail",
    "SalesQuery",
    "Statement",
    "Stock",
    "direct_summary_sql",
    "event_status",
    "product_id",
    "product_margins",
    "product_stock",
    "sale_detail",
    "sales_list_statement",
    "sales_page_sql",
    "sales_summary_statement",
    "shortage_records",
    "shortages",
    "stock_moves",
]

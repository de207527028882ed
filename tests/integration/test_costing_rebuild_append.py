"""The rebuild's appended groups (``services/costing/append.py``) write exactly what the
engine's group apply writes: the same log rebuilt both ways gives the same rows in every
table the rebuild fills (ids and timestamps aside, rows named by their business keys),
the same rollups, and sale cost keys that need no folding."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.costing.rebuild import rebuild_in_process
from shared.events import Event, LotReceived, ProductUpserted, SaleLine, SaleRemoved, SaleUpserted
from tests.histories import history as seeded_history
from tests.histories import log_events

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("tail_recost")]


_SALE = "(SELECT concat_ws('|', s.source, s.type, s.external_id) FROM sales s WHERE s.id = {})"
_SKU = "(SELECT p.sku FROM products p WHERE p.id = {})"
_PT = "tenant_id, day, product_id, lines, quantity_sold, quantity_returned, revenue, cost, shortage_qty"
#: Every table the rebuild fills, as rows of business keys and values (a multiset each).
TABLES = {
    "sales": "SELECT source, type, external_id, status, version, doc_number, txn_date, source_created_at, customer, "
    "currency, exchange_rate, revenue, cost, has_shortage FROM sales WHERE tenant_id = $1",
    "sale_lines": f"SELECT {_SALE.format('l.sale_id')}, line_no, sku, {_SKU.format('l.product_id')}, description, "
    "kind, quantity, gross_revenue, revenue, cost, shortage_qty, shortage_cost, flags, costed, candidate, in_demand, "
    "d_start, d_end, txn_date FROM sale_lines l WHERE tenant_id = $1",
    "allocations": f"SELECT {_SALE.format('l.sale_id')}, l.line_no, lot.lot_number, a.quantity "
    "FROM allocations a JOIN sale_lines l ON l.id = a.line_id JOIN lots lot ON lot.id = a.lot_id "
    "WHERE a.tenant_id = $1",
    "lots": f"SELECT {_SKU.format('lot.product_id')}, lot_number, is_return, quantity, unit_cost, received_at, "
    "version, s_start, s_end, remaining, (SELECT l.line_no FROM sale_lines l WHERE l.id = lot.return_line_id) "
    "FROM lots lot WHERE tenant_id = $1",
    "products": "SELECT sku, defined, name, standard_cost, version, received_qty, received_value, wac, "
    "has_cost_basis, demand_total, supply_total FROM products WHERE tenant_id = $1",
    "stock_moves": f"SELECT {_SKU.format('m.product_id')}, moved_at, kind, quantity, lot_number, "
    f"{_SALE.format('m.sale_id')}, line_no, event_id FROM stock_moves m WHERE tenant_id = $1",
    "sale_versions": f"SELECT {_SALE.format('v.sale_id')}, version, event_id, event_type, applied, note "
    "FROM sale_versions v WHERE tenant_id = $1",
    "cost_revisions": f"SELECT {_SALE.format('r.sale_id')}, line_no, old_cost, new_cost, cause, event_id "
    "FROM cost_revisions r WHERE tenant_id = $1",
    "shortage_records": f"SELECT {_SALE.format('r.sale_id')}, line_no, sku, quantity_short, shortage_cost, "
    "resolved_at IS NULL FROM shortage_records r WHERE tenant_id = $1 "
    "AND EXISTS (SELECT FROM sales s WHERE s.id = r.sale_id)",
    "processed_events": "SELECT event_id, event_type FROM processed_events WHERE tenant_id = $1",
    # The rollups the query service reads: what the current rows contribute (the deltas of
    # rows deleted by a reset cancel out; those of products deleted name no product).
    "product_totals": f"SELECT day, {_SKU.format('t.product_id')}, sum(lines), sum(quantity_sold), "
    f"sum(quantity_returned), sum(revenue), sum(cost), sum(shortage_qty) FROM (SELECT {_PT} FROM product_totals "
    f"UNION ALL SELECT {_PT} FROM product_totals_delta) t WHERE tenant_id = $1 "
    "AND EXISTS (SELECT FROM products p WHERE p.id = t.product_id) GROUP BY 1, 2 "
    "HAVING sum(lines) <> 0 OR sum(revenue) <> 0 OR sum(cost) <> 0",
    "sales_totals": "SELECT day, status, type, source, has_shortage, sum(sales), sum(revenue), sum(cost) "
    "FROM (SELECT tenant_id, day, status, type, source, has_shortage, sales, revenue, cost FROM sales_totals "
    "UNION ALL SELECT tenant_id, day, status, type, source, has_shortage, sales, revenue, cost "
    "FROM sales_totals_delta) t WHERE tenant_id = $1 GROUP BY 1, 2, 3, 4, 5 "
    "HAVING sum(sales) <> 0 OR sum(revenue) <> 0 OR sum(cost) <> 0",
}
# A sale not marked stale has keys equal to its revenue and cost (0014_cost_keys_folded.sql).
STALE_KEYS = """
SELECT count(*) FROM sales s LEFT JOIN sale_cost_keys k ON k.sale_id = s.id
WHERE s.tenant_id = $1 AND (k.revenue, k.cost) IS DISTINCT FROM (s.revenue, s.cost)
  AND NOT EXISTS (SELECT FROM sale_cost_keys_stale x WHERE s.id = ANY (x.sale_ids))"""


async def _full_state(pool, tenant_id: uuid.UUID) -> dict[str, Counter]:
    async with pool.acquire() as conn:
        state = {}
        for name, sql in TABLES.items():
            rows = await conn.fetch(sql, tenant_id)
            state[name] = Counter(tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in rows)
        return state


async def _tenant(pool) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await pool.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, 'append', 'USD')", tenant_id)
    return tenant_id


async def _both_ways(pool, tenant_id: uuid.UUID, events: list[Event], batch: int) -> int:
    """Rebuild through the engine, then appending; assert the same state; the sales appended."""
    await log_events(pool, events)
    engine = await rebuild_in_process(pool, tenant_id, batch=batch, append=False)
    assert engine.failed == 0 and engine.appended == 0
    expected = await _full_state(pool, tenant_id)
    appended = await rebuild_in_process(pool, tenant_id, batch=batch)
    assert appended.failed == 0
    assert appended.applied == engine.applied == len(events)
    actual = await _full_state(pool, tenant_id)
    for name in TABLES:
        assert actual[name] == expected[name], name
    assert await pool.fetchval(STALE_KEYS, tenant_id) == 0
    return appended.appended


@pytest.mark.parametrize("batch", [1, 7, 64])
async def test_appended_groups_write_what_the_engine_writes(pool, batch) -> None:
    """Backdating, edits, voids, deletes, credit memos and shortages on few products."""
    tenant_id = await _tenant(pool)
    events = seeded_history(tenant_id, seed=11, sales=300)
    assert await _both_ways(pool, tenant_id, events, batch) > 0


async def test_appended_groups_with_undefined_products_and_no_cost_basis(pool) -> None:
    """Lines naming a product never defined (unmapped), a product without lots or standard
    cost (short, no cost basis), non-inventory lines, zero quantities."""
    tenant_id = await _tenant(pool)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    events: list[Event] = [
        ProductUpserted(tenant_id=tenant_id, occurred_at=t0, sku=sku, name=sku, version=1) for sku in ("A", "B", "C")
    ]
    events.append(
        LotReceived(
            tenant_id=tenant_id,
            occurred_at=t0,
            sku="A",
            lot_number="L1",
            quantity=Decimal(5),
            unit_cost=Decimal("2.50"),
            received_at=t0,
        )
    )
    for n in range(40):
        lines = [
            SaleLine(line_no=1, sku="A", quantity=Decimal(n % 3) / 2, revenue=Decimal("9.99")),
            SaleLine(line_no=2, sku="B", quantity=Decimal(1), revenue=Decimal(4)),
            SaleLine(line_no=3, sku="Z", quantity=Decimal(2), revenue=Decimal(3)),
            SaleLine(line_no=4, sku=None, kind="shipping", quantity=Decimal(1), revenue=Decimal(1)),
        ]
        events.append(
            SaleUpserted(
                tenant_id=tenant_id,
                occurred_at=t0,
                source="manual",
                sale_type="invoice",
                external_id=str(n),
                version=1,
                txn_date=(t0 + timedelta(days=n % 7)).date(),
                source_created_at=t0,
                lines=lines[: 1 + n % 4],
            )
        )
    events.append(
        SaleRemoved(
            tenant_id=tenant_id,
            occurred_at=t0,
            source="manual",
            sale_type="invoice",
            external_id="3",
            reason="voided",
            version=2,
        )
    )
    assert await _both_ways(pool, tenant_id, events, 10) > 0

"""SQL of the costing service: every statement it runs, as named constants with
$n parameters. One instance per transaction, bound to a connection and a tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg

from services.costing.order import DemandKey, SupplyKey
from shared.db import tenant_setting_sql

SaleKey = tuple[str, str, str]  # source, type, external_id

_DEMAND_KEY = "(txn_date, source_created_at, source, external_id_len, external_id, sale_type, line_no)"
# ORDER BY lists the columns (a row value in ORDER BY would be sorted, not read from the index).
_DEMAND_ORDER = "txn_date, source_created_at, source, external_id_len, external_id, sale_type, line_no"
_DEMAND_ORDER_DESC = ", ".join(f"{c} DESC" for c in _DEMAND_ORDER.split(", "))
_LINE_DEMAND_ORDER = ", ".join(f"l.{c}" for c in _DEMAND_ORDER.split(", "))  # of sale_lines l
_LINE_COLUMNS = (
    "id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue, revenue, cost, shortage_qty, "
    "flags, costed, candidate, in_demand, d_start, d_end, txn_date, source_created_at, source, external_id, sale_type"
)
_LOT_COLUMNS = "id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at, version, s_start, s_end, remaining"

# Why: a long-lived connection keeps the generic plan PostgreSQL settles on for a
# prepared statement (ours, and those inside triggers and foreign-key checks) after
# a few executions. Planned while a tenant's tables were small, those plans scan
# what has since grown, and every transaction got slower with the history (groups
# of 100 sales went from 60 ms to 1.3 s over 6,000 sales). Our statements' best
# plans depend on their arrays' sizes, so each is planned for its parameters.
# The planner is also told that the rows it probes are in memory (random_page_cost):
# with the default, deleting a backdate's ten thousand allocations by key was planned
# as a scan of every tenant's allocations. And the aggregates of the query service's
# triggers over a backdate's thousands of rows get the memory not to spill (work_mem).
PLAN_EACH_STATEMENT = ("SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL random_page_cost = 1.1; "
                       "SET LOCAL work_mem = '64MB'")
# (No per-row foreign-key checks run under it on the hot path: lines, versions,
# allocations and cost revisions check their references once per statement, 0010 and
# 0015_line_reference_checks.sql.)

RECORD_EVENTS = """
INSERT INTO processed_events (event_id, tenant_id, event_type) SELECT e.id, $1, e.type
FROM unnest($2::uuid[], $3::text[]) AS e(id, type)
ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""

ENSURE_PRODUCTS = """
INSERT INTO products (tenant_id, sku) SELECT $1, unnest($2::text[])
ON CONFLICT (tenant_id, sku) DO NOTHING"""

PRODUCT_IDS = "SELECT sku, id FROM products WHERE tenant_id = $1 AND sku = ANY($2::text[])"

# Why: every change to a product's allocations happens under its row lock, taken
# in id order so that transactions naming several products cannot deadlock.
LOCK_PRODUCTS = """
SELECT * FROM products WHERE tenant_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE"""

UPDATE_PRODUCT = """
UPDATE products SET defined = true, name = $2, qbo_item_id = $3, standard_cost = $4, version = $5, updated_at = now()
WHERE id = $1"""

UPDATE_PRODUCT_TOTALS = """
UPDATE products SET received_qty = $2, received_value = $3, wac = $4, has_cost_basis = $5,
       demand_total = $6, supply_total = $7, updated_at = now()
WHERE id = $1"""

# A new sale is inserted with its event's header (a removal's has none), so it is not
# written a second time by UPDATE_SALE_HEADERS, and with its revenue, so that setting its
# cost afterwards is a heap-only update (revenue is indexed for the query service's sort);
# the rows returned are the sales created.
ENSURE_SALES = """
INSERT INTO sales (tenant_id, source, type, external_id, version, doc_number, txn_date, source_created_at, customer,
                   currency, exchange_rate, revenue)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::date[], $8::timestamptz[],
                         $9::text[], $10::text[], $11::numeric[], $12::numeric[])
ON CONFLICT (tenant_id, source, type, external_id) DO NOTHING
RETURNING *"""

SALE_IDS = """
SELECT s.id, s.source, s.type, s.external_id
FROM sales s JOIN unnest($2::text[], $3::text[], $4::text[]) AS k(source, type, external_id)
  ON s.source = k.source AND s.type = k.type AND s.external_id = k.external_id
WHERE s.tenant_id = $1"""

# Why: a sale row serializes edits of that sale; taken in id order, always after the
# locks of its products.
LOCK_SALES_ROWS = "SELECT * FROM sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

SALE_LINE_PRODUCTS = """
SELECT DISTINCT product_id FROM sale_lines WHERE sale_id = ANY($1::bigint[]) AND product_id IS NOT NULL"""

LINES_BY_ID = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id = ANY($1::bigint[])"

POSTED_SALES = "SELECT id FROM sales WHERE id = ANY($1::bigint[]) AND status = 'posted'"

SALE_LINES = f"SELECT {_LINE_COLUMNS} FROM sale_lines WHERE sale_id = ANY($1::bigint[]) ORDER BY sale_id, line_no"

UPDATE_SALE_HEADERS = """
UPDATE sales s SET version = h.version, doc_number = h.doc_number, txn_date = h.txn_date,
       source_created_at = h.source_created_at, customer = h.customer, currency = h.currency,
       exchange_rate = h.exchange_rate, status = h.status, updated_at = now()
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::date[], $5::timestamptz[], $6::text[], $7::text[],
            $8::numeric[], $9::text[])
     AS h(id, version, doc_number, txn_date, source_created_at, customer, currency, exchange_rate, status)
WHERE s.id = h.id AND s.id = ANY($1::bigint[])"""

UPSERT_LINES = """
INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, product_id, description, kind, quantity, gross_revenue,
                        revenue, candidate, in_demand, txn_date, source_created_at, source, external_id, sale_type)
SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::numeric[],
                         $9::numeric[], $10::numeric[], $11::boolean[], $12::boolean[], $13::date[],
                         $14::timestamptz[], $15::text[], $16::text[], $17::text[])
ON CONFLICT (sale_id, line_no) DO UPDATE SET
    sku = EXCLUDED.sku, product_id = EXCLUDED.product_id, description = EXCLUDED.description, kind = EXCLUDED.kind,
    quantity = EXCLUDED.quantity, gross_revenue = EXCLUDED.gross_revenue, revenue = EXCLUDED.revenue,
    candidate = EXCLUDED.candidate, in_demand = EXCLUDED.in_demand, txn_date = EXCLUDED.txn_date,
    source_created_at = EXCLUDED.source_created_at, source = EXCLUDED.source, external_id = EXCLUDED.external_id,
    sale_type = EXCLUDED.sale_type,
    d_start = CASE WHEN EXCLUDED.in_demand THEN sale_lines.d_start END,
    d_end = CASE WHEN EXCLUDED.in_demand THEN sale_lines.d_end END,
    shortage_qty = CASE WHEN EXCLUDED.in_demand THEN sale_lines.shortage_qty ELSE 0 END,
    shortage_cost = CASE WHEN EXCLUDED.in_demand THEN sale_lines.shortage_cost ELSE 0 END
RETURNING id, sale_id, line_no"""

DELETE_LINES = "DELETE FROM sale_lines WHERE id = ANY($1::bigint[])"

DELETE_ALLOCATIONS_OF_LINES = "DELETE FROM allocations WHERE line_id = ANY($1::bigint[])"

RECORD_VERSIONS = """
INSERT INTO sale_versions (tenant_id, sale_id, version, event_id, event_type, applied, note)
SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::boolean[], $7::text[])"""

# Lines of a newly defined product join the demand.
MAP_PRODUCT_LINES = f"""
UPDATE sale_lines l SET kind = 'inventory',
       in_demand = (s.status = 'posted' AND s.type <> 'credit_memo' AND l.quantity > 0)
FROM sales s
WHERE l.product_id = $1 AND l.candidate AND l.kind = 'unmapped' AND s.id = l.sale_id
RETURNING l.id, l.in_demand, {_LINE_DEMAND_ORDER}"""

LOT = f"SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND lot_number = $2"

LOTS_BY_NUMBER = f"""
SELECT {_LOT_COLUMNS} FROM lots JOIN unnest($1::bigint[], $2::text[]) AS k(pid, number)
  ON product_id = k.pid AND lot_number = k.number"""

UPSERT_LOT = """
INSERT INTO lots (tenant_id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at, version, remaining)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
ON CONFLICT (product_id, lot_number) DO UPDATE SET
    quantity = EXCLUDED.quantity, unit_cost = EXCLUDED.unit_cost, received_at = EXCLUDED.received_at,
    version = EXCLUDED.version, return_line_id = EXCLUDED.return_line_id,
    remaining = LEAST(lots.remaining, EXCLUDED.quantity)
RETURNING id"""

UPSERT_RETURN_LOTS = """
INSERT INTO lots (tenant_id, product_id, lot_number, is_return, return_line_id, quantity, unit_cost, received_at,
                  remaining)
SELECT $1, r.product_id, r.lot_number, true, r.line_id, r.quantity, r.unit_cost, r.received_at, r.quantity
FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::numeric[], $6::numeric[], $7::timestamptz[])
     AS r(product_id, lot_number, line_id, quantity, unit_cost, received_at)
ON CONFLICT (product_id, lot_number) DO UPDATE SET
    quantity = EXCLUDED.quantity, unit_cost = EXCLUDED.unit_cost, received_at = EXCLUDED.received_at,
    return_line_id = EXCLUDED.return_line_id, remaining = LEAST(lots.remaining, EXCLUDED.quantity)"""

DELETE_LOTS = "DELETE FROM lots WHERE id = ANY($1::bigint[])"

RETURN_LOTS_OF_SALES = f"""
SELECT l.sale_id, {', '.join('r.' + c for c in _LOT_COLUMNS.split(', '))}
FROM lots r JOIN sale_lines l ON l.id = r.return_line_id WHERE l.sale_id = ANY($1::bigint[])"""

REPRICE_RETURN_LOTS = "UPDATE lots SET unit_cost = $2 WHERE product_id = $1 AND is_return AND unit_cost <> $2"

# --- the FIFO tail -----------------------------------------------------------------

DEMAND_PREDECESSOR_END = f"""
SELECT d_end FROM sale_lines WHERE product_id = $1 AND in_demand AND {_DEMAND_KEY} < ($2, $3, $4, $5, $6, $7, $8)
ORDER BY {_DEMAND_ORDER_DESC} LIMIT 1"""

# What re-costing a line needs of it (a backdate reads thousands of them): whether it
# moves (it comes at or after the changed demand key, $9-$15; NULLs: none moves) and
# its allocations, as arrays in lot id order.
TAIL_LINES = f"""
SELECT l.id, l.sale_id, l.line_no, l.kind, l.quantity, l.cost, l.shortage_qty, l.flags, l.costed, l.d_start, l.d_end,
       ({_LINE_DEMAND_ORDER}) >= ($9, $10, $11, $12, $13, $14, $15)
           IS TRUE AS moves,
       a.lot_ids, a.quantities
FROM sale_lines l
LEFT JOIN LATERAL (SELECT array_agg(a.lot_id ORDER BY a.lot_id) AS lot_ids,
                          array_agg(a.quantity ORDER BY a.lot_id) AS quantities
                   FROM allocations a WHERE a.line_id = l.id) a ON true
WHERE l.product_id = $1 AND l.in_demand
  AND ({_LINE_DEMAND_ORDER}) >= ($2, $3, $4, $5, $6, $7, $8)
ORDER BY {_LINE_DEMAND_ORDER}
LIMIT $16"""

# The first line (in demand order) that ends after a position: the one consuming the
# lot that covers the position, or else the first short line past it. Positions grow
# with the demand order, so every line after it ends after the position too. (No index
# on d_end: positions change on every re-cost, and an index on them would make each of
# those updates write every index of sale_lines instead of a heap-only tuple.)
FIRST_LINE_ENDING_AFTER = f"""
(SELECT {_DEMAND_ORDER} FROM sale_lines l JOIN allocations a ON a.line_id = l.id
 WHERE a.lot_id = (SELECT id FROM lots WHERE product_id = $1 AND s_end > $2 AND s_end > s_start
                   ORDER BY s_end LIMIT 1)
   AND l.in_demand AND l.d_end > $2
 ORDER BY {_DEMAND_ORDER} LIMIT 1)
UNION ALL
(SELECT {_DEMAND_ORDER} FROM sale_lines
 WHERE product_id = $1 AND shortage_qty > 0 AND in_demand AND d_end > $2
 ORDER BY {_DEMAND_ORDER} LIMIT 1)"""

SUPPLY_PREDECESSOR_END = """
SELECT s_end FROM lots WHERE product_id = $1 AND (received_at, lot_number) < ($2, $3)
ORDER BY received_at DESC, lot_number DESC LIMIT 1"""

TAIL_LOTS_FROM_KEY = f"""
SELECT {_LOT_COLUMNS} FROM lots
WHERE product_id = $1 AND ((received_at, lot_number) >= ($2, $3) OR (s_end > $4 AND s_start < $5))
ORDER BY received_at, lot_number"""

TAIL_LOTS_FROM_POSITION = f"""
SELECT {_LOT_COLUMNS} FROM lots WHERE product_id = $1 AND s_end > $2 AND s_start < $3
ORDER BY received_at, lot_number"""

# The first line (in demand order) consuming each of these lots.
FIRST_CONSUMERS = f"""
SELECT DISTINCT ON (a.lot_id) a.lot_id, l.product_id, {_LINE_DEMAND_ORDER}
FROM allocations a JOIN sale_lines l ON l.id = a.line_id
WHERE a.lot_id = ANY($1::bigint[]) AND l.in_demand
ORDER BY a.lot_id, {_LINE_DEMAND_ORDER}"""

ALLOCATIONS_OF_LINES = """
SELECT a.line_id, a.lot_id, a.quantity, lot.unit_cost FROM allocations a JOIN lots lot ON lot.id = a.lot_id
WHERE a.line_id = ANY($1::bigint[])"""

# (The line ids again as an index condition: joined with the pairs alone, the planner
# can only scan the allocations of every tenant.)
DELETE_ALLOCATION_PAIRS = """
DELETE FROM allocations a USING unnest($1::bigint[], $2::bigint[]) AS d(line_id, lot_id)
WHERE a.line_id = d.line_id AND a.lot_id = d.lot_id AND a.line_id = ANY($1::bigint[])"""

# The bulk of a backdate's writes, one statement (PostgreSQL refuses COPY into a table with
# row-level security); references checked per statement (0010).
INSERT_ALLOCATIONS = """
INSERT INTO allocations (tenant_id, line_id, lot_id, quantity)
SELECT $1, u.line_id, u.lot_id, u.quantity
FROM unnest($2::bigint[], $3::bigint[], $4::text[]::numeric[]) AS u(line_id, lot_id, quantity)"""

WRITE_LINES = """
UPDATE sale_lines l SET d_start = CASE WHEN u.moved THEN u.d_start ELSE l.d_start END,
       d_end = CASE WHEN u.moved THEN u.d_end ELSE l.d_end END,
       cost = u.cost, shortage_qty = u.shortage_qty, shortage_cost = u.shortage_cost,
       flags = string_to_array(u.flags, ','), costed = true
FROM unnest($1::bigint[], $2::boolean[], $3::text[]::numeric[], $4::text[]::numeric[], $5::text[]::numeric[],
            $6::text[]::numeric[], $7::text[]::numeric[], $8::text[])
     AS u(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags)
WHERE l.id = u.id AND l.id = ANY($1::bigint[])"""

WRITE_LOTS = """
UPDATE lots SET s_start = u.s_start, s_end = u.s_end, remaining = u.remaining
FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::numeric[]) AS u(id, s_start, s_end, remaining)
WHERE lots.id = u.id AND lots.id = ANY($1::bigint[])"""

# A long tail re-costed inside the database (recost.RECOST_TAIL_IN_DB_FROM): the same rules as
# fifo.allocate, line_cost and LineWriter.flush, set-based, so no per-line data crosses
# the wire. $1 product, $2-$8 first key of the tail, $9-$15 first key that moves (NULLs:
# none), $16 where moving lines start (x_d), $17 supply end, $18 WAC, $19 has a cost
# basis, $20-$21 the span of the laid tail (lots already laid), $22 tenant, $23-$24 cause,
# $25 the sales whose totals LineWriter.flush re-sums (not moved here).
# Allocations come from one merge of both axes: between two consecutive starts (of a
# line or a lot), the line and the lot are the last ones started, since both axes are
# contiguous and their positions grow with their orders.
# The totals of the sales whose lines it re-costed move here too, their rows locked in id
# order first (LineWriter.flush then re-sums the transaction's rewritten sales, and moves
# those of tails re-costed in Python). Returns the tail's line ids.
RECOST_TAIL_IN_DB = f"""
WITH tail AS MATERIALIZED (
    SELECT t.*,
           CASE WHEN t.moves THEN $16 + t.moved_through - t.quantity ELSE coalesce(t.d_start, 0) END AS new_start,
           CASE WHEN t.moves THEN $16 + t.moved_through ELSE coalesce(t.d_start, 0) + t.quantity END AS new_end
    FROM (SELECT l.id, l.sale_id, l.line_no, l.kind, l.quantity, l.cost, l.shortage_qty, l.flags, l.costed,
                 l.d_start, l.d_end, m.moves, row_number() OVER w AS n,
                 sum(CASE WHEN m.moves THEN l.quantity ELSE 0 END) OVER w AS moved_through
          FROM sale_lines l
          CROSS JOIN LATERAL (SELECT ({_LINE_DEMAND_ORDER}) >= ($9, $10, $11, $12, $13, $14, $15) IS TRUE AS moves) m
          WHERE l.product_id = $1 AND l.in_demand AND ({_LINE_DEMAND_ORDER}) >= ($2, $3, $4, $5, $6, $7, $8)
          WINDOW w AS (ORDER BY {_LINE_DEMAND_ORDER} ROWS UNBOUNDED PRECEDING)) t
), supply AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY lot.s_start) AS n, lot.id, lot.s_start, lot.s_end,
           CASE WHEN lot.is_return THEN $18 ELSE lot.unit_cost END AS unit_cost
    FROM lots lot WHERE lot.product_id = $1 AND lot.s_end > $20 AND lot.s_start < $21 AND lot.s_end > lot.s_start
), segments AS (
    SELECT at, lead(at) OVER o AS next_at, max(line_n) OVER o AS line_n, max(line_end) OVER o AS line_end,
           max(lot_n) OVER o AS lot_n, max(lot_end) OVER o AS lot_end
    FROM (SELECT new_start AS at, n AS line_n, new_end AS line_end, NULL::bigint AS lot_n, NULL::numeric AS lot_end
          FROM tail
          UNION ALL
          SELECT s_start, NULL, NULL, n, s_end FROM supply) starts
    WINDOW o AS (ORDER BY at)
), wanted AS MATERIALIZED (  -- a line and a lot overlap in exactly one segment
    SELECT t.n, t.id AS line_id, s.id AS lot_id, s.unit_cost, least(g.next_at, g.line_end, g.lot_end) - g.at AS quantity
    FROM segments g JOIN supply s ON s.n = g.lot_n JOIN tail t ON t.n = g.line_n
    WHERE g.at < g.line_end AND g.at < g.lot_end AND (g.next_at > g.at OR g.next_at IS NULL)
), priced AS MATERIALIZED (
    SELECT l.*, c.shortage, coalesce(v.value, 0) + c.shortage * $18 AS new_cost, c.shortage * $18 AS shortage_cost,
           array_remove(ARRAY[CASE WHEN l.kind = 'unmapped' THEN 'unmapped'
                                   WHEN l.kind IN ('non_inventory', 'service', 'shipping') THEN 'non_inventory' END,
                              CASE WHEN c.shortage > 0 THEN 'shortage' END,
                              CASE WHEN NOT $19 AND l.kind = 'inventory' AND c.shortage > 0 THEN 'no_cost_basis' END],
                        NULL) AS new_flags
    FROM tail l
    CROSS JOIN LATERAL (SELECT greatest(l.new_end - greatest(l.new_start, $17), 0) AS shortage) c
    LEFT JOIN (SELECT n, sum(quantity * unit_cost) AS value FROM wanted GROUP BY n) v ON v.n = l.n
), repriced AS MATERIALIZED (
    SELECT * FROM priced p
    WHERE NOT (p.costed AND p.cost = p.new_cost AND p.shortage_qty = p.shortage AND p.flags = p.new_flags)
), held AS MATERIALIZED (
    SELECT a.* FROM tail l
    CROSS JOIN LATERAL (SELECT a.ctid AS row_id, a.line_id, a.lot_id, a.quantity FROM allocations a
                        WHERE a.line_id = l.id OFFSET 0) a
), diff AS MATERIALIZED (
    SELECT h.row_id, coalesce(w.line_id, h.line_id) AS line_id, coalesce(w.lot_id, h.lot_id) AS lot_id,
           w.quantity
    FROM wanted w FULL JOIN held h ON h.line_id = w.line_id AND h.lot_id = w.lot_id
    WHERE w.quantity IS DISTINCT FROM h.quantity
), dropped AS (
    DELETE FROM allocations a WHERE a.ctid = ANY (ARRAY(SELECT row_id FROM diff WHERE quantity IS NULL))
), resized AS (
    UPDATE allocations a SET quantity = d.quantity FROM diff d
    WHERE a.ctid = d.row_id AND a.ctid = ANY (ARRAY(SELECT row_id FROM diff WHERE row_id IS NOT NULL
                                                                              AND quantity IS NOT NULL))
), added AS (
    INSERT INTO allocations (tenant_id, line_id, lot_id, quantity)
    SELECT $22, d.line_id, d.lot_id, d.quantity FROM diff d WHERE d.row_id IS NULL
), written AS (
    UPDATE sale_lines x SET d_start = p.new_start, d_end = p.new_end, cost = p.new_cost, shortage_qty = p.shortage,
           shortage_cost = p.shortage_cost, flags = p.new_flags, costed = true
    FROM priced p
    WHERE x.id = p.id AND (p.d_start IS DISTINCT FROM p.new_start OR p.d_end IS DISTINCT FROM p.new_end
                           OR p.id IN (SELECT id FROM repriced))
), revised AS (
    INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, event_id)
    SELECT $22, r.sale_id, r.line_no, r.cost, r.new_cost, $23, $24 FROM repriced r
    WHERE r.costed AND r.cost <> r.new_cost ORDER BY r.n
), moved AS MATERIALIZED (  -- per sale: what its lines here added to its cost, and whether one's shortage flipped
    SELECT * FROM (SELECT r.sale_id, sum(r.new_cost - r.cost) AS delta,
                          bool_or((r.shortage_qty > 0) <> (r.shortage > 0)) AS recheck
                   FROM repriced r WHERE r.sale_id <> ALL ($25::bigint[]) GROUP BY r.sale_id) m
    WHERE m.delta <> 0 OR m.recheck
), locked AS (  -- the sale rows in id order, as LOCK_SALES takes them
    SELECT s.id FROM sales s WHERE s.id IN (SELECT sale_id FROM moved) ORDER BY s.id FOR UPDATE
), totals AS (  -- this statement sees its lines' old values: a flipped sale's flag from the new ones
    UPDATE sales s SET cost = s.cost + m.delta, updated_at = now(),
           has_shortage = CASE WHEN NOT m.recheck THEN s.has_shortage
                               WHEN m.sale_id IN (SELECT p.sale_id FROM priced p WHERE p.shortage > 0) THEN true
                               ELSE EXISTS (SELECT 1 FROM sale_lines l
                                            WHERE l.sale_id = s.id AND l.shortage_qty > 0
                                              AND (l.product_id = $1 AND l.in_demand
                                                   AND ({_LINE_DEMAND_ORDER}) >= ($2, $3, $4, $5, $6, $7, $8))
                                                  IS NOT TRUE)
                          END
    FROM moved m JOIN locked k ON k.id = m.sale_id
    WHERE s.id = m.sale_id
)
SELECT array_agg(id ORDER BY n) AS line_ids FROM tail"""

# A demand tail's quantity from a key on: where the re-costed demand ends.
DEMAND_QUANTITY_FROM = f"""
SELECT coalesce(sum(quantity), 0) FROM sale_lines
WHERE product_id = $1 AND in_demand AND ({_DEMAND_KEY}) >= ($2, $3, $4, $5, $6, $7, $8)"""

# Lines whose cost follows the WAC outside a re-costed tail: shortages, consumers of
# return lots (priced at WAC), and credit memo lines (valued at WAC).
WAC_DEPENDENT_LINES = f"""
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND shortage_qty > 0
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE product_id = $1 AND sale_type = 'credit_memo' AND kind = 'inventory'
UNION
SELECT {_LINE_COLUMNS} FROM sale_lines WHERE id IN (
    SELECT a.line_id FROM lots r JOIN allocations a ON a.lot_id = r.id WHERE r.product_id = $1 AND r.is_return)"""

INSERT_REVISIONS = """
INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, event_id)
SELECT $1, u.sale_id, u.line_no, u.old_cost, u.new_cost, u.cause, u.event_id
FROM unnest($2::bigint[], $3::int[], $4::text[]::numeric[], $5::text[]::numeric[], $6::text[], $7::uuid[])
     AS u(sale_id, line_no, old_cost, new_cost, cause, event_id)"""

# Why: sale totals are rewritten by every transaction that re-costs one of its
# lines; the rows are locked in id order first so those transactions cannot
# deadlock, and the sums are read after the lock so they see committed lines.
LOCK_SALES = "SELECT id FROM sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

REFRESH_SALE_TOTALS = """
UPDATE sales s SET revenue = t.revenue, cost = t.cost, has_shortage = t.has_shortage, updated_at = now()
FROM (SELECT s2.id, coalesce(sum(l.revenue), 0) AS revenue, coalesce(sum(l.cost), 0) AS cost,
             coalesce(bool_or(l.shortage_qty > 0), false) AS has_shortage
      FROM sales s2 LEFT JOIN sale_lines l ON l.sale_id = s2.id AND l.sale_id = ANY($1::bigint[])
      WHERE s2.id = ANY($1::bigint[]) GROUP BY s2.id) t
WHERE s.id = t.id AND s.id = ANY($1::bigint[])
  AND (s.revenue, s.cost, s.has_shortage) IS DISTINCT FROM (t.revenue, t.cost, t.has_shortage)"""

MOVE_SALE_TOTALS = """
UPDATE sales s SET cost = s.cost + d.delta, updated_at = now(),
       has_shortage = CASE WHEN d.recheck
                           THEN EXISTS (SELECT 1 FROM sale_lines l WHERE l.sale_id = s.id AND l.shortage_qty > 0)
                           ELSE s.has_shortage END
FROM unnest($1::bigint[], $2::text[]::numeric[], $3::boolean[]) AS d(id, delta, recheck)
WHERE s.id = d.id AND s.id = ANY($1::bigint[])"""

RESET_TENANT = [
    "DELETE FROM cost_revisions WHERE tenant_id = $1",
    "DELETE FROM sale_versions WHERE tenant_id = $1",
    "DELETE FROM allocations WHERE tenant_id = $1",
    "DELETE FROM lots WHERE tenant_id = $1",
    "DELETE FROM sale_lines WHERE tenant_id = $1",
    "DELETE FROM sales WHERE tenant_id = $1",
    "DELETE FROM products WHERE tenant_id = $1",
    "DELETE FROM processed_events WHERE tenant_id = $1",
]


class CostingRepository:
    def __init__(self, conn: asyncpg.Connection, tenant_id: uuid.UUID):
        self.conn = conn
        self.tenant_id = tenant_id

    async def begin_unit_of_work(self) -> None:
        """First statement of every costing transaction, in one round trip: scope it to
        the tenant (row-level security) and plan each statement for its parameters."""
        await self.conn.execute(f"{PLAN_EACH_STATEMENT}; {tenant_setting_sql(self.tenant_id)}")

    async def record_events(self, events: Sequence[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        """The inbox: the ids among ``(event_id, event_type)`` not applied before."""
        rows = await self.conn.fetch(RECORD_EVENTS, self.tenant_id, *_columns(events, 2))
        return {r["event_id"] for r in rows}

    # products ------------------------------------------------------------------
    async def product_ids(self, skus: Iterable[str]) -> dict[str, int]:
        skus = sorted(set(skus))
        if not skus:
            return {}
        await self.conn.execute(ENSURE_PRODUCTS, self.tenant_id, skus)
        return {r["sku"]: r["id"] for r in await self.conn.fetch(PRODUCT_IDS, self.tenant_id, skus)}

    async def lock_products(self, ids: Iterable[int]) -> dict[int, asyncpg.Record]:
        rows = await self.conn.fetch(LOCK_PRODUCTS, self.tenant_id, sorted(set(ids)))
        return {r["id"]: r for r in rows}

    async def update_product(self, product_id: int, name: str, qbo_item_id: str | None,
                             standard_cost: Decimal | None, version: int) -> None:
        await self.conn.execute(UPDATE_PRODUCT, product_id, name, qbo_item_id, standard_cost, version)

    async def update_product_totals(self, product_id: int, received_qty: Decimal, received_value: Decimal, wac: Decimal,
                                    has_basis: bool, demand_total: Decimal, supply_total: Decimal) -> None:
        await self.conn.execute(UPDATE_PRODUCT_TOTALS, product_id, received_qty, received_value, wac, has_basis,
                                demand_total, supply_total)

    async def map_product_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(MAP_PRODUCT_LINES, product_id)

    # sales ---------------------------------------------------------------------
    async def sale_ids(self, headers: dict[SaleKey, tuple]) -> tuple[dict[SaleKey, int], dict[int, asyncpg.Record]]:
        """Ids of the sales ``(source, type, external_id)``, and the rows of those created
        now, from ``headers``: (version, doc_number, txn_date, source_created_at, customer,
        currency, exchange_rate, revenue) of a sale to create (a removal's all None but
        revenue 0)."""
        wanted = sorted((*key, *header) for key, header in headers.items())
        created = {r["id"]: r for r in await self.conn.fetch(ENSURE_SALES, self.tenant_id, *_columns(wanted, 11))}
        ids = {(r["source"], r["type"], r["external_id"]): i for i, r in created.items()}
        stored = [w[:3] for w in wanted if w[:3] not in ids]
        if stored:
            for r in await self.conn.fetch(SALE_IDS, self.tenant_id, *_columns(stored, 3)):
                ids[(r["source"], r["type"], r["external_id"])] = r["id"]
        return ids, created

    async def sale_line_products(self, sale_ids: Sequence[int]) -> set[int]:
        if not sale_ids:
            return set()
        return {r["product_id"] for r in await self.conn.fetch(SALE_LINE_PRODUCTS, list(sale_ids))}

    async def lock_sales(self, sale_ids: Iterable[int]) -> dict[int, asyncpg.Record]:
        ids = sorted(set(sale_ids))
        return {r["id"]: r for r in await self.conn.fetch(LOCK_SALES_ROWS, ids)} if ids else {}

    async def sale_lines(self, sale_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(SALE_LINES, list(sale_ids)) if sale_ids else []

    async def lines_by_id(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(LINES_BY_ID, list(line_ids)) if line_ids else []

    async def posted_sales(self, sale_ids: Iterable[int]) -> set[int]:
        ids = list(set(sale_ids))
        return {r["id"] for r in await self.conn.fetch(POSTED_SALES, ids)} if ids else set()

    async def update_sale_headers(self, rows: Sequence[tuple]) -> None:
        """(id, version, doc_number, txn_date, source_created_at, customer, currency, exchange_rate, status)."""
        if rows:
            await self.conn.execute(UPDATE_SALE_HEADERS, *_columns(rows, 9))

    async def upsert_lines(self, rows: Sequence[tuple]) -> dict[tuple[int, int], int]:
        """Lines as UPSERT_LINES' columns after tenant_id; their ids by (sale_id, line_no)."""
        if not rows:
            return {}
        result = await self.conn.fetch(UPSERT_LINES, self.tenant_id, *_columns(rows, 16))
        return {(r["sale_id"], r["line_no"]): r["id"] for r in result}

    async def delete_lines(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            await self.conn.execute(DELETE_LINES, list(line_ids))

    async def delete_allocations_of(self, line_ids: Sequence[int]) -> None:
        if line_ids:
            await self.conn.execute(DELETE_ALLOCATIONS_OF_LINES, list(line_ids))

    async def record_versions(self, rows: Sequence[tuple]) -> None:
        """(sale_id, version, event_id, event_type, applied, note) per row."""
        if rows:
            await self.conn.execute(RECORD_VERSIONS, self.tenant_id, *_columns(rows, 6))

    # lots ----------------------------------------------------------------------
    async def lot(self, product_id: int, lot_number: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(LOT, product_id, lot_number)

    async def upsert_lot(self, product_id: int, lot_number: str, is_return: bool, return_line_id: int | None,
                         quantity: Decimal, unit_cost: Decimal, received_at: datetime, version: int | None) -> int:
        return await self.conn.fetchval(UPSERT_LOT, self.tenant_id, product_id, lot_number, is_return, return_line_id,
                                        quantity, unit_cost, received_at, version)

    async def lots_by_number(self, keys: Sequence[tuple[int, str]]) -> list[asyncpg.Record]:
        return await self.conn.fetch(LOTS_BY_NUMBER, *_columns(keys, 2)) if keys else []

    async def upsert_return_lots(self, rows: Sequence[tuple]) -> None:
        """(product_id, lot_number, line_id, quantity, unit_cost, received_at) per return lot."""
        if rows:
            await self.conn.execute(UPSERT_RETURN_LOTS, self.tenant_id, *_columns(rows, 6))

    async def delete_lots(self, lot_ids: Sequence[int]) -> None:
        if lot_ids:
            await self.conn.execute(DELETE_LOTS, list(lot_ids))

    async def return_lots_of_sales(self, sale_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(RETURN_LOTS_OF_SALES, list(sale_ids)) if sale_ids else []

    async def reprice_return_lots(self, product_id: int, wac: Decimal) -> None:
        await self.conn.execute(REPRICE_RETURN_LOTS, product_id, wac)

    # FIFO tail -----------------------------------------------------------------
    async def demand_predecessor_end(self, product_id: int, key: DemandKey) -> Decimal | None:
        return await self.conn.fetchval(DEMAND_PREDECESSOR_END, product_id, *key)

    async def tail_lines(self, product_id: int, key: DemandKey, moved_from: DemandKey | None,
                         limit: int | None = None) -> list[asyncpg.Record]:
        """The in-demand lines of a product from ``key`` on, in demand order (the first
        ``limit``); ``moves``: at or after ``moved_from``; ``lot_ids``, ``quantities``: its allocations."""
        return await self.conn.fetch(TAIL_LINES, product_id, *key, *(moved_from or (None,) * len(key)), limit)

    async def demand_quantity_from(self, product_id: int, key: DemandKey) -> Decimal:
        return await self.conn.fetchval(DEMAND_QUANTITY_FROM, product_id, *key)

    async def recost_tail_in_db(self, product_id: int, key: DemandKey, moved_from: DemandKey | None,
                               moved_start: Decimal | None, supply_end: Decimal, wac: Decimal, has_basis: bool,
                               span: tuple[Decimal, Decimal], cause: tuple[str, uuid.UUID],
                               resummed: Iterable[int]) -> list[int] | None:
        """Re-cost, allocate, price and write the tail from ``key`` and the totals of its
        sales but ``resummed`` (RECOST_TAIL_IN_DB); the tail's line ids."""
        return await self.conn.fetchval(RECOST_TAIL_IN_DB, product_id, *key, *(moved_from or (None,) * len(key)),
                                        moved_start, supply_end, wac, has_basis, *span, self.tenant_id, *cause,
                                        sorted(resummed))

    async def first_line_ending_after(self, product_id: int, position: Decimal) -> DemandKey | None:
        rows = await self.conn.fetch(FIRST_LINE_ENDING_AFTER, product_id, position)
        return min((tuple(r) for r in rows), default=None)

    async def supply_predecessor_end(self, product_id: int, key: SupplyKey) -> Decimal | None:
        return await self.conn.fetchval(SUPPLY_PREDECESSOR_END, product_id, *key)

    async def tail_lots(self, product_id: int, key: SupplyKey | None, lo: Decimal, hi: Decimal) -> list[asyncpg.Record]:
        if key is None:
            return await self.conn.fetch(TAIL_LOTS_FROM_POSITION, product_id, lo, hi)
        return await self.conn.fetch(TAIL_LOTS_FROM_KEY, product_id, *key, lo, hi)

    async def first_consumers(self, lot_ids: Sequence[int]) -> list[asyncpg.Record]:
        return await self.conn.fetch(FIRST_CONSUMERS, list(lot_ids)) if lot_ids else []

    async def allocations_of(self, line_ids: Sequence[int]) -> list[asyncpg.Record]:
        if not line_ids:
            return []
        return await self.conn.fetch(ALLOCATIONS_OF_LINES, list(line_ids))

    async def delete_allocation_pairs(self, pairs: Sequence[tuple[int, int]]) -> None:
        if pairs:
            await self.conn.execute(DELETE_ALLOCATION_PAIRS, [p[0] for p in pairs], [p[1] for p in pairs])

    async def insert_allocations(self, rows: Sequence[tuple[int, int, Decimal]]) -> None:
        """(line_id, lot_id, quantity) per allocation; none of these pairs may exist."""
        if rows:
            line_ids, lot_ids, quantities = _columns(rows, 3)
            await self.conn.execute(INSERT_ALLOCATIONS, self.tenant_id, line_ids, lot_ids, _as_text(quantities))

    async def write_lines(self, rows: Sequence[tuple]) -> None:
        """(id, moved, d_start, d_end, cost, shortage_qty, shortage_cost, flags) per line."""
        if rows:
            ids, moved, *amounts, flags = _columns(rows, 8)
            await self.conn.execute(WRITE_LINES, ids, moved, *map(_as_text, amounts), flags)

    async def write_lots(self, rows: Sequence[tuple[int, Decimal, Decimal, Decimal]]) -> None:
        if rows:
            await self.conn.execute(WRITE_LOTS, *_columns(rows, 4))

    async def wac_dependent_lines(self, product_id: int) -> list[asyncpg.Record]:
        return await self.conn.fetch(WAC_DEPENDENT_LINES, product_id)

    async def insert_revisions(self, rows: Sequence[tuple]) -> None:
        """(sale_id, line_no, old_cost, new_cost, cause, event_id) per revision."""
        if rows:
            sale_ids, line_nos, old, new, causes, event_ids = _columns(rows, 6)
            await self.conn.execute(INSERT_REVISIONS, self.tenant_id, sale_ids, line_nos, _as_text(old), _as_text(new),
                                    causes, event_ids)

    async def update_sale_totals(self, resum_ids: Iterable[int], deltas: Sequence[tuple[int, Decimal, bool]],
                                 unlocked: Iterable[int] = ()) -> None:
        """Re-sum the totals of ``resum_ids``; move others by (sale_id, cost delta, shortage
        may have changed). ``unlocked``: sales created by this transaction, which no other
        transaction can see, so they are not locked again."""
        resum = sorted(set(resum_ids))
        if not (resum or deltas):
            return
        lock = (set(resum) | {d[0] for d in deltas}) - set(unlocked)
        if lock:
            await self.conn.execute(LOCK_SALES, sorted(lock))
        if resum:
            await self.conn.execute(REFRESH_SALE_TOTALS, resum)
        if deltas:
            ids, amounts, recheck = _columns(deltas, 3)
            await self.conn.execute(MOVE_SALE_TOTALS, ids, _as_text(amounts), recheck)

    async def reset_tenant(self) -> None:
        for statement in RESET_TENANT:
            await self.conn.execute(statement, self.tenant_id)


def _columns(rows: Sequence[tuple], width: int) -> list[list]:
    """Rows as ``width`` column lists, for unnest($n::type[], ...)."""
    return [list(c) for c in zip(*rows)] if rows else [[] for _ in range(width)]


def _as_text(amounts: Sequence[Decimal | None]) -> list[str | None]:
    """Decimals as their exact text, for a ``$n::text[]::numeric[]`` parameter: a
    backdate sends tens of thousands, and asyncpg's binary numeric encoding of each
    costs several times the text one."""
    return [None if a is None else str(a) for a in amounts]

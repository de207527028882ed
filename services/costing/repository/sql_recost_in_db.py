"""The tail re-cost inside PostgreSQL: one statement for a long tail."""

from __future__ import annotations

from services.costing.flags import flags_sql
from services.costing.order import DEMAND_ORDER
from services.costing.repository._base import _DEMAND_KEY_AT_2, _DEMAND_KEY_AT_9, _LINE_DEMAND_ORDER

# Two implementations of one tail re-cost: this statement and the Python one
# (tail.py + recost.py + fifo.py). Both are kept only because the benchmark needs this
# one for long tails (a backdate before thousands of lines, tails longer than
# recost.RECOST_TAIL_IN_DB_FROM): it sends no line over the wire. Their rules are shared
# where they can be: the demand order (order.py) and the flags (flags.FLAG_RULES, as
# SQL here); tests/integration/test_costing_tail_paths.py runs the same histories
# through both and compares them line for line.

# The parameters after the two demand keys ($2-$8, $9-$15) are numbered for keys of 7 columns.
if len(DEMAND_ORDER) != 7:
    raise RuntimeError("renumber RECOST_TAIL_IN_DB's parameters after the demand keys")

# The flags of a re-costed tail line (posted, not a return): flags.FLAG_RULES as SQL.
_NEW_FLAGS = flags_sql(kind="l.kind", shortage="c.shortage", has_basis="$19")

# A long tail re-costed inside the database (recost.RECOST_TAIL_IN_DB_FROM): the same rules as
# fifo.allocate, line_cost and LineWriter.flush, set-based, so no per-line data crosses
# the wire. $1 product, $2-$8 first key of the tail, $9-$15 first key that moves (NULLs:
# none), $16 where moving lines start (x_d), $17 supply end, $18 WAC, $19 has a cost
# basis, $20-$21 the span of the laid tail (lots already laid), $22 tenant, $23-$24 cause,
# $25 the sales whose totals LineWriter.flush re-sums (not moved here).
# Allocations come from one merge of both axes: between two consecutive starts (of a
# line or a lot), the line and the lot are the last ones started, since both axes are
# contiguous and their positions grow with their orders. The segments reach their line and
# lot by rank (subscripts of bigint arrays: O(1)), not by joining CTEs: on tables never
# analyzed the planner expects one row from each CTE and nested those joins (N² for a tail
# of N lines; bench/plans_bench.py). (A line's value still joins ``wanted`` by rank: a numeric
# array's subscript walks the array, N² again, measured 1.5× slower on analyzed tables.)
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
          CROSS JOIN LATERAL (SELECT ({_LINE_DEMAND_ORDER}) >= {_DEMAND_KEY_AT_9} IS TRUE AS moves) m
          WHERE l.product_id = $1 AND l.in_demand AND ({_LINE_DEMAND_ORDER}) >= {_DEMAND_KEY_AT_2}
          WINDOW w AS (ORDER BY {_LINE_DEMAND_ORDER} ROWS UNBOUNDED PRECEDING)) t
), supply AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY lot.s_start) AS n, lot.id, lot.s_start, lot.s_end,
           CASE WHEN lot.is_return THEN $18 ELSE lot.unit_cost END AS unit_cost
    FROM lots lot WHERE lot.product_id = $1 AND lot.s_end > $20 AND lot.s_start < $21 AND lot.s_end > lot.s_start
), segments AS (
    SELECT at, lead(at) OVER o AS next_at, max(line_n) OVER o AS line_n, max(line_end) OVER o AS line_end,
           max(lot_n) OVER o AS lot_n, max(lot_end) OVER o AS lot_end, lot_cost
    FROM (SELECT new_start AS at, n AS line_n, new_end AS line_end, NULL::bigint AS lot_n, NULL::numeric AS lot_end,
                 NULL::numeric AS lot_cost
          FROM tail
          UNION ALL
          SELECT s_start, NULL, NULL, n, s_end, unit_cost FROM supply) starts
    WINDOW o AS (ORDER BY at)
), ids AS MATERIALIZED (  -- lines and lots by their rank n (dense from 1): subscripts, not joins
    SELECT (SELECT array_agg(id ORDER BY n) FROM tail) AS line_ids,
           (SELECT array_agg(id ORDER BY n) FROM supply) AS lot_ids
), wanted AS MATERIALIZED (  -- a line and a lot overlap in exactly one segment
    SELECT g.line_n AS n, i.line_ids[g.line_n] AS line_id, i.lot_ids[g.lot_n] AS lot_id,
           g.unit_cost, least(g.next_at, g.line_end, g.lot_end) - g.at AS quantity
    FROM (SELECT *, max(lot_cost) OVER (PARTITION BY lot_n) AS unit_cost FROM segments) g CROSS JOIN ids i
    WHERE g.at < g.line_end AND g.at < g.lot_end AND (g.next_at > g.at OR g.next_at IS NULL)
), priced AS MATERIALIZED (  -- repriced: its cost, shortage or flags change (or it was never costed)
    SELECT p.*, NOT (p.costed AND p.cost = p.new_cost AND p.shortage_qty = p.shortage AND p.flags = p.new_flags)
                AS repriced
    FROM (SELECT l.*, c.shortage, coalesce(v.value, 0) + c.shortage * $18 AS new_cost,
                 c.shortage * $18 AS shortage_cost, {_NEW_FLAGS} AS new_flags
          FROM tail l
          CROSS JOIN LATERAL (SELECT greatest(l.new_end - greatest(l.new_start, $17), 0) AS shortage) c
          LEFT JOIN (SELECT n, sum(quantity * unit_cost) AS value FROM wanted GROUP BY n) v ON v.n = l.n) p
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
    WHERE x.id = p.id AND (p.repriced OR p.d_start IS DISTINCT FROM p.new_start OR p.d_end IS DISTINCT FROM p.new_end)
), revised AS (
    INSERT INTO cost_revisions (tenant_id, sale_id, line_no, old_cost, new_cost, cause, event_id)
    SELECT $22, r.sale_id, r.line_no, r.cost, r.new_cost, $23, $24 FROM priced r
    WHERE r.repriced AND r.costed AND r.cost <> r.new_cost ORDER BY r.n
), moved AS MATERIALIZED (  -- per sale: what its lines here added to its cost, and whether one's shortage flipped
    SELECT * FROM (SELECT r.sale_id, sum(r.new_cost - r.cost) AS delta,
                          bool_or((r.shortage_qty > 0) <> (r.shortage > 0)) AS recheck
                   FROM priced r WHERE r.repriced AND r.sale_id <> ALL ($25::bigint[]) GROUP BY r.sale_id) m
    WHERE m.delta <> 0 OR m.recheck
), locked AS MATERIALIZED (  -- the sale rows in id order, as LOCK_SALES takes them, with their moves
    SELECT s.id AS sale_id, m.delta, m.recheck FROM sales s JOIN moved m ON m.sale_id = s.id
    ORDER BY s.id FOR UPDATE OF s
), totals AS (  -- this statement sees its lines' old values: a flipped sale's flag from the new ones
    UPDATE sales s SET cost = s.cost + m.delta, updated_at = now(),
           has_shortage = CASE WHEN NOT m.recheck THEN s.has_shortage
                               WHEN m.sale_id IN (SELECT p.sale_id FROM priced p WHERE p.shortage > 0) THEN true
                               ELSE EXISTS (SELECT 1 FROM sale_lines l
                                            WHERE l.sale_id = s.id AND l.shortage_qty > 0
                                              AND (l.product_id = $1 AND l.in_demand
                                                   AND ({_LINE_DEMAND_ORDER}) >= {_DEMAND_KEY_AT_2})
                                                  IS NOT TRUE)
                          END
    FROM locked m
    WHERE s.id = m.sale_id
)
SELECT array_agg(id ORDER BY n) AS line_ids FROM tail"""

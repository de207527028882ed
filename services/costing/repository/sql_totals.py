"""Cost revisions, sale totals and the reset of a tenant."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from services.costing.repository._base import RepositoryPart, _as_text, _columns

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

# The tenant's query rollups go first, deltas before their base tables (the order the query
# service's folder locks them in), with the rollups' delete triggers off for this tenant
# meanwhile (migration 0029_tenant_reset.sql): the rollups are emptied, not undone row by row.
ROLLUP_TABLES = (
    "sales_totals_delta", "sales_totals", "sales_totals_month", "sales_totals_all",
    "product_totals_delta", "product_totals", "product_totals_month",
    "customer_totals_delta", "customer_totals", "customer_names",
    "sku_totals_delta", "sku_totals", "sale_skus",
    "sale_cost_keys_stale", "sale_cost_keys",
)  # fmt: skip
#: The costing engine's tables, children before the rows they reference.
COSTING_TABLES = (
    "cost_revisions", "sale_versions", "allocations", "lots", "sale_lines", "shortage_records",
    "stock_moves", "sales", "products", "processed_events",
)  # fmt: skip
#: Every table a reset deletes the tenant's rows from, in that order.
RESET_TABLES = (*ROLLUP_TABLES, *COSTING_TABLES)
RESET_TENANT = [f"DELETE FROM {table} WHERE tenant_id = $1" for table in RESET_TABLES]
#: Around RESET_TENANT, in its transaction (a failure ends the setting with the transaction).
BEGIN_RESET = "SELECT set_config('app.tenant_reset', $1::uuid::text, true)"
END_RESET = "SELECT set_config('app.tenant_reset', '', true)"


class TotalsPart(RepositoryPart):
    """Cost revisions, sale totals, the reset of a tenant."""

    async def insert_revisions(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(sale_id, line_no, old_cost, new_cost, cause, event_id) per revision."""
        if rows:
            sale_ids, line_nos, old, new, causes, event_ids = _columns(rows, 6)
            await self.conn.execute(
                INSERT_REVISIONS, self.tenant_id, sale_ids, line_nos, _as_text(old), _as_text(new), causes, event_ids
            )

    async def update_sale_totals(
        self, resum_ids: Iterable[int], deltas: Sequence[tuple[int, Decimal, bool]], unlocked: Iterable[int] = ()
    ) -> None:
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

    async def reset_tenant(self) -> int:
        """Delete the tenant's costing state and its query rollups; returns the rows deleted."""
        await self.conn.execute(BEGIN_RESET, self.tenant_id)
        deleted = 0
        for statement in RESET_TENANT:
            status = await self.conn.execute(statement, self.tenant_id)  # "DELETE <rows>"
            deleted += int(status.rsplit(" ", 1)[1])
        await self.conn.execute(END_RESET)
        return deleted

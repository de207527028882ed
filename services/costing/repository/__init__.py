"""SQL of the costing service: every statement it runs, as named constants with
$n parameters, in one module per concern (``sql_sales``: products, sales, lines;
``sql_lots``; ``sql_tail``: the FIFO tail; ``sql_recost_in_db``: the tail re-cost in
one statement; ``sql_totals``: revisions, sale totals, reset; ``sql_append``: the
rebuild's appended sales). ``CostingRepository`` is their one facade: one instance per
transaction, bound to a connection and a tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.costing.repository import sql_append, sql_lots, sql_recost_in_db, sql_sales, sql_tail, sql_totals
from services.costing.repository._base import DemandKey, RepositoryPart, SaleKey, SupplyKey, _columns
from services.costing.repository.sql_append import AppendPart
from services.costing.repository.sql_lots import LotsPart
from services.costing.repository.sql_recost_in_db import RECOST_TAIL_IN_DB
from services.costing.repository.sql_sales import SalesPart
from services.costing.repository.sql_tail import TailPart
from services.costing.repository.sql_totals import TotalsPart
from shared.db import tenant_setting_sql

__all__ = ["RECOST_TAIL_IN_DB", "STATEMENT_MODULES", "CostingRepository", "DemandKey", "SaleKey", "SupplyKey"]

#: The modules holding the statements (named constants), e.g. for naming them in a profile.
STATEMENT_MODULES = (sql_sales, sql_lots, sql_tail, sql_recost_in_db, sql_totals, sql_append)

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
PLAN_EACH_STATEMENT = (
    "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL random_page_cost = 1.1; SET LOCAL work_mem = '64MB'"
)
# (No per-row foreign-key checks run under it on the hot path: lines, versions,
# allocations and cost revisions check their references once per statement, 0010 and
# 0015_line_reference_checks.sql.)

RECORD_EVENTS = """
INSERT INTO processed_events (event_id, tenant_id, event_type) SELECT e.id, $1, e.type
FROM unnest($2::uuid[], $3::text[]) AS e(id, type)
ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""


class CostingRepository(SalesPart, LotsPart, TailPart, TotalsPart, AppendPart, RepositoryPart):
    async def begin_unit_of_work(self) -> None:
        """First statement of every costing transaction, in one round trip: scope it to
        the tenant (row-level security) and plan each statement for its parameters."""
        await self.conn.execute(f"{PLAN_EACH_STATEMENT}; {tenant_setting_sql(self.tenant_id)}")

    async def record_events(self, events: Sequence[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
        """The inbox: the ids among ``(event_id, event_type)`` not applied before."""
        rows = await self.conn.fetch(RECORD_EVENTS, self.tenant_id, *_columns(events, 2))
        return {r["event_id"] for r in rows}

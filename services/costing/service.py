"""Use cases of the costing service: apply one event in one transaction.

The inbox row (processed_events) is written in the same transaction as the
effect, so an event applies once however often it is delivered. Locks: the
products a change touches, in id order; then the sale row; then its lines and
lots. Transient database errors re-run the whole transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timezone
from decimal import Decimal

import asyncpg

from services.costing.recost import (LineWriter, ProductChange, demand_key, demand_key_of, price_lines, recost,
                                     supply_key)
from services.costing.repository import CostingRepository
from shared.db import TransientError, retry_transient
from shared.events import Event, LotReceived, ProductUpserted, SaleRemoved, SaleUpserted
from shared.logging import get_logger
from shared.money import ZERO

log = get_logger("costing.service")

CANDIDATE_KINDS = {"inventory", "unmapped"}
STATUS_RANK = {"posted": 0, "voided": 1, "deleted": 2}


class PermanentError(Exception):
    """The event can never be applied (it contradicts the facts): dead-letter it."""


@dataclass(frozen=True)
class LineSpec:
    """A sale line as the engine stores it, from an event or from the stored row."""

    line_no: int
    sku: str | None
    description: str | None
    kind: str  # the event's kind; candidates are resolved against the product
    quantity: Decimal
    signed_revenue: Decimal

    @property
    def candidate(self) -> bool:
        return self.sku is not None and self.kind in CANDIDATE_KINDS


class CostingService:
    def __init__(self, pool: asyncpg.Pool, max_attempts: int = 8):
        self.pool = pool
        self.max_attempts = max_attempts

    async def apply(self, event: Event) -> bool:
        """Apply an event once; False if it had been applied already."""
        return await retry_transient(lambda: self._apply_once(event), self.max_attempts,
                                     on_retry=lambda n, e: log.warning("costing.retry", attempt=n, error=str(e)))

    async def _apply_once(self, event: Event) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            repo = CostingRepository(conn, event.tenant_id)
            if not await repo.record_event(event.event_id, event.event_type):
                return False
            writer = LineWriter(repo, _cause(event), event.event_id)
            if isinstance(event, SaleUpserted):
                await self._sale_upserted(repo, writer, event)
            elif isinstance(event, SaleRemoved):
                await self._sale_removed(repo, writer, event)
            elif isinstance(event, ProductUpserted):
                await self._product_upserted(repo, writer, event)
            else:
                await self._lot_changed(repo, writer, event)
            await writer.flush()
            return True

    # sales ---------------------------------------------------------------------
    async def _lock_sale(self, repo: CostingRepository, source: str, sale_type: str, external_id: str,
                         skus: set[str]) -> tuple[asyncpg.Record, dict[int, ProductChange], dict[str, int]]:
        """Lock the products of the sale's old and new lines (id order), then the sale."""
        sale_id = await repo.sale_id(source, sale_type, external_id)
        sku_ids = await repo.product_ids(skus)
        wanted = await repo.sale_line_products(sale_id) | set(sku_ids.values())
        products = await repo.lock_products(wanted)
        sale = await repo.lock_sale(sale_id)
        if not await repo.sale_line_products(sale_id) <= products.keys():
            raise TransientError("the sale's lines changed while its products were being locked")
        return sale, {pid: ProductChange.of(row) for pid, row in products.items()}, sku_ids

    async def _sale_upserted(self, repo: CostingRepository, writer: LineWriter, ev: SaleUpserted) -> None:
        sign = -1 if ev.sale_type == "credit_memo" else 1
        specs = [LineSpec(l.line_no, l.sku, l.description, l.kind, l.quantity, sign * l.revenue) for l in ev.lines]
        if len({s.line_no for s in specs}) != len(specs):
            raise PermanentError("duplicate line_no in sale")
        sale, changes, sku_ids = await self._lock_sale(repo, ev.source, ev.sale_type, ev.external_id,
                                                       {s.sku for s in specs if s.candidate})
        if sale["version"] is not None and ev.version <= sale["version"]:
            await repo.record_version(sale["id"], ev.version, ev.event_id, ev.event_type, False, "not newer")
            return
        await repo.update_sale_header(sale["id"], ev.version, ev.doc_number, ev.txn_date, ev.source_created_at,
                                      ev.customer, ev.currency, ev.exchange_rate, sale["status"])
        await repo.record_version(sale["id"], ev.version, ev.event_id, ev.event_type, True)
        header = dict(sale) | {"txn_date": ev.txn_date, "source_created_at": ev.source_created_at}
        await self._rewrite_lines(repo, writer, header, sale["status"], specs, changes, sku_ids)

    async def _sale_removed(self, repo: CostingRepository, writer: LineWriter, ev: SaleRemoved) -> None:
        sale, changes, sku_ids = await self._lock_sale(repo, ev.source, ev.sale_type, ev.external_id, set())
        await repo.record_version(sale["id"], ev.version, ev.event_id, ev.event_type, True, ev.reason)
        if STATUS_RANK[ev.reason] <= STATUS_RANK[sale["status"]]:
            return
        await repo.update_sale_status(sale["id"], ev.reason)
        rows = await repo.sale_lines(sale["id"])
        specs = [LineSpec(r["line_no"], r["sku"], r["description"], "inventory" if r["candidate"] else r["kind"],
                          r["quantity"], r["gross_revenue"]) for r in rows]
        sku_ids = {r["sku"]: r["product_id"] for r in rows if r["candidate"]}
        await self._rewrite_lines(repo, writer, dict(sale), ev.reason, specs, changes, sku_ids)

    async def _rewrite_lines(self, repo: CostingRepository, writer: LineWriter, sale: dict, status: str,
                             specs: list[LineSpec], changes: dict[int, ProductChange], sku_ids: dict[str, int]) -> None:
        """Store the sale's lines as ``specs`` under ``status``, mark where each product's
        axes change, and re-cost those products."""
        posted = status == "posted"
        is_credit = sale["type"] == "credit_memo"
        old_rows = {r["line_no"]: r for r in await repo.sale_lines(sale["id"])}
        old_returns = {(r["product_id"], r["lot_number"]): r for r in await repo.return_lots_of_sale(sale["id"])}

        for r in old_rows.values():
            if r["in_demand"]:
                changes[r["product_id"]].touch_demand(demand_key(r))
        for lot in old_returns.values():
            changes[lot["product_id"]].touch_supply(supply_key(lot))

        # Lines that are gone take their allocations and return lots with them (cascade).
        await repo.delete_lines_except(sale["id"], [s.line_no for s in specs])
        received_at = datetime.combine(sale["txn_date"], time(0), tzinfo=timezone.utc) if sale["txn_date"] else None
        left_demand: list[int] = []
        own_lines: list[int] = []
        kept_returns: set[tuple[int, str]] = set()
        for spec in specs:
            product_id = sku_ids.get(spec.sku) if spec.candidate else None
            change = changes.get(product_id) if product_id is not None else None
            defined = bool(change and change.row["defined"])
            # An inventory line naming no product (no sku) is unmapped, and says so.
            kind = ("inventory" if defined else "unmapped") if spec.candidate else (
                "unmapped" if spec.kind == "inventory" else spec.kind)
            in_demand = spec.candidate and defined and posted and not is_credit and spec.quantity > 0
            line_id = await repo.upsert_line(
                sale["id"], spec.line_no, spec.sku, product_id, spec.description, kind, spec.quantity,
                spec.signed_revenue, spec.signed_revenue if posted else ZERO, spec.candidate, in_demand,
                sale["txn_date"], sale["source_created_at"], sale["source"], sale["external_id"], sale["type"])
            old = old_rows.get(spec.line_no)
            if in_demand:
                change.touch_demand(demand_key_of(sale["txn_date"], sale["source_created_at"], sale["source"],
                                                  sale["external_id"], sale["type"], spec.line_no))
            else:
                own_lines.append(line_id)
                if old is not None and old["in_demand"]:
                    left_demand.append(line_id)
            # A posted credit memo's inventory line puts a return lot back into supply.
            if is_credit and posted and spec.candidate and spec.quantity > 0 and product_id is not None:
                lot_number = f"RET-{sale['source']}-{sale['external_id']}-{spec.line_no}"
                kept_returns.add((product_id, lot_number))
                existing = await repo.lot(product_id, lot_number)
                if existing is not None and not existing["is_return"]:
                    raise PermanentError(f"return lot {lot_number} clashes with a received lot of that number")
                await repo.upsert_lot(product_id, lot_number, True, line_id, spec.quantity, change.row["wac"],
                                      received_at, None)
                change.touch_supply((received_at, lot_number))
        for key, lot in old_returns.items():  # return lots no line asks for any more
            if key not in kept_returns:
                await repo.delete_lot(lot["id"])

        await repo.delete_allocations_of(left_demand)
        for change in changes.values():
            await recost(repo, change, writer)
        own_rows = await repo.lines_by_id(own_lines)
        posted_sales = {sale["id"]} if posted else set()
        for pid in {r["product_id"] for r in own_rows}:
            change = changes.get(pid)
            wac, basis = (change.wac, change.has_basis) if change else (ZERO, True)
            await price_lines(repo, writer, [r for r in own_rows if r["product_id"] == pid], wac, basis, posted_sales)
        writer.sale_ids.add(sale["id"])

    # products and lots -----------------------------------------------------------
    async def _product_upserted(self, repo: CostingRepository, writer: LineWriter, ev: ProductUpserted) -> None:
        pid = (await repo.product_ids([ev.sku]))[ev.sku]
        row = (await repo.lock_products([pid]))[pid]
        if row["version"] is not None and ev.version <= row["version"]:
            return
        await repo.update_product(pid, ev.name, ev.qbo_item_id, ev.standard_cost, ev.version)
        change = ProductChange.of(row)
        change.standard_cost = ev.standard_cost
        if not row["defined"]:
            for r in await repo.map_product_lines(pid):
                if r["in_demand"]:
                    change.touch_demand(demand_key(r))
                else:
                    change.reprice_line_ids.add(r["id"])
        await recost(repo, change, writer)

    async def _lot_changed(self, repo: CostingRepository, writer: LineWriter, ev: LotReceived) -> None:
        pid = (await repo.product_ids([ev.sku]))[ev.sku]
        row = (await repo.lock_products([pid]))[pid]
        old = await repo.lot(pid, ev.lot_number)
        if old is not None and old["is_return"]:
            raise PermanentError(f"lot number {ev.lot_number} is a return lot of a credit memo")
        if old is not None and old["version"] is not None and ev.version <= old["version"]:
            return
        change = ProductChange.of(row)
        if old is not None:
            change.received_qty -= old["quantity"]
            change.received_value -= old["quantity"] * old["unit_cost"]
            change.touch_supply(supply_key(old))
        change.received_qty += ev.quantity
        change.received_value += ev.quantity * ev.unit_cost
        change.touch_supply((ev.received_at, ev.lot_number))
        await repo.upsert_lot(pid, ev.lot_number, False, None, ev.quantity, ev.unit_cost, ev.received_at, ev.version)
        await recost(repo, change, writer)

    async def reset_tenant(self, tenant_id) -> None:
        """Drop one tenant's costing state (for a rebuild by replay)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await CostingRepository(conn, tenant_id).reset_tenant()


def _cause(event: Event) -> str:
    if isinstance(event, SaleUpserted):
        return f"{event.sale_type} {event.external_id} version {event.version} ({event.source})"
    if isinstance(event, SaleRemoved):
        return f"{event.sale_type} {event.external_id} {event.reason} ({event.source})"
    if isinstance(event, ProductUpserted):
        return f"product {event.sku} updated"
    return f"lot {event.lot_number} of {event.sku} {'received' if event.event_type == 'lot.received' else 'corrected'}"

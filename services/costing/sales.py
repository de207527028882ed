"""Applying sale events (upserts and removals), several distinct sales in one transaction.

Steps, each one statement for the whole group: the sale rows (created with their
event's header if new), the products their old and new lines name, locked in id
order, then the sales that existed before, locked in id order, with their old lines
and return lots (a sale created just now has none, and no other transaction can see
it). Then each event is decided in memory (version check, status rank, the new
lines and their kinds), the lines, lots and headers are written in bulk, and each
product touched is re-costed once from the earliest position any of the group's
sales changed (``tail.recost_product``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg

from services.costing import ledger
from services.costing.order import demand_key, demand_key_of, supply_key
from services.costing.recost import Cause, ProductChange
from services.costing.repository import CostingRepository, SaleKey
from services.costing.tail import LineWriter, price_lines, recost_product
from shared.db import TransientError
from shared.events import SaleRemoved, SaleUpserted
from shared.money import WIDE, ZERO

CANDIDATE_KINDS = {"inventory", "unmapped"}
STATUS_RANK = {"posted": 0, "voided": 1, "deleted": 2}

SaleEvent = SaleUpserted | SaleRemoved


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


@dataclass
class SaleRewrite:
    """What one event makes of its sale: the header after it and the lines to store."""

    sale: dict[str, Any]
    status: str
    specs: list[LineSpec]
    sku_ids: dict[str, int]
    cause: Cause


def sale_key(ev: SaleEvent) -> SaleKey:
    return ev.source, ev.sale_type, ev.external_id


def event_specs(ev: SaleUpserted) -> list[LineSpec]:
    sign = -1 if ev.sale_type == "credit_memo" else 1
    specs = [
        LineSpec(line.line_no, line.sku, line.description, line.kind, line.quantity, sign * line.revenue)
        for line in ev.lines
    ]
    if len({s.line_no for s in specs}) != len(specs):
        raise PermanentError("duplicate line_no in sale")
    return specs


HEADER_FIELDS = ("version", "doc_number", "txn_date", "source_created_at", "customer", "currency", "exchange_rate")


def sale_header(ev: SaleEvent) -> tuple[Any, ...]:
    """The header an upsert gives its sale (HEADER_FIELDS); a removal gives none."""
    if isinstance(ev, SaleRemoved):
        return (None,) * len(HEADER_FIELDS)
    return (ev.version, ev.doc_number, ev.txn_date, ev.source_created_at, ev.customer, ev.currency, ev.exchange_rate)


def sale_revenue(ev: SaleEvent, specs: dict[uuid.UUID, list[LineSpec]]) -> Decimal:
    """A new sale's revenue: its lines' (posted, so all of it); a removal's none."""
    total = ZERO
    for spec in specs.get(ev.event_id, ()):
        total = WIDE.add(total, spec.signed_revenue)
    return total


def sale_cause(ev: SaleEvent) -> Cause:
    what = f"version {ev.version}" if isinstance(ev, SaleUpserted) else ev.reason
    return f"{ev.sale_type} {ev.external_id} {what} ({ev.source})", ev.event_id


async def apply_sale_events(repo: CostingRepository, writer: LineWriter, events: list[SaleEvent]) -> None:
    """Apply events of distinct sales (already recorded in the inbox)."""
    specs = {ev.event_id: event_specs(ev) for ev in events if isinstance(ev, SaleUpserted)}
    sale_ids, created = await repo.sale_ids(
        {sale_key(ev): (*sale_header(ev), sale_revenue(ev, specs)) for ev in events}
    )
    sku_ids = await repo.product_ids({s.sku for ss in specs.values() for s in ss if s.candidate and s.sku is not None})
    ids = list(sale_ids.values())
    # A sale created just now has no lines or lots yet, and no other transaction can see it.
    stored = [i for i in ids if i not in created]
    products = await repo.lock_products(await repo.sale_line_products(stored) | set(sku_ids.values()))
    sales = created | await repo.lock_sales(stored)
    if not await repo.sale_line_products(stored) <= products.keys():
        raise TransientError("a sale's lines changed while its products were being locked")
    changes = {pid: ProductChange.of(row) for pid, row in products.items()}

    old_lines: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for r in await repo.sale_lines(stored):
        old_lines[r["sale_id"]].append(r)
    rewrites: list[SaleRewrite] = []
    headers: list[tuple[Any, ...]] = []
    #: (sale_id, version, event_id, event_type, applied, note) per event.
    versions: list[tuple[int, int | None, uuid.UUID, str, bool, str | None]] = []
    for ev in events:
        sale = sales[sale_ids[sale_key(ev)]]
        if isinstance(ev, SaleUpserted):
            new = sale["id"] in created
            newer = new or sale["version"] is None or ev.version > sale["version"]
            versions.append((sale["id"], ev.version, ev.event_id, ev.event_type, newer, None if newer else "not newer"))
            if not newer:
                continue
            header = dict(sale) | dict(zip(HEADER_FIELDS, sale_header(ev), strict=True))
            rewrites.append(SaleRewrite(header, sale["status"], specs[ev.event_id], sku_ids, sale_cause(ev)))
            if new:
                continue  # stored with this header when it was created
        else:
            versions.append((sale["id"], ev.version, ev.event_id, ev.event_type, True, ev.reason))
            if STATUS_RANK[ev.reason] <= STATUS_RANK[sale["status"]]:
                continue
            rows = old_lines[sale["id"]]
            kept = [
                LineSpec(
                    r["line_no"],
                    r["sku"],
                    r["description"],
                    "inventory" if r["candidate"] else r["kind"],
                    r["quantity"],
                    r["gross_revenue"],
                )
                for r in rows
            ]
            rewrites.append(
                SaleRewrite(
                    dict(sale) | {"status": ev.reason},
                    ev.reason,
                    kept,
                    {r["sku"]: r["product_id"] for r in rows if r["candidate"]},
                    sale_cause(ev),
                )
            )
        h = rewrites[-1].sale
        headers.append(
            (
                h["id"],
                h["version"],
                h["doc_number"],
                h["txn_date"],
                h["source_created_at"],
                h["customer"],
                h["currency"],
                h["exchange_rate"],
                h["status"],
            )
        )
    await repo.update_sale_headers(headers)
    await repo.record_versions(versions)
    if rewrites:
        await _rewrite_lines(repo, writer, rewrites, changes, old_lines, created)


async def _rewrite_lines(
    repo: CostingRepository,
    writer: LineWriter,
    rewrites: list[SaleRewrite],
    changes: dict[int, ProductChange],
    old_lines: dict[int, list[asyncpg.Record]],
    created: dict[int, asyncpg.Record],
) -> None:
    """Store each sale's lines as its specs under its status, mark where each product's
    axes change, and re-cost those products once (``created``: sales new in this transaction)."""
    ids = [rw.sale["id"] for rw in rewrites]
    old_returns: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for lot in await repo.return_lots_of_sales([i for i in ids if i not in created]):
        old_returns[lot["sale_id"]].append(lot)

    gone: list[int] = []
    rows: list[tuple[Any, ...]] = []
    #: (product_id, lot_number, (sale_id, line_no), quantity, unit_cost, received_at) per return lot.
    returns: list[tuple[int, str, tuple[int, int], Decimal, Decimal, datetime]] = []
    left_demand_keys: list[tuple[int, int]] = []
    own_keys: list[tuple[int, int]] = []
    moves: list[ledger.Move] = []
    for rw in rewrites:
        sale, sale_id = rw.sale, rw.sale["id"]
        posted, is_credit = rw.status == "posted", sale["type"] == "credit_memo"
        old_rows = {r["line_no"]: r for r in old_lines[sale_id]}
        # The stock ledger: each line's demand and return lot before and after (ledger.sale_moves).
        demand: dict[int, tuple[ledger.Demand, ledger.Demand]] = {
            no: ((r["product_id"], r["quantity"], r["txn_date"]), None) for no, r in old_rows.items() if r["in_demand"]
        }
        returned: dict[int, tuple[ledger.Return, ledger.Return]] = {}
        for lot in old_returns[sale_id]:
            no = int(lot["lot_number"].rsplit("-", 1)[1])
            returned[no] = ((lot["product_id"], lot["lot_number"], lot["quantity"], lot["received_at"]), None)
        for r in old_rows.values():
            if r["in_demand"]:
                changes[r["product_id"]].touch_demand(demand_key(r), rw.cause)
        for lot in old_returns[sale_id]:
            changes[lot["product_id"]].touch_supply(supply_key(lot), rw.cause)
        new_line_nos = {s.line_no for s in rw.specs}
        # Lines that are gone take their allocations and return lots with them (cascade).
        gone += [r["id"] for no, r in old_rows.items() if no not in new_line_nos]
        received_at = datetime.combine(sale["txn_date"], time(0), tzinfo=UTC) if sale["txn_date"] else None
        for spec in rw.specs:
            product_id = rw.sku_ids.get(spec.sku) if spec.candidate and spec.sku is not None else None
            change = changes.get(product_id) if product_id is not None else None
            defined = bool(change and change.row["defined"])
            # An inventory line naming no product (no sku) is unmapped, and says so.
            kind = (
                ("inventory" if defined else "unmapped")
                if spec.candidate
                else ("unmapped" if spec.kind == "inventory" else spec.kind)
            )
            in_demand = spec.candidate and defined and posted and not is_credit and spec.quantity > 0
            rows.append(
                (
                    sale_id,
                    spec.line_no,
                    spec.sku,
                    product_id,
                    spec.description,
                    kind,
                    spec.quantity,
                    spec.signed_revenue,
                    spec.signed_revenue if posted else ZERO,
                    spec.candidate,
                    in_demand,
                    sale["txn_date"],
                    sale["source_created_at"],
                    sale["source"],
                    sale["external_id"],
                    sale["type"],
                )
            )
            old = old_rows.get(spec.line_no)
            if in_demand and product_id is not None:
                demand[spec.line_no] = (
                    demand.get(spec.line_no, (None, None))[0],
                    (product_id, spec.quantity, sale["txn_date"]),
                )
            if in_demand and change is not None:  # (a line in demand has its product's change)
                change.touch_demand(
                    demand_key_of(
                        sale["txn_date"],
                        sale["source_created_at"],
                        sale["source"],
                        sale["external_id"],
                        sale["type"],
                        spec.line_no,
                    ),
                    rw.cause,
                )
            else:
                own_keys.append((sale_id, spec.line_no))
                if old is not None and old["in_demand"]:
                    left_demand_keys.append((sale_id, spec.line_no))
            # A posted credit memo's inventory line puts a return lot back into supply.
            # (A posted sale has a date, and a product named by a line its change.)
            if (
                is_credit
                and posted
                and spec.candidate
                and spec.quantity > 0
                and product_id is not None
                and change is not None
                and received_at is not None
            ):
                lot_number = f"RET-{sale['source']}-{sale['external_id']}-{spec.line_no}"
                returns.append(
                    (product_id, lot_number, (sale_id, spec.line_no), spec.quantity, change.row["wac"], received_at)
                )
                returned[spec.line_no] = (
                    returned.get(spec.line_no, (None, None))[0],
                    (product_id, lot_number, spec.quantity, received_at),
                )
                change.touch_supply((received_at, lot_number), rw.cause)
        moves += ledger.sale_moves(sale_id, demand, returned, rw.cause[1])

    # Return lots no line asks for any more go; the lines that consumed them re-cost (their
    # allocations go with the lot, leaving a gap in the supply the tail must cover).
    kept = {(r[0], r[1]) for r in returns}
    doomed = {
        lot["id"]: rw.cause
        for rw in rewrites
        for lot in old_returns[rw.sale["id"]]
        if (lot["product_id"], lot["lot_number"]) not in kept
    }
    for r in await repo.first_consumers(list(doomed)):
        changes[r["product_id"]].touch_demand(demand_key(r), doomed[r["lot_id"]])
    await repo.delete_lines(gone)
    line_ids = await repo.upsert_lines(rows)
    await _write_return_lots(repo, returns, line_ids)
    await repo.delete_lots(list(doomed))
    await repo.delete_allocations_of([line_ids[k] for k in left_demand_keys])
    await repo.insert_moves(moves)
    # These sales' totals are re-summed at the end, so a re-cost need not move them.
    writer.sale_ids.update(ids)
    writer.created.update(created)
    for change in changes.values():
        await recost_product(repo, change, writer)

    own_rows = await repo.lines_by_id([line_ids[k] for k in own_keys])
    posted_sales = {rw.sale["id"] for rw in rewrites if rw.status == "posted"}
    causes = {rw.sale["id"]: rw.cause for rw in rewrites}
    groups: dict[tuple[int | None, int], list[asyncpg.Record]] = defaultdict(list)
    for r in own_rows:
        groups[(r["product_id"], r["sale_id"])].append(r)
    for (pid, sale_id), group in groups.items():
        change = changes.get(pid) if pid is not None else None
        wac, basis = (change.wac, change.has_basis) if change else (ZERO, True)
        await price_lines(repo, writer, group, wac, basis, posted_sales, causes[sale_id])


async def _write_return_lots(
    repo: CostingRepository,
    returns: list[tuple[int, str, tuple[int, int], Decimal, Decimal, datetime]],
    line_ids: dict[tuple[int, int], int],
) -> None:
    """Upsert the return lots the sales' lines ask for."""
    clashing = [
        lot["lot_number"] for lot in await repo.lots_by_number([(r[0], r[1]) for r in returns]) if not lot["is_return"]
    ]
    if clashing:
        raise PermanentError(f"return lot {clashing[0]} clashes with a received lot of that number")
    await repo.upsert_return_lots(
        [(pid, number, line_ids[key], qty, wac, received_at) for pid, number, key, qty, wac, received_at in returns]
    )

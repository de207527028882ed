"""Use cases of the ingest API. Each accepted write runs in one transaction that
changes the catalog, appends its event(s) to the log and the outbox, and saves
the answer under the request's Idempotency-Key; the relay publishes after commit."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import asyncpg
import structlog

from services.ingest.repository import IngestRepository
from services.ingest.schemas import LotBody, LotPatchBody, ProductBody, SaleBody
from shared.db import Connection, tenant_write
from shared.events import EventBase, LotCorrected, LotReceived, ProductUpserted, SaleLine, SaleRemoved, SaleUpserted
from shared.money import wide
from shared.web import ApiError

Operation = Callable[[IngestRepository], Awaitable[dict[str, Any]]]
T = TypeVar("T")
RemovalReason = Literal["voided", "deleted"]


class CatalogListener(Protocol):
    """Told of a catalog change (a product created or changed) in its transaction. It runs
    ``change()`` and may do more work in the same transaction before and after it (the
    QuickBooks channel re-emits the sales whose item mapping the change alters). Channels
    provide listeners; the composition root hands them to ``IngestService``."""

    async def around_catalog_change(
        self, conn: Connection, tenant_id: uuid.UUID, change: Callable[[], Awaitable[T]]
    ) -> T: ...


@dataclass(frozen=True)
class CatalogChange:
    """An operation that changes the catalog: the service runs it inside its catalog listeners."""

    operation: Operation

    async def __call__(self, repo: IngestRepository) -> dict[str, Any]:
        return await self.operation(repo)


def _now() -> datetime:
    return datetime.now(UTC)


class IngestService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        on_commit: Callable[[], None] = lambda: None,
        catalog_listeners: Sequence[CatalogListener] = (),
    ):
        self.pool = pool
        self.on_commit = on_commit
        self.catalog_listeners = tuple(catalog_listeners)

    async def write(
        self, tenant_id: uuid.UUID, idempotency_key: str | None, request_hash: bytes, operation: Operation
    ) -> tuple[int, dict[str, Any]]:
        """Run a write once per Idempotency-Key: a retry gets the first answer again."""
        async with tenant_write(self.pool, tenant_id) as conn:
            repo = IngestRepository(conn, tenant_id)
            if idempotency_key:
                # Why: requests with the same key run one after the other, so an overlapping
                # retry waits for the first and then finds its answer (lock and read: one statement).
                prior = await repo.lock_idempotency_key(idempotency_key)
                if prior is not None:
                    return _replayed(prior, request_hash)
            response = await self._run(repo, operation)
            if idempotency_key:
                await repo.save_idempotent_response(idempotency_key, request_hash, 202, response)
        self.on_commit()
        return 202, response

    async def _run(self, repo: IngestRepository, operation: Operation) -> dict[str, Any]:
        """The operation; a catalog change inside every catalog listener (the first outermost)."""
        if not isinstance(operation, CatalogChange):
            return await operation(repo)

        def around(
            listener: CatalogListener, inner: Callable[[], Awaitable[dict[str, Any]]]
        ) -> Callable[[], Awaitable[dict[str, Any]]]:
            return lambda: listener.around_catalog_change(repo.conn, repo.tenant_id, inner)

        run: Callable[[], Awaitable[dict[str, Any]]] = lambda: operation(repo)  # noqa: E731
        for listener in reversed(self.catalog_listeners):
            run = around(listener, run)
        return await run()


def _replayed(prior: asyncpg.Record, request_hash: bytes) -> tuple[int, dict[str, Any]]:
    if bytes(prior["request_hash"]) != request_hash:
        raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
    return prior["status"], prior["response"]


async def _emit(repo: IngestRepository, *events: EventBase) -> list[str]:
    correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    events = tuple(e.model_copy(update={"correlation_id": correlation_id}) for e in events)
    for event in events:
        await repo.append(event, getattr(event, "source", "manual"))
    return [str(e.event_id) for e in events]


# products ----------------------------------------------------------------------------


def create_product(body: ProductBody) -> Operation:
    @CatalogChange
    async def op(repo: IngestRepository) -> dict[str, Any]:
        if body.sku is None:
            raise ApiError(422, "validation_failed", [{"field": "sku", "problem": "Field required"}])
        if await repo.insert_product(body.sku, body.name, body.qbo_item_id, body.standard_cost) is None:
            raise ApiError(
                409, "conflict", f"product {body.sku!r} exists; use PUT /api/v1/products/{{sku}} to change it"
            )
        return {"event_ids": await _emit(repo, _product_event(repo, body.sku, body, 1)), "sku": body.sku, "version": 1}

    return op


def put_product(sku: str, body: ProductBody) -> Operation:
    @CatalogChange
    async def op(repo: IngestRepository) -> dict[str, Any]:
        if body.sku is not None and body.sku != sku:
            raise ApiError(422, "validation_failed", [{"field": "sku", "problem": "differs from the sku in the path"}])
        if await repo.lock_product(sku) is None:
            created = await repo.insert_product(sku, body.name, body.qbo_item_id, body.standard_cost)
            if created is None:  # another request created it after the lock found none
                raise ApiError(409, "conflict", f"product {sku!r} was created concurrently; retry")
            version = created
        else:
            version = await repo.update_product(sku, body.name, body.qbo_item_id, body.standard_cost)
        return {
            "event_ids": await _emit(repo, _product_event(repo, sku, body, version)),
            "sku": sku,
            "version": version,
        }

    return op


def _product_event(repo: IngestRepository, sku: str, body: ProductBody, version: int) -> ProductUpserted:
    return ProductUpserted(
        tenant_id=repo.tenant_id,
        occurred_at=_now(),
        sku=sku,
        name=body.name,
        qbo_item_id=body.qbo_item_id,
        standard_cost=body.standard_cost,
        version=version,
    )


# lots --------------------------------------------------------------------------------


def receive_lot(body: LotBody) -> Operation:
    async def op(repo: IngestRepository) -> dict[str, Any]:
        if await repo.product(body.sku) is None:
            raise ApiError(422, "validation_failed", [{"field": "sku", "problem": f"unknown product {body.sku!r}"}])
        if await repo.insert_lot(body.sku, body.lot_number, body.quantity, body.unit_cost, body.received_at) is None:
            raise ApiError(409, "conflict", f"lot {body.lot_number!r} of {body.sku!r} exists; PATCH it to correct it")
        event = LotReceived(
            tenant_id=repo.tenant_id,
            occurred_at=_now(),
            sku=body.sku,
            lot_number=body.lot_number,
            quantity=body.quantity,
            unit_cost=body.unit_cost,
            received_at=body.received_at,
            version=1,
        )
        return {"event_ids": await _emit(repo, event), "sku": body.sku, "lot_number": body.lot_number, "version": 1}

    return op


def correct_lot(sku: str, lot_number: str, body: LotPatchBody) -> Operation:
    async def op(repo: IngestRepository) -> dict[str, Any]:
        lot = await repo.lot(sku, lot_number, lock=True)
        if lot is None:
            raise ApiError(404, "not_found", f"no lot {lot_number!r} of {sku!r}")
        quantity = lot["quantity"] if body.quantity is None else body.quantity
        unit_cost = lot["unit_cost"] if body.unit_cost is None else body.unit_cost
        version = await repo.update_lot(sku, lot_number, quantity, unit_cost)
        event = LotCorrected(
            tenant_id=repo.tenant_id,
            occurred_at=_now(),
            sku=sku,
            lot_number=lot_number,
            quantity=quantity,
            unit_cost=unit_cost,
            received_at=lot["received_at"],
            version=version,
        )
        return {"event_ids": await _emit(repo, event), "sku": sku, "lot_number": lot_number, "version": version}

    return op


# manual sales ------------------------------------------------------------------------


def create_sale(body: SaleBody) -> Operation:
    async def op(repo: IngestRepository) -> dict[str, Any]:
        if body.reference is None:
            raise ApiError(422, "validation_failed", [{"field": "reference", "problem": "Field required"}])
        # One round trip: the sale inserted (unless its reference exists) and the tenant's home
        # currency. A refused exchange rate (422, checked first) rolls the insert back.
        row = await repo.insert_sale(body.reference, body.type, body.model_dump(mode="json"))
        rate = _rate(body, row["home_currency"])
        if row["version"] is None:
            raise ApiError(409, "conflict", f"a sale with reference {body.reference!r} exists")
        event = _sale_event(repo, body.reference, body, rate, row["version"], row["entered_at"])
        return {"event_ids": await _emit(repo, event), "reference": body.reference, "version": row["version"]}

    return op


def edit_sale(reference: str, body: SaleBody) -> Operation:
    async def op(repo: IngestRepository) -> dict[str, Any]:
        if body.reference is not None and body.reference != reference:
            raise ApiError(422, "validation_failed", [{"field": "reference", "problem": "differs from the path"}])
        current = await _posted_sale(repo, reference)
        if body.type != current["type"]:
            raise ApiError(
                422,
                "validation_failed",
                [
                    {
                        "field": "type",
                        "problem": f"is {current['type']!r}; a sale cannot change type (void it and enter a new one)",
                    }
                ],
            )
        rate = await _home_rate(repo, body)
        row = await repo.update_sale(reference, body.model_dump(mode="json") | {"reference": reference})
        event = _sale_event(repo, reference, body, rate, row["version"], row["entered_at"])
        return {"event_ids": await _emit(repo, event), "reference": reference, "version": row["version"]}

    return op


def remove_sale(reference: str, reason: RemovalReason) -> Operation:
    async def op(repo: IngestRepository) -> dict[str, Any]:
        current = await repo.sale(reference, lock=True)
        if current is None:
            raise ApiError(404, "not_found", f"no sale with reference {reference!r}")
        if current["status"] == "deleted" or current["status"] == reason:
            raise ApiError(409, "conflict", f"the sale is already {current['status']}")
        version = await repo.update_sale_status(reference, reason)
        event = SaleRemoved(
            tenant_id=repo.tenant_id,
            occurred_at=_now(),
            source="manual",
            sale_type=current["type"],
            external_id=reference,
            reason=reason,
            version=version,
        )
        return {"event_ids": await _emit(repo, event), "reference": reference, "status": reason, "version": version}

    return op


async def _posted_sale(repo: IngestRepository, reference: str) -> asyncpg.Record:
    current = await repo.sale(reference, lock=True)
    if current is None:
        raise ApiError(404, "not_found", f"no sale with reference {reference!r}")
    if current["status"] != "posted":
        raise ApiError(409, "conflict", f"the sale is {current['status']}; it cannot be edited")
    return current


async def _home_rate(repo: IngestRepository, body: SaleBody) -> Decimal:
    tenant = await repo.tenant()
    return _rate(body, tenant["home_currency"] if tenant is not None else None)


def _rate(body: SaleBody, home_currency: str | None) -> Decimal:
    if home_currency is None:  # the request's tenant was authenticated in this transaction
        raise LookupError("the request's tenant does not exist")
    try:
        return body.home_rate(home_currency.strip())
    except ValueError as exc:
        raise ApiError(422, "validation_failed", [{"field": "exchange_rate", "problem": str(exc)}]) from exc


def _sale_event(
    repo: IngestRepository, reference: str, body: SaleBody, rate: Decimal, version: int, entered_at: datetime
) -> SaleUpserted:
    lines = []
    with wide():
        for n, line in enumerate(body.lines, start=1):
            net = line.quantity * line.unit_price - (line.discount or 0)
            lines.append(
                SaleLine(
                    line_no=n,
                    sku=line.sku,
                    description=line.description,
                    quantity=line.quantity,
                    revenue=net * rate,
                    kind="inventory" if line.sku else "non_inventory",
                )
            )
    return SaleUpserted(
        tenant_id=repo.tenant_id,
        occurred_at=_now(),
        source="manual",
        sale_type=body.type,
        external_id=reference,
        version=version,
        doc_number=reference,
        txn_date=body.date,
        source_created_at=entered_at,
        customer=body.customer,
        currency=body.currency,
        exchange_rate=None if rate == 1 else rate,
        lines=lines,
    )

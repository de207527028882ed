"""Group commit of new manual sales (``POST /api/v1/sales`` without an Idempotency-Key).

Concurrent requests of one tenant are written in one transaction: a request joins the
tenant's pending batch; one flusher per tenant (at most ``flushers`` at once) takes what
is pending, writes it all (the tenant read, one multi-row insert of the sales, one of
the events into the log and the outbox) and commits; then every request of the batch is
answered: 202 only after that commit, 409 for a reference that exists, 422 for an
exchange rate the tenant's currency refuses (checked before anything is written). While
one batch commits, the next requests gather, so a busy tenant pays one transaction (and
one WAL flush) for many sales, and a lone request waits for nobody.

A batch never mixes tenants (row-level security scopes its transaction to one). It checks
the cached API keys of all its requests in its first statement (shared/db.py); if one
was revoked the batch fails as a whole, and each request is authenticated again and, if
its key is live, retried by the auth middleware. Any other failure of a batch writes its
requests again one by one (``IngestService.write``), so only the culprit gets the error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog

from services.ingest import service as uc
from services.ingest.repository import IngestRepository
from services.ingest.schemas import SaleBody
from shared.db import CACHED_KEY, scoped_transaction, tenant_setting_sql
from shared.events import dump_event
from shared.web import ApiError

#: Sales written by one transaction at most.
MAX_BATCH = 200

INSERT_SALES = """
INSERT INTO manual_sales (tenant_id, reference, type, version, entered_at, body)
SELECT $1, s.reference, s.type, 1, now(), s.body::jsonb
FROM unnest($2::text[], $3::text[], $4::text[]) AS s(reference, type, body)
ON CONFLICT (tenant_id, reference) DO NOTHING RETURNING reference, version, entered_at"""
APPEND_EVENTS = """
WITH logged AS (
    INSERT INTO event_log (event_id, tenant_id, event_type, source, occurred_at, correlation_id, body)
    SELECT e.id, $1, e.type, 'manual', e.at, e.correlation_id, e.body
    FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::bytea[])
         WITH ORDINALITY AS e(id, type, at, correlation_id, body, n)
    ORDER BY e.n
    RETURNING seq)
INSERT INTO outbox (seq) SELECT seq FROM logged"""


@dataclass
class _Pending:
    body: SaleBody
    correlation_id: str | None
    key_id: uuid.UUID | None
    answer: asyncio.Future[dict[str, Any]]


@dataclass
class _Tenant:
    pending: list[_Pending] = field(default_factory=list)
    flushing: int = 0


class SaleGroupCommit:
    def __init__(
        self,
        service: uc.IngestService,
        write_one: Callable[[uuid.UUID, SaleBody], Awaitable[tuple[int, dict[str, Any]]]],
        flushers: int = 2,
    ):
        self.service = service
        self.write_one = write_one
        self.flushers = flushers
        self._tenants: dict[uuid.UUID, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Transactions committed and sales they wrote (tests and metrics).
        self.batches = 0
        self.sales = 0

    async def create_sale(self, tenant_id: uuid.UUID, body: SaleBody) -> tuple[int, dict[str, Any]]:
        if body.reference is None:
            raise ApiError(422, "validation_failed", [{"field": "reference", "problem": "Field required"}])
        state = self._tenants.setdefault(tenant_id, _Tenant())
        item = _Pending(
            body,
            structlog.contextvars.get_contextvars().get("correlation_id"),
            CACHED_KEY.get(),
            asyncio.get_running_loop().create_future(),
        )
        state.pending.append(item)
        if state.flushing < self.flushers:
            state.flushing += 1
            task = asyncio.create_task(self._flush(tenant_id, state))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return 202, await item.answer

    async def _flush(self, tenant_id: uuid.UUID, state: _Tenant) -> None:
        try:
            while state.pending:
                batch: list[_Pending] = []
                rest: list[_Pending] = []
                seen: set[str | None] = set()
                for item in state.pending:
                    # One request per reference in a batch (a second one waits for the next):
                    # the insert's RETURNING names the reference that got in.
                    if len(batch) < MAX_BATCH and item.body.reference not in seen:
                        batch.append(item)
                        seen.add(item.body.reference)
                    else:
                        rest.append(item)
                state.pending = rest
                await self._write(tenant_id, batch)
        finally:
            state.flushing -= 1
            if not state.flushing and not state.pending:
                self._tenants.pop(tenant_id, None)

    async def _write(self, tenant_id: uuid.UUID, batch: list[_Pending]) -> None:
        try:
            answers = await self._transaction(tenant_id, batch)
        except asyncio.CancelledError:
            for item in batch:
                item.answer.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1 or _is_auth(exc):
                _fail(batch, exc)
                return
            await asyncio.gather(*(self._one(tenant_id, item) for item in batch))
            return
        self.batches += 1
        for item, answer in zip(batch, answers, strict=True):  # one answer per request
            self.sales += not isinstance(answer, ApiError)
            _answer(item, answer)
        if any(not isinstance(a, ApiError) for a in answers):
            self.service.on_commit()

    async def _one(self, tenant_id: uuid.UUID, item: _Pending) -> None:
        """A request of a failed batch, written alone through the ordinary path (with its own
        key check and correlation id)."""
        key_token = CACHED_KEY.set(item.key_id)
        structlog.contextvars.bind_contextvars(correlation_id=item.correlation_id)
        try:
            _, response = await self.write_one(tenant_id, item.body)
        except Exception as exc:
            _answer(item, exc)
        else:
            _answer(item, response)
        finally:
            CACHED_KEY.reset(key_token)

    async def _transaction(self, tenant_id: uuid.UUID, batch: list[_Pending]) -> list[dict[str, Any] | ApiError]:
        """Write the batch in one transaction; per request its answer or its refusal."""
        keys = sorted({item.key_id for item in batch if item.key_id is not None})
        token = CACHED_KEY.set(None)
        try:
            scope = tenant_setting_sql(tenant_id)
        finally:
            CACHED_KEY.reset(token)
        checks = "".join(f", api_key_check('{key}')" for key in keys)
        answers: list[dict[str, Any] | ApiError | None] = [None] * len(batch)
        async with scoped_transaction(self.service.pool, f"BEGIN; {scope}{checks}") as conn:
            repo = IngestRepository(conn, tenant_id)
            tenant = await repo.tenant()
            home = tenant["home_currency"] if tenant is not None else None
            rates = {}
            for n, item in enumerate(batch):
                try:
                    rates[n] = uc._rate(item.body, home)
                except ApiError as exc:
                    answers[n] = exc
            todo = [n for n in range(len(batch)) if answers[n] is None]
            bodies = [batch[n].body for n in todo]
            rows = await conn.fetch(
                INSERT_SALES,
                tenant_id,
                [b.reference for b in bodies],
                [b.type for b in bodies],
                [_json(b.model_dump(mode="json")) for b in bodies],
            )
            inserted = {r["reference"]: r for r in rows}
            events = []
            for n in todo:
                body = batch[n].body
                reference = body.reference or ""
                row = inserted.get(reference)
                if row is None:
                    answers[n] = ApiError(409, "conflict", f"a sale with reference {reference!r} exists")
                    continue
                event = uc._sale_event(repo, reference, body, rates[n], row["version"], row["entered_at"])
                event = event.model_copy(update={"correlation_id": batch[n].correlation_id})
                events.append(event)
                answers[n] = {"event_ids": [str(event.event_id)], "reference": reference, "version": row["version"]}
            if events:
                await conn.execute(
                    APPEND_EVENTS,
                    tenant_id,
                    [e.event_id for e in events],
                    [e.routing_key for e in events],
                    [e.occurred_at for e in events],
                    [e.correlation_id for e in events],
                    [dump_event(e) for e in events],
                )
        return [a if a is not None else ApiError(500, "internal_error") for a in answers]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _is_auth(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError)


def _answer(item: _Pending, result: dict[str, Any] | BaseException) -> None:
    """Settle a request's answer (a request that went away has cancelled it already)."""
    if item.answer.done():
        return
    if isinstance(result, BaseException):
        item.answer.set_exception(result)
    else:
        item.answer.set_result(result)


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for item in batch:
        _answer(item, exc)

"""HTTP edge of the ingest API: parse and validate, hand a use case to the service,
answer. No SQL and no business rules here."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from services.ingest import openapi
from services.ingest import service as uc
from services.ingest.app_keys import GROUP_COMMIT, SERVICE
from services.ingest.repository import IngestRepository
from services.ingest.schemas import LotBody, LotPatchBody, ProductBody, SaleBody
from shared.db import tenant_transaction
from shared.web import POOL, TENANT, ApiError, json_response, read_json

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


#: pydantic error types whose message is the text of an exception raised in a validator.
#: Ours raise ValueError with our own words; anything else gets a generic problem.
_VALIDATOR_ERRORS = {"value_error", "assertion_error"}


def _problem(error: ErrorDetails) -> str:
    """pydantic's own message for its type and constraint errors; for a validator's
    error, our ValueError text ('Value error, ' dropped) and never another exception's."""
    if error["type"] in _VALIDATOR_ERRORS:
        cause = (error.get("ctx") or {}).get("error")
        if type(cause) is ValueError:
            return str(cause)
        return "invalid value"
    return error["msg"]


def validation_detail(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(map(str, e["loc"])) or "body", "problem": _problem(e)}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def parse(model: type[M], data: object) -> M:
    if not isinstance(data, dict):
        raise ApiError(422, "validation_failed", [{"field": "body", "problem": "a JSON object is expected"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", validation_detail(exc)) from exc


async def _write(request: web.Request, operation: uc.Operation) -> web.Response:
    raw = await request.read()
    request_hash = hashlib.sha256(request.method.encode() + request.path.encode() + b"\0" + raw).digest()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters")
    status, body = await request.app[SERVICE].write(request[TENANT], key, request_hash, operation)
    return json_response(body, status)


async def _body(request: web.Request, model: type[M]) -> M:
    return parse(model, await read_json(request))


def _named(request: web.Request, name: str) -> str:
    """A path segment naming a stored object. Stored text never holds NUL (PostgreSQL
    refuses it), so a name with one names nothing: 404, not the database's error."""
    value = request.match_info[name]
    if "\x00" in value:
        raise ApiError(404, "not_found", f"no such {name}")
    return value


async def _read(request: web.Request, read: Callable[[IngestRepository], Awaitable[T]]) -> T:
    """Run a read in a read-only transaction scoped to the request's tenant."""
    async with tenant_transaction(request.app[POOL], request[TENANT], readonly=True) as conn:
        return await read(IngestRepository(conn, request[TENANT]))


async def _read_one(
    request: web.Request, read: Callable[[IngestRepository], Awaitable[asyncpg.Record | None]], missing: str
) -> web.Response:
    """One stored object as JSON; 404 (``missing``) when there is none."""
    row = await _read(request, read)
    if row is None:
        raise ApiError(404, "not_found", missing)
    return json_response(dict(row))


@routes.get("/api/v1/openapi.json")
async def openapi_document(_request: web.Request) -> web.Response:
    return json_response(openapi.DOCUMENT)


# products ---------------------------------------------------------------------------


@routes.post("/api/v1/products")
async def post_product(request: web.Request) -> web.Response:
    return await _write(request, uc.create_product(await _body(request, ProductBody)))


@routes.put("/api/v1/products/{sku}")
async def put_product(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    if "\x00" in sku:
        raise ApiError(422, "validation_failed", [{"field": "sku", "problem": "must not contain the NUL character"}])
    return await _write(request, uc.put_product(sku, await _body(request, ProductBody)))


@routes.get("/api/v1/products")
async def list_products(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 500:  # refused, not clamped: a client asking for 1000 learns it gets 500
        raise ApiError(400, "invalid_parameter", {"parameter": "limit", "problem": "an integer 1-500"})
    after = request.query.get("cursor", "")
    if "\x00" in after:
        raise ApiError(400, "invalid_parameter", {"parameter": "cursor", "problem": "a sku (no NUL character)"})
    items = [dict(r) for r in await _read(request, lambda repo: repo.products(after, limit))]
    return json_response({"items": items, "next_cursor": items[-1]["sku"] if len(items) == limit else None})


@routes.get("/api/v1/products/{sku}")
async def get_product(request: web.Request) -> web.Response:
    sku = _named(request, "sku")
    return await _read_one(request, lambda repo: repo.product(sku), f"no product {sku!r}")


# lots -------------------------------------------------------------------------------


@routes.post("/api/v1/lots")
async def post_lot(request: web.Request) -> web.Response:
    return await _write(request, uc.receive_lot(await _body(request, LotBody)))


@routes.patch("/api/v1/lots/{sku}/{lot_number}")
async def patch_lot(request: web.Request) -> web.Response:
    body = await _body(request, LotPatchBody)
    return await _write(request, uc.correct_lot(_named(request, "sku"), _named(request, "lot_number"), body))


@routes.get("/api/v1/lots/{sku}/{lot_number}")
async def get_lot(request: web.Request) -> web.Response:
    sku, lot_number = _named(request, "sku"), _named(request, "lot_number")
    return await _read_one(request, lambda repo: repo.lot(sku, lot_number), "no such lot")


# manual sales -----------------------------------------------------------------------


@routes.post("/api/v1/sales")
async def post_sale(request: web.Request) -> web.Response:
    if "Idempotency-Key" not in request.headers:  # group commit (services/ingest/group_commit.py)
        body = await _body(request, SaleBody)
        status, response = await request.app[GROUP_COMMIT].create_sale(request[TENANT], body)
        return json_response(response, status)
    return await _write(request, uc.create_sale(await _body(request, SaleBody)))


@routes.put("/api/v1/sales/{reference}")
async def put_sale(request: web.Request) -> web.Response:
    return await _write(request, uc.edit_sale(_named(request, "reference"), await _body(request, SaleBody)))


@routes.post("/api/v1/sales/{reference}/void")
async def void_sale(request: web.Request) -> web.Response:
    return await _write(request, uc.remove_sale(_named(request, "reference"), "voided"))


@routes.delete("/api/v1/sales/{reference}")
async def delete_sale(request: web.Request) -> web.Response:
    return await _write(request, uc.remove_sale(_named(request, "reference"), "deleted"))

"""aiohttp pieces common to the HTTP services: JSON errors, API-key auth,
request correlation ids, and JSON with Decimal amounts as strings."""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web

from shared.api_keys import KeyUsage, RateLimiter, bearer_key, lookup_key
from shared.db import BadInputError, UnavailableError, translate
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("http")

POOL = web.AppKey("pool", asyncpg.Pool)
TENANT = web.RequestKey("tenant", uuid.UUID)


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(value: Any, status: int = 200) -> web.Response:
    """JSON by orjson (a list page encodes in a tenth of json.dumps' time); dates,
    datetimes and UUIDs as ISO 8601 / canonical strings, Decimals as strings."""
    body = orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


def error_body(error: str, detail: Any = None) -> dict:
    return {"error": error, "detail": detail}


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every failure becomes a JSON body with a correct status; never a bare 500 page."""
    correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_response(error_body(exc.error, exc.detail), exc.status)
    except web.HTTPRequestEntityTooLarge as exc:
        response = json_response(error_body("body_too_large", exc.text), 413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_response(error_body(exc.reason.lower().replace(" ", "_"), exc.text), exc.status)
    except Exception as exc:  # noqa: BLE001 - translated: unavailable is 503, anything else a logged 500
        if isinstance(translate(exc), BadInputError):
            response = json_response(error_body("invalid_input", str(translate(exc))), 422)
        elif isinstance(translate(exc), UnavailableError):
            log.warning("http.database_unavailable", error=str(exc))
            response = json_response(error_body("unavailable", "the database is unavailable; retry later"), 503)
        else:
            log.exception("http.unhandled", path=request.path)
            response = json_response(error_body("internal_error", "an unexpected error; it has been logged"), 500)
    finally:
        structlog.contextvars.unbind_contextvars("correlation_id", "tenant")
    response.headers["X-Correlation-ID"] = correlation_id
    return response


def auth_middleware(protected_prefix: str = "/api/v1/", settings: Settings | None = None,
                    usage: KeyUsage | None = None):
    """API-key authentication of the paths under ``protected_prefix``, then the key's rate
    limit (``settings.api_rate_limit_per_minute``/``_burst``, per process; the defaults of
    Settings when none are given) and the record of its last use (at most once a minute,
    KeyUsage). The Authorization header is read from its raw bytes: a value that is not
    ASCII, malformed or unknown is a 401 like a missing one, and is never logged."""
    settings = settings or Settings()
    limiter = RateLimiter(settings.api_rate_limit_per_minute, settings.api_rate_limit_burst)
    usage = usage or KeyUsage()

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith(protected_prefix):
            values = [value for name, value in request.raw_headers if name.lower() == b"authorization"]
            key = bearer_key(values[0]) if len(values) == 1 else None
            match = await lookup_key(request.app[POOL], key) if key is not None else None
            if match is None:
                raise ApiError(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key> "
                               "(this one is missing, malformed, unknown, expired or revoked)")
            wait = limiter.acquire(match.id)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                response = json_response(error_body("rate_limited", f"too many requests with this API key; "
                                                    f"retry in {retry_after} s"), 429)
                response.headers["Retry-After"] = str(retry_after)
                return response
            request[TENANT] = match.tenant_id
            structlog.contextvars.bind_contextvars(tenant=str(match.tenant_id))
            await usage.touch(request.app[POOL], match)
        return await handler(request)

    middleware.limiter = limiter  # type: ignore[attr-defined]
    middleware.usage = usage  # type: ignore[attr-defined]
    return middleware


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (amounts kept exact), or a 400 saying why not."""
    raw = await request.read()
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {type(exc).__name__}: {exc}") from exc

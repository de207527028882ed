"""aiohttp pieces common to the HTTP services: JSON errors, API-key auth,
request correlation ids, and JSON with Decimal amounts as strings."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Collection
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from shared.api_keys import KeyCache, KeyUsage, RateLimiter, bearer_key, lookup_key
from shared.db import CACHED_KEY, BadInputError, UnavailableError, translate
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("http")

POOL = web.AppKey("pool", asyncpg.Pool)
TENANT = web.RequestKey("tenant", uuid.UUID)
#: Whether the request's tenant is entitled to sales tracking (shared/plans.py).
SALES_TRACKING = web.RequestKey("sales_tracking", bool)


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


def error_body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "detail": detail}


_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _correlation_id(given: str | None) -> str:
    """The client's X-Correlation-ID if it is a plain token (it is echoed in a response
    header and logged), else a new one: non-UTF-8 bytes, spaces or a long value are replaced."""
    return given if given is not None and _CORRELATION_ID.fullmatch(given) else str(uuid.uuid4())


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON body with a correct status; never a bare 500 page.
    Bodies carry our own words only, never a library's or the database's exception text."""
    correlation_id = _correlation_id(request.headers.get("X-Correlation-ID"))
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_response(error_body(exc.error, exc.detail), exc.status)
    except web.HTTPRequestEntityTooLarge:
        response = json_response(error_body("body_too_large", "the request body is too large"), 413)
    except HttpProcessingError as exc:  # the body broke off or is malformed (chunking, length)
        log.info("http.malformed_body", path=request.path, problem=type(exc).__name__)
        response = json_response(error_body("bad_request", "the request body is not well-formed HTTP"), 400)
    except web.HTTPMethodNotAllowed as exc:  # RFC 9110: a 405 names the methods allowed
        response = json_response(error_body("method_not_allowed", f"{request.method} is not allowed here"), 405)
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_response(error_body(exc.reason.lower().replace(" ", "_"), exc.reason), exc.status)
    except Exception as exc:
        translated = translate(exc)
        if isinstance(translated, BadInputError):
            # The database's message quotes the value: log its kind only.
            log.info("http.bad_input", path=request.path, error=type(exc).__name__)
            response = json_response(error_body("invalid_input", "a value cannot be stored"), 422)
        elif isinstance(translated, UnavailableError):
            log.warning("http.database_unavailable", error=str(exc))
            response = json_response(error_body("unavailable", "the database is unavailable; retry later"), 503)
        else:
            log.exception("http.unhandled", path=request.path)
            response = json_response(error_body("internal_error", "an unexpected error; it has been logged"), 500)
    finally:
        structlog.contextvars.unbind_contextvars("correlation_id", "tenant")
    response.headers["X-Correlation-ID"] = correlation_id
    return response


def auth_middleware(
    protected_prefix: str = "/api/v1/",
    settings: Settings | None = None,
    usage: KeyUsage | None = None,
    public_paths: Collection[str] = (),
    cache: KeyCache | None = None,
) -> Middleware:
    """API-key authentication of the paths under ``protected_prefix`` (except ``public_paths``,
    such as an API's own OpenAPI document, which holds no tenant data), then the key's rate
    limit (``settings.api_rate_limit_per_minute``/``_burst``, per process; the defaults of
    Settings when none are given) and the record of its last use (at most once a minute,
    KeyUsage). The Authorization header is read from its raw bytes: a value that is not
    ASCII, malformed or unknown is a 401 like a missing one, and is never logged.

    Keys are cached for ``settings.api_key_cache_seconds`` (KeyCache): a request whose key
    came from the cache has every unit of work check it first (``shared.db.CACHED_KEY``);
    when that check fails (revoked, expired, tenant no longer entitled: nothing was
    written), the entry is dropped and the request authenticated again from the database:
    401 for a dead key, else it runs again with the tenant's current entitlement."""
    settings = settings or Settings()
    limiter = RateLimiter(settings.api_rate_limit_per_minute, settings.api_rate_limit_burst)
    usage = usage or KeyUsage()
    cache = cache or KeyCache(settings.api_key_cache_seconds)
    public = frozenset(public_paths)
    refused = ApiError(
        401,
        "unauthorized",
        "a valid API key is required: Authorization: Bearer <key> "
        "(this one is missing, malformed, unknown, expired or revoked)",
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(protected_prefix) and request.path not in public:
            values = [value for name, value in request.raw_headers if name.lower() == b"authorization"]
            key = bearer_key(values[0]) if len(values) == 1 else None
            match, cached = await cache.lookup(request.app[POOL], key) if key is not None else (None, False)
            if match is None or key is None:
                raise refused
            wait = limiter.acquire(match.id)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                response = json_response(
                    error_body("rate_limited", f"too many requests with this API key; retry in {retry_after} s"), 429
                )
                response.headers["Retry-After"] = str(retry_after)
                return response
            request[TENANT] = match.tenant_id
            request[SALES_TRACKING] = match.sales_tracking
            structlog.contextvars.bind_contextvars(tenant=str(match.tenant_id))
            await usage.touch(request.app[POOL], match)
            if cached:
                token = CACHED_KEY.set(match.id)
                try:
                    return await handler(request)
                except asyncpg.InvalidAuthorizationSpecificationError:
                    cache.evict(key)  # revoked, expired or downgraded since it was cached
                finally:
                    CACHED_KEY.reset(token)
                match = await lookup_key(request.app[POOL], key)
                if match is None:
                    raise refused from None
                request[SALES_TRACKING] = match.sales_tracking
        return await handler(request)

    middleware.cache = cache  # type: ignore[attr-defined]  # read by tests and operators
    middleware.limiter = limiter  # type: ignore[attr-defined]  # read by tests and operators
    middleware.usage = usage  # type: ignore[attr-defined]  # read by tests and operators
    return middleware


#: Longer JSON integers are read as Decimal (Python's int() refuses over 4300 digits), so
#: a huge number is refused by the field's validation (422 naming it), not as bad JSON.
_MAX_INT_DIGITS = 4000


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (amounts kept exact), or a 400 saying why not (in our
    words: the position of a syntax error, never the parser's message)."""
    raw = await request.read()
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({where})") from exc
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8 JSON") from exc
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from exc

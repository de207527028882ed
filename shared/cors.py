"""CORS for a browser page served by another origin (the Sales tab, served by the query
service, writes through the ingest API). Only the origins listed in
``CORS_ALLOWED_ORIGINS`` get CORS headers; none are listed by default (no CORS).

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is
answered here, before authentication (a browser sends no credentials with it). Requests
may carry the ``Authorization``, ``Content-Type`` and ``Idempotency-Key`` headers; paths in
``credentialed_paths`` (the QuickBooks connect flow, whose cookie binds the browser) also
allow credentials. Error answers carry the headers too, so the page can read them."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
EXPOSED_HEADERS = "X-Correlation-ID, Retry-After, Content-Disposition"
MAX_AGE = "600"


def parse_origins(value: str) -> frozenset[str]:
    """``"http://a:1, http://b:2"`` → the origins (no trailing slash, empty entries dropped)."""
    return frozenset(o.strip().rstrip("/") for o in value.split(",") if o.strip())


def cors_middleware(origins: Collection[str], credentialed_paths: Collection[str] = ()) -> Middleware:
    allowed = frozenset(origins)
    credentialed = frozenset(credentialed_paths)

    def decorate(response: web.StreamResponse, origin: str, path: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if path in credentialed:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or origin not in allowed:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            preflight = web.Response(status=204)
            preflight.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            preflight.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            preflight.headers["Access-Control-Max-Age"] = MAX_AGE
            decorate(preflight, origin, request.path)
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a redirect raised past the error middleware
            decorate(exc, origin, request.path)
            raise
        if not response.prepared:
            decorate(response, origin, request.path)
        return response

    return middleware

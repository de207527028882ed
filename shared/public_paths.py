"""API-key auth except on a few public paths (an API's own OpenAPI document): wraps
shared.web.auth_middleware, which protects everything under its prefix."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from shared.web import auth_middleware


def auth_except_public(public_paths: Collection[str]):
    auth = auth_middleware()
    public = frozenset(public_paths)

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path in public:
            return await handler(request)
        return await auth(request, handler)

    return middleware

"""Application wiring both simulators share: ``build_app`` (state under an ``AppKey``, the webhook sender
started and stopped with the app, the route tables) and ``serve`` (``python -m tools.<sim>``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol, TypeVar

from aiohttp import web

from shared.logging import configure, get_logger

#: Request bodies up to 8 MiB (bulk writes, raw fixtures).
CLIENT_MAX_SIZE = 8 * 1024 * 1024


class _Sender(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


class _HasSender(Protocol):
    @property
    def webhooks(self) -> _Sender: ...


S = TypeVar("S", bound=_HasSender)


def build_app(
    sim: S,
    key: web.AppKey[S],
    route_tables: Iterable[web.RouteTableDef],
    middlewares: Iterable[Callable[..., Any]] = (),
) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=list(middlewares))
    app[key] = sim

    async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
        sender = app[key].webhooks
        await sender.start()
        yield
        await sender.close()

    app.cleanup_ctx.append(webhooks_ctx)
    for routes in route_tables:
        app.router.add_routes(routes)
    return app


class _ServeConfig(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def log_format(self) -> str: ...
    @property
    def log_level(self) -> str: ...


C = TypeVar("C", bound=_ServeConfig)


def serve(config: C, create_app: Callable[[C], web.Application], logger: str, message: str, **fields: Any) -> None:
    """Log ``message`` with host, port and ``fields``, then serve until stopped."""
    configure(config.log_format, config.log_level)
    get_logger(logger).info(message, host=config.host, port=config.port, **fields)
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None, print=None)

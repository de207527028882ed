"""Plumbing of the ``/sim`` control APIs (not part of QBO or Xero): the handler decorator that maps refusals
and bad bodies to ``{"error": …}`` answers, the JSON-object body, the ``?notify=false`` switch, the health
routes and ``POST /sim/webhooks/config``."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import ValidationError

from tools.sim_common.errors import SimError
from tools.sim_common.jsonutil import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
S = TypeVar("S")


def control_for(key: web.AppKey[S]) -> Callable[[Callable[[web.Request, S], Awaitable[web.StreamResponse]]], Handler]:
    """The ``@control`` decorator of a simulator: the handler gets its state object (``app[key]``) too."""

    def control(handler: Callable[[web.Request, S], Awaitable[web.StreamResponse]]) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request, request.app[key])
            except SimError as exc:
                return json_response({"error": str(exc)}, status=exc.status)
            except ValidationError as exc:
                return json_response({"error": "invalid body", "detail": json.loads(exc.json())}, status=400)
            except json.JSONDecodeError as exc:
                return json_response({"error": f"invalid JSON: {exc}"}, status=400)

        return wrapper

    return control


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (``{}`` without a body)."""
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise SimError(400, "body must be a JSON object")
    return body


def notify_requested(request: web.Request) -> bool:
    """False when the change asks for no webhook (``?notify=false``, ``0`` or ``no``)."""
    return request.query.get("notify", "true").lower() not in ("false", "0", "no")


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


class _Configurable(Protocol):
    def model_dump(self) -> dict[str, Any]: ...


class _Webhooks(Protocol):
    def configure(self, changes: dict[str, Any]) -> _Configurable: ...


class _HasWebhooks(Protocol):
    @property
    def webhooks(self) -> _Webhooks: ...


W = TypeVar("W", bound=_HasWebhooks)


def add_shared_routes(routes: web.RouteTableDef, key: web.AppKey[W]) -> None:
    """``GET /healthz``, ``GET /sim/health`` and ``POST /sim/webhooks/config`` (merge fault options; answers
    them all)."""
    routes.get("/healthz")(health)
    routes.get("/sim/health")(health)

    @routes.post("/sim/webhooks/config")
    @control_for(key)
    async def webhook_config(request: web.Request, sim: W) -> web.Response:
        faults = sim.webhooks.configure(await read_body(request))
        return json_response(faults.model_dump())

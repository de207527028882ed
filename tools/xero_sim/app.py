"""Composition root: ``create_app(config)`` builds the aiohttp application serving the Accounting API, OAuth and
``/connections`` (Xero spreads them over login.xero.com, identity.xero.com and api.xero.com; here one origin),
the ``/sim`` control API and ``GET /healthz``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from tools.xero_sim import api, control, oauth
from tools.xero_sim.config import SimConfig
from tools.xero_sim.demo import DEMO_TENANT_ID
from tools.xero_sim.simulator import SIM, Simulator


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    sender = app[SIM].webhooks
    await sender.start()
    yield
    await sender.close()


def create_app(config: SimConfig | None = None) -> web.Application:
    config = config or SimConfig()
    sim = Simulator(config)
    if config.demo:
        sim.org(DEMO_TENANT_ID)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM] = sim
    app.cleanup_ctx.append(_webhooks_ctx)
    app.router.add_routes(control.routes)
    app.router.add_routes(oauth.routes)
    app.router.add_routes(api.routes)
    return app

"""Composition root: ``create_app(config)`` builds the aiohttp application serving the QBO API,
OAuth, and the ``/sim`` control API from one origin."""

from __future__ import annotations

from aiohttp import web

from tools.qbo_sim import api, control, oauth
from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.demo import DEMO_REALM_ID
from tools.qbo_sim.simulator import SIM, Simulator


async def _webhooks_ctx(app: web.Application):
    sender = app[SIM].webhooks
    await sender.start()
    yield
    await sender.close()


def create_app(config: SimConfig | None = None) -> web.Application:
    config = config or SimConfig()
    sim = Simulator(config)
    if config.demo:
        sim.company_or_demo(DEMO_REALM_ID)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM] = sim
    app.cleanup_ctx.append(_webhooks_ctx)
    app.router.add_routes(control.routes)
    app.router.add_routes(oauth.routes)
    app.router.add_routes(api.routes)
    return app

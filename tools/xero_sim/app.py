"""Composition root: ``create_app(config)`` builds the aiohttp application serving the Accounting API, OAuth and
``/connections`` (Xero spreads them over login.xero.com, identity.xero.com and api.xero.com; here one origin),
the ``/sim`` control API and ``GET /healthz``."""

from __future__ import annotations

from aiohttp import web

from tools.sim_common.app import build_app
from tools.xero_sim import api, control, oauth
from tools.xero_sim.config import SimConfig
from tools.xero_sim.demo import DEMO_TENANT_ID
from tools.xero_sim.simulator import SIM, Simulator


def create_app(config: SimConfig | None = None) -> web.Application:
    config = config or SimConfig()
    sim = Simulator(config)
    if config.demo:
        sim.org(DEMO_TENANT_ID)
    return build_app(sim, SIM, [control.routes, oauth.routes, api.routes])

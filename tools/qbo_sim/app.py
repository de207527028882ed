"""Composition root: ``create_app(config)`` builds the aiohttp application serving the QBO API,
OAuth (with an OpenID discovery document, so intuit-oauth can be pointed at the simulator), the
``/sim`` control API and ``GET /healthz`` from one origin.

Every error the routes do not answer themselves (unknown path 404, wrong method 405, an
unexpected exception 500) is a JSON ``Fault`` body (docs/quickbooks-api.md §2.7), never aiohttp's plain text.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from shared.logging import get_logger
from tools.qbo_sim import api, control, faults, oauth
from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.demo import DEMO_REALM_ID
from tools.qbo_sim.simulator import SIM, Simulator
from tools.sim_common.app import build_app

log = get_logger("qbo_sim")


@web.middleware
async def fault_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    tz = request.app[SIM].tz
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status in (404, 405):
            return faults.fault(
                "500",
                "Unsupported Operation",
                f"Operation {request.method} {request.path} is not supported.",
                tz,
                status=exc.status,
                headers=exc.headers if exc.status == 405 else None,
            )
        code = "10000" if exc.status >= 500 else "2010"
        return faults.fault(
            code,
            exc.reason,
            exc.text or exc.reason,
            tz,
            status=exc.status,
            fault_type="SystemFault" if exc.status >= 500 else "ValidationFault",
        )
    except Exception:
        log.exception("qbo simulator request failed", method=request.method, path=request.path)
        return faults.fault(
            "10000",
            "An application error has occurred while processing your request",
            "System Failure Error: unexpected error in the simulator",
            tz,
            status=500,
            fault_type="SystemFault",
        )


def create_app(config: SimConfig | None = None) -> web.Application:
    config = config or SimConfig()
    sim = Simulator(config)
    if config.demo:
        sim.company_or_demo(DEMO_REALM_ID)
    return build_app(sim, SIM, [control.routes, oauth.routes, api.routes], middlewares=[fault_bodies])

"""The QBO Accounting API as Intuit serves it: entity reads, ``query`` and ``cdc``.

Every request under ``/v3/company/{realm}/`` is counted, throttled (429 + XML 3001 body),
optionally slowed or failed (``/sim/api/config``) and authenticated with the bearer token
(401 lower-case ``fault`` body when unknown/expired, 403 when the token is for another realm).
``minorversion`` is accepted and ignored; responses are always JSON (except the throttle body).
"""

from __future__ import annotations

import asyncio
import functools
import uuid

from aiohttp import web

from tools.qbo_sim import cdc, faults, query, timefmt
from tools.qbo_sim.entities import ENTITY_NAMES
from tools.qbo_sim.jsonutil import json_response
from tools.qbo_sim.simulator import SIM, Simulator
from tools.qbo_sim.store import Company

routes = web.RouteTableDef()


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def qbo_api(handler):
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIM]
        realm = request.match_info["realm"]
        sim.stats.add(realm, "requests")
        if not sim.throttle.admit(realm):
            sim.stats.add(realm, "throttled")
            return faults.throttled(sim.tz)
        try:
            if sim.api_faults.latency:
                await asyncio.sleep(sim.api_faults.latency)
            if sim.api_faults.fail_next > 0:
                sim.api_faults.fail_next -= 1
                return faults.service_error(sim.api_faults.fail_status, sim.tz)
            token = _bearer(request)
            verdict = sim.tokens.check(token, realm) if token else "missing"
            if verdict != "ok":
                sim.stats.add(realm, "unauthorized")
                if verdict == "wrong_realm":
                    return faults.forbidden(f"Token is not authorized for realm {realm}")
                return faults.unauthorized({"missing": "Authorization header missing or not Bearer",
                                            "expired": "Token expired: access token is no longer valid",
                                            "unknown": "Invalid bearer token"}[verdict])
            company = sim.store.companies.get(realm)
            if company is None:
                return faults.forbidden(f"Company {realm} not found")
            response = await handler(request, sim, company)
            response.headers["intuit_tid"] = str(uuid.uuid4())
            return response
        finally:
            sim.throttle.release(realm)

    return wrapper


def _envelope(key: str, value, sim: Simulator) -> web.Response:
    return json_response({key: value, "time": timefmt.response_time(timefmt.now(), sim.tz)})


@routes.get(r"/v3/company/{realm}/{entity:invoice|salesreceipt|creditmemo|item}/{id}")
@qbo_api
async def read_entity(request: web.Request, sim: Simulator, company: Company) -> web.Response:
    name = ENTITY_NAMES[request.match_info["entity"]]
    record = company.records[name].get(request.match_info["id"])
    if record is None:
        return faults.not_found(sim.tz)
    if record.deleted:
        return faults.deleted(sim.tz)
    return _envelope(name, record.render(sim.tz), sim)


@routes.route("*", "/v3/company/{realm}/query")
@qbo_api
async def run_query(request: web.Request, sim: Simulator, company: Company) -> web.Response:
    if request.method == "POST":
        text = await request.text()
    elif request.method == "GET":
        text = request.query.get("query", "")
    else:
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    if not text.strip():
        return faults.query_parse_error("Encountered <EOF>", sim.tz)
    try:
        parsed = query.parse(text)
        result = query.execute(company, parsed, sim.config.query_max_results)
    except query.QueryError as exc:
        return (faults.query_parse_error if exc.parse else faults.query_validation_error)(str(exc), sim.tz)
    return _envelope("QueryResponse", result, sim)


@routes.get("/v3/company/{realm}/cdc")
@qbo_api
async def change_data_capture(request: web.Request, sim: Simulator, company: Company) -> web.Response:
    try:
        names, since = cdc.parse_request(request.query.get("entities"), request.query.get("changedSince"), company,
                                         sim.config.cdc_max_days)
    except cdc.CdcError as exc:
        return faults.fault(exc.code, exc.message, exc.detail, sim.tz)
    return _envelope("CDCResponse", cdc.changes(company, names, since, sim.config.cdc_max_objects), sim)

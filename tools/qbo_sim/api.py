"""The QBO Accounting API as Intuit serves it: entity reads and writes (``writes.py``), ``query``
and ``cdc``.

Every request under ``/v3/company/{realm}/`` is counted, throttled (429 + XML 3001 body),
optionally slowed or failed (``/sim/api/config``) and authenticated with the bearer token
(401 lower-case ``fault`` body when unknown/expired, 403 when the token is for another realm).
``minorversion`` is accepted and ignored; responses are always JSON (except the throttle body).
Writes notify the webhook endpoint exactly as control-API changes do; a repeated ``requestid``
(per realm) gets the first answer again without a second change, as Intuit promises.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from tools.qbo_sim import cdc, faults, query, timefmt, writes
from tools.qbo_sim.entities import ENTITY_NAMES, SALES_ENTITIES
from tools.qbo_sim.simulator import SIM, Simulator
from tools.qbo_sim.specs import TxnSpec
from tools.qbo_sim.store import Change, Company, Record, SimError
from tools.sim_common.jsonutil import json_response, loads
from tools.sim_common.oauth import bearer_token

routes = web.RouteTableDef()


ApiHandler = Callable[[web.Request, Simulator, Company], Awaitable[web.StreamResponse]]


def qbo_api(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
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
            token = bearer_token(request)
            verdict = sim.tokens.check(token, realm) if token else "missing"
            if verdict != "ok":
                sim.stats.add(realm, "unauthorized")
                if verdict == "wrong_realm":
                    return faults.forbidden(f"Token is not authorized for realm {realm}")
                return faults.unauthorized(
                    {
                        "missing": "Authorization header missing or not Bearer",
                        "expired": "Token expired: access token is no longer valid",
                        "unknown": "Invalid bearer token",
                    }[verdict]
                )
            company = sim.store.companies.get(realm)
            if company is None:
                return faults.forbidden(f"Company {realm} not found")
            response = await handler(request, sim, company)
            response.headers["intuit_tid"] = str(uuid.uuid4())
            return response
        finally:
            sim.throttle.release(realm)

    return wrapper


def _envelope(key: str, value: Any, sim: Simulator) -> web.Response:
    return json_response({key: value, "time": timefmt.response_time(timefmt.now(), sim.tz)})


ENTITY_PATH = "{entity:invoice|salesreceipt|creditmemo|item|customer}"


@routes.get(f"/v3/company/{{realm}}/{ENTITY_PATH}/{{id}}")
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
        names, since = cdc.parse_request(
            request.query.get("entities"), request.query.get("changedSince"), company, sim.config.cdc_max_days
        )
    except cdc.CdcError as exc:
        return faults.fault(exc.code, exc.message, exc.detail, sim.tz)
    if sim.api_faults.cdc_fault_next > 0:
        # docs/quickbooks-api.md §2.4a: HTTP 200 whose body is a Fault (in the envelope or inside CDCResponse).
        sim.api_faults.cdc_fault_next -= 1
        error = {
            "Error": [
                {
                    "Message": "An application error has occurred while processing your request",
                    "Detail": "System Failure Error: simulated CDC failure",
                    "code": "10000",
                    "element": "",
                }
            ],
            "type": "SystemFault",
        }
        if sim.api_faults.cdc_fault_in == "response":
            return _envelope("CDCResponse", [{"Fault": error}], sim)
        return _envelope("Fault", error, sim)
    return _envelope("CDCResponse", cdc.changes(company, names, since, sim.config.cdc_max_objects), sim)


# --- writes ---------------------------------------------------------------------------------
def _write_fault(exc: writes.WriteError | SimError, sim: Simulator) -> web.Response:
    if isinstance(exc, writes.WriteError):
        return faults.fault(exc.code, exc.message, exc.detail, sim.tz, element=exc.element)
    messages = {
        "610": "Object Not Found",
        "5010": "Stale Object Error",
        "6240": "Duplicate Name Exists Error",
        "2500": "Invalid Reference Id",
        "2020": "Required param missing, need to supply the required value for the API",
        "500": "Unsupported Operation",
    }
    message = messages.get(exc.code, "A business validation error has occurred while processing your request")
    detail = str(exc) if exc.code != "6000" else f"Business Validation Error: {exc}"
    return faults.fault(exc.code, message, detail, sim.tz)


def _target(company: Company, name: str, body: dict[str, Any]) -> Record:
    entity_id = body.get("Id")
    if entity_id in (None, ""):
        raise writes.missing("Id")
    record = company.records[name].get(str(entity_id))
    if record is None:
        raise SimError(
            400,
            "Object Not Found : Something you're trying to use has been made inactive. Check the "
            "fields with accounts, customers, items, vendors or employees.",
            code="610",
        )
    if record.deleted:
        raise SimError(400, "Object Not Found : Another user has deleted this transaction.", code="610")
    company.check_sync_token(record, body.get("SyncToken"))
    return record


def _write(
    company: Company, name: str, operation: str, body: dict[str, Any]
) -> tuple[Record, list[Change], dict[str, Any] | None]:
    """Apply one write; returns the record, its changes and (delete only) the response entity."""
    sales = name in SALES_ENTITIES
    if operation == "delete":
        if not sales:
            raise SimError(400, f"Operation Delete is not supported for {name}; make it inactive instead", code="500")
        record = _target(company, name, body)
        record, changes = company.delete_txn(name, record.id)
        return record, changes, {"domain": "QBO", "status": "Deleted", "Id": record.id}
    if operation == "void":
        if not sales:
            raise SimError(400, f"Operation Void is not supported for {name}", code="500")
        record = _target(company, name, body)
        record, changes = company.void_txn(name, record.id)
        return record, changes, None
    creating = body.get("Id") in (None, "", 0, "0")
    if not creating:
        record = _target(company, name, body)
    elif operation == "update":
        raise writes.missing("Id")
    sparse = body.get("sparse") is True
    if sales:
        fields = writes.txn_fields(name, body, company, creating)
        if creating:
            record, changes = company.create_txn(name, TxnSpec.model_validate(fields))
        else:
            record, changes = company.update_txn(name, record.id, fields, replace=not sparse)
    elif name == "Item":
        if creating:
            record, changes = company.create_item(writes.item_spec(body))
        else:
            patch = writes.item_patch(body, record.spec.display_name)  # type: ignore[union-attr]
            record, changes = company.update_item(record.id, patch)
    else:
        if creating:
            record, changes = company.create_customer(writes.customer_spec(body))
        else:
            customer_changes = writes.customer_changes(body)
            if writes._display_name(body) is not None:
                customer_changes["display_name"] = writes._display_name(body)
            record, changes = company.update_customer(record.id, customer_changes)
    return record, changes, None


@routes.post(f"/v3/company/{{realm}}/{ENTITY_PATH}")
@qbo_api
async def write_entity(request: web.Request, sim: Simulator, company: Company) -> web.Response:
    name = ENTITY_NAMES[request.match_info["entity"]]
    request_id = request.query.get("requestid")
    key = (company.realm_id, request_id) if request_id else None
    if key is not None and key in sim.request_ids:
        status, text = sim.request_ids[key]
        return web.Response(text=text, status=status, content_type="application/json")
    operation = request.query.get("operation", "").lower()
    if operation == "update" and request.query.get("include", "").lower() == "void":
        operation = "void"
    if operation not in ("", "create", "update", "delete", "void"):
        response = faults.fault("500", "Unsupported Operation", f"Operation {operation} is not supported.", sim.tz)
    else:
        try:
            body = loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            response = faults.fault(
                "2010", "Request has invalid or unsupported property", f"Invalid request body: {exc}", sim.tz
            )
        else:
            try:
                record, changes, shown = _write(company, name, operation, body)
            except (writes.WriteError, SimError) as exc:
                response = _write_fault(exc, sim)
            except ValidationError as exc:
                response = faults.fault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"Invalid request body: {exc.errors(include_url=False)}",
                    sim.tz,
                )
            else:
                sim.publish(changes)
                response = _envelope(name, shown or record.render(sim.tz), sim)
    if key is not None:
        sim.request_ids[key] = (response.status, response.text or "")
    return response

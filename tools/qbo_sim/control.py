"""Control API for tests, the driver CLI and operators (``/sim/...``; not part of QBO).

Sales and item changes answer with the same envelope the QBO API returns
(``{"Invoice": {...}, "time": ...}``) and notify the webhook endpoint unless ``?notify=false``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import web

from tools.qbo_sim import timefmt
from tools.qbo_sim.demo import populate
from tools.qbo_sim.entities import ENTITY_NAMES
from tools.qbo_sim.simulator import SIM, Simulator
from tools.qbo_sim.specs import BulkSpec, CompanySpec, ItemPatch, ItemSpec, LineSpec, TxnSpec
from tools.qbo_sim.store import Record, SimError
from tools.sim_common.control import add_shared_routes, control_for, notify_requested, read_body
from tools.sim_common.jsonutil import json_response

routes = web.RouteTableDef()
SALES = "{entity:invoice|salesreceipt|creditmemo}"


control = control_for(SIM)
add_shared_routes(routes, SIM)


def _entity(record: Record, sim: Simulator) -> web.Response:
    return json_response({record.entity: record.render(sim.tz), "time": timefmt.response_time(timefmt.now(), sim.tz)})


# --- companies and tokens -----------------------------------------------------------------
@routes.post("/sim/companies")
@control
async def create_company(request: web.Request, sim: Simulator) -> web.Response:
    spec = CompanySpec.model_validate(await read_body(request))
    company = sim.store.create_company(spec.realm_id, spec.home_currency, spec.multicurrency)
    if spec.demo:
        populate(company)
    return json_response({"realm_id": company.realm_id}, status=201)


@routes.get("/sim/companies")
@control
async def list_companies(request: web.Request, sim: Simulator) -> web.Response:
    return json_response({"realm_ids": list(sim.store.companies)})


@routes.post("/sim/{realm}/tokens")
@control
async def mint_tokens(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    _, body = sim.tokens.mint(company.realm_id)
    return json_response({**body, "realm_id": company.realm_id}, status=201)


@routes.post("/sim/{realm}/tokens/expire")
@control
async def expire_tokens(request: web.Request, sim: Simulator) -> web.Response:
    """Expire the realm's access tokens now; ``{"refresh_tokens": true}`` also kills refresh tokens."""
    company = sim.company(request.match_info["realm"])
    body = await read_body(request)
    count = sim.tokens.expire_realm(company.realm_id, refresh_tokens=bool(body.get("refresh_tokens")))
    return json_response({"expired": count})


@routes.post("/sim/{realm}/tokens/revoke")
@control
async def revoke_tokens(request: web.Request, sim: Simulator) -> web.Response:
    """Revoke every grant of the realm, as a user disconnecting the app in QuickBooks does: its
    access tokens answer 401 and its refresh tokens ``invalid_grant`` from now on."""
    company = sim.company(request.match_info["realm"])
    return json_response({"revoked": sim.tokens.revoke_realm(company.realm_id)})


@routes.get("/sim/{realm}/stats")
@control
async def stats(request: web.Request, sim: Simulator) -> web.Response:
    realm = request.match_info["realm"]
    sim.company(realm)
    return json_response(sim.stats.for_account(realm))


# --- items ----------------------------------------------------------------------------------
@routes.post("/sim/{realm}/items")
@control
async def create_item(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.create_item(ItemSpec.model_validate(await read_body(request)))
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.get("/sim/{realm}/items")
@control
async def list_items(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    return json_response({"Item": [r.render(sim.tz) for r in company.live("Item")]})


@routes.post("/sim/{realm}/items/{id}")
@control
async def update_item(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.update_item(request.match_info["id"], ItemPatch.model_validate(await read_body(request)))
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.delete("/sim/{realm}/items/{id}")
@control
async def delete_item(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.delete_item(request.match_info["id"])
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.post("/sim/{realm}/items/{id}/merge")
@control
async def merge_item(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    into = (await read_body(request)).get("into")
    if into is None:
        raise SimError(400, '"into" is required')
    record, changes = company.merge_item(request.match_info["id"], str(into))
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


# --- sales forms ------------------------------------------------------------------------
@routes.post(f"/sim/{{realm}}/{SALES}")
@control
async def create_txn(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    spec = TxnSpec.model_validate(await read_body(request))
    record, changes = company.create_txn(ENTITY_NAMES[request.match_info["entity"]], spec)
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.get(f"/sim/{{realm}}/{SALES}")
@control
async def list_txns(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    name = ENTITY_NAMES[request.match_info["entity"]]
    return json_response({name: [r.render(sim.tz) for r in company.live(name)]})


@routes.get(f"/sim/{{realm}}/{SALES}/{{id}}")
@control
async def show_txn(request: web.Request, sim: Simulator) -> web.Response:
    """The stored control-API spec (to edit it) and the entity, deleted ones included."""
    company = sim.company(request.match_info["realm"])
    record = company.get(ENTITY_NAMES[request.match_info["entity"]], request.match_info["id"], live=False)
    return json_response(
        {
            "spec": json.loads(record.txn_spec.model_dump_json(exclude_unset=True)),
            "deleted": record.deleted,
            "voided": record.voided,
            "entity": record.stub(sim.tz) if record.deleted else record.render(sim.tz),
        }
    )


@routes.post(f"/sim/{{realm}}/{SALES}/{{id}}")
@control
async def update_txn(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.update_txn(
        ENTITY_NAMES[request.match_info["entity"]], request.match_info["id"], await read_body(request)
    )
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.post(f"/sim/{{realm}}/raw/{SALES}")
@routes.put(f"/sim/{{realm}}/raw/{SALES}/{{id}}")
@control
async def put_raw_txn(request: web.Request, sim: Simulator) -> web.Response:
    """A sale whose body is given verbatim (tests replaying real shapes: tests/fixtures/qbo); PUT
    replaces the body of sale ``id``. The control-API edits (``POST .../{id}``) do not apply to it."""
    company = sim.company(request.match_info["realm"])
    record, changes = company.put_raw(
        ENTITY_NAMES[request.match_info["entity"]], await read_body(request), request.match_info.get("id")
    )
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.post(f"/sim/{{realm}}/{SALES}/{{id}}/void")
@control
async def void_txn(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.void_txn(ENTITY_NAMES[request.match_info["entity"]], request.match_info["id"])
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.post(f"/sim/{{realm}}/{SALES}/{{id}}/email")
@control
async def email_txn(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.email_txn(ENTITY_NAMES[request.match_info["entity"]], request.match_info["id"])
    sim.publish(changes, notify_requested(request))
    return _entity(record, sim)


@routes.delete(f"/sim/{{realm}}/{SALES}/{{id}}")
@control
async def delete_txn(request: web.Request, sim: Simulator) -> web.Response:
    company = sim.company(request.match_info["realm"])
    record, changes = company.delete_txn(ENTITY_NAMES[request.match_info["entity"]], request.match_info["id"])
    sim.publish(changes, notify_requested(request))
    return json_response(
        {
            record.entity: {"domain": "QBO", "status": "Deleted", "Id": record.id},
            "time": timefmt.response_time(timefmt.now(), sim.tz),
        }
    )


@routes.post("/sim/{realm}/bulk-invoices")
@control
async def bulk_invoices(request: web.Request, sim: Simulator) -> web.Response:
    """Many invoices at once (benchmarks); webhooks go out in batches of ≤ webhook_batch_max."""
    company = sim.company(request.match_info["realm"])
    spec = BulkSpec.model_validate(await read_body(request))
    lines = spec.lines or [LineSpec(item_id=spec.item_id, sku=spec.sku, qty=spec.qty, unit_price=spec.unit_price)]
    start = spec.txn_date or company.today()
    ids, changes = [], []
    for n in range(spec.count):
        days_back = (spec.spread_days * (spec.count - 1 - n)) // spec.count
        txn = TxnSpec(customer=spec.customer, txn_date=start - timedelta(days=days_back), lines=lines)
        record, made = company.create_txn("Invoice", txn)
        ids.append(record.id)
        changes.extend(made)
    sim.publish(changes, notify_requested(request))
    return json_response({"created": len(ids), "first_id": ids[0], "last_id": ids[-1]}, status=201)


# --- webhooks and API knobs ------------------------------------------------------------
@routes.get("/sim/webhooks/config")
@control
async def webhook_config_get(request: web.Request, sim: Simulator) -> web.Response:
    return json_response({**sim.webhooks.faults.model_dump(), "pending": sim.webhooks.pending})


@routes.post("/sim/webhooks/flush")
@control
async def webhook_flush(request: web.Request, sim: Simulator) -> web.Response:
    delivered = await sim.webhooks.flush()
    return json_response({"delivered": delivered, "pending": sim.webhooks.pending})


@routes.get("/sim/webhooks/deliveries")
@control
async def webhook_deliveries(request: web.Request, sim: Simulator) -> web.Response:
    return json_response({"deliveries": list(sim.webhooks.log)})


@routes.post("/sim/api/config")
@control
async def api_config(request: web.Request, sim: Simulator) -> web.Response:
    """``rate_per_minute``, ``max_concurrent``, ``latency_seconds``, ``fail_next``/``fail_status``,
    ``reset_window`` (forget the requests counted in the current minute), ``cdc_fault_next`` (the next
    N CDC calls answer 200 with a Fault body) and ``cdc_fault_in`` (``envelope`` | ``response``)."""
    body = await read_body(request)
    allowed = {
        "rate_per_minute",
        "max_concurrent",
        "latency_seconds",
        "fail_next",
        "fail_status",
        "reset_window",
        "cdc_fault_next",
        "cdc_fault_in",
    }
    unknown = set(body) - allowed
    if unknown:
        raise SimError(400, f"unknown options {sorted(unknown)}")
    if "rate_per_minute" in body:
        sim.throttle.rate_per_minute = int(body["rate_per_minute"])
    if "max_concurrent" in body:
        sim.throttle.max_concurrent = int(body["max_concurrent"])
    if "latency_seconds" in body:
        sim.api_faults.latency = float(body["latency_seconds"])
    if "fail_next" in body:
        sim.api_faults.fail_next = int(body["fail_next"])
    if "fail_status" in body:
        sim.api_faults.fail_status = int(body["fail_status"])
    if body.get("reset_window"):
        sim.throttle.reset()
    if "cdc_fault_in" in body:
        if body["cdc_fault_in"] not in ("envelope", "response"):
            raise SimError(400, 'cdc_fault_in must be "envelope" or "response"')
        sim.api_faults.cdc_fault_in = body["cdc_fault_in"]
    if "cdc_fault_next" in body:
        sim.api_faults.cdc_fault_next = int(body["cdc_fault_next"])
    return json_response(
        {
            "rate_per_minute": sim.throttle.rate_per_minute,
            "max_concurrent": sim.throttle.max_concurrent,
            "latency_seconds": sim.api_faults.latency,
            "fail_next": sim.api_faults.fail_next,
            "fail_status": sim.api_faults.fail_status,
            "cdc_fault_next": sim.api_faults.cdc_fault_next,
            "cdc_fault_in": sim.api_faults.cdc_fault_in,
        }
    )

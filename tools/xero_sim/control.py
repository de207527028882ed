"""Control API for tests, the driver CLI and operators (``/sim/...``; not part of Xero).

Document changes answer with the document as ``GET …/{id}?unitdp=4`` renders it (lines included) and send the
webhook event Xero would (INVOICE / CREDITNOTE, CREATE or UPDATE; nothing for bank transactions or items)
unless ``?notify=false``.

    POST /sim/orgs {name, base_currency, tenant_id?, demo?}      GET /sim/orgs
    POST /sim/{tenant}/tokens [{"scopes": [...]}]               mint a grant connected to the tenant
    POST /sim/{tenant}/tokens/expire [{"refresh_tokens": true}]
    GET  /sim/{tenant}/stats
    POST /sim/{tenant}/items {code, name, sale_price, …}        GET /sim/{tenant}/items
    POST /sim/{tenant}/{invoices|credit-notes|bank-transactions}            create (DocSpec)
    GET  /sim/{tenant}/{kind}                                                 list (with lines)
    POST /sim/{tenant}/{kind}/{id}                                            edit (DocPatch; status moves too)
    POST /sim/{tenant}/{kind}/{id}/{void|delete|pay|authorise|submit}
    POST /sim/webhooks/config   GET /sim/webhooks   POST /sim/webhooks/flush
    POST /sim/webhooks/intent-to-receive [{"url": …, "rounds": 1}]
    POST /sim/api/config {latency, fail_next, fail_status}      POST /sim/throttle/reset
"""

from __future__ import annotations

from aiohttp import web

from tools.sim_common.control import add_shared_routes, control_for, notify_requested, read_body
from tools.sim_common.jsonutil import json_response
from tools.xero_sim.demo import populate
from tools.xero_sim.entities import Document
from tools.xero_sim.simulator import SIM, Simulator
from tools.xero_sim.specs import DocPatch, DocSpec, ItemSpec, OrgSpec

routes = web.RouteTableDef()
KIND_PATHS = {"invoices": "Invoice", "credit-notes": "CreditNote", "bank-transactions": "BankTransaction"}
KIND = "{kind:invoices|credit-notes|bank-transactions}"
MOVES = {"void": "VOIDED", "delete": "DELETED", "pay": "PAID", "authorise": "AUTHORISED", "submit": "SUBMITTED"}

control = control_for(SIM)
add_shared_routes(routes, SIM)


def _doc(doc: Document) -> web.Response:
    return json_response(doc.render(with_lines=True, unitdp=4))


@routes.post("/sim/orgs")
@control
async def create_org(request: web.Request, sim: Simulator) -> web.Response:
    spec = OrgSpec.model_validate(await read_body(request))
    org = sim.store.create_org(spec)
    if spec.demo:
        populate(org)
    return json_response({"tenant_id": org.tenant_id, "name": org.name, "base_currency": org.base_currency}, 201)


@routes.get("/sim/orgs")
@control
async def list_orgs(request: web.Request, sim: Simulator) -> web.Response:
    return json_response(
        [{"tenant_id": o.tenant_id, "name": o.name, "base_currency": o.base_currency} for o in sim.store.orgs.values()]
    )


@routes.post("/sim/{tenant}/tokens")
@control
async def mint_tokens(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    body = await read_body(request)
    scopes = body.get("scopes") or [
        "openid",
        "offline_access",
        "accounting.transactions.read",
        "accounting.settings.read",
    ]
    grant, tokens = sim.tokens.mint({org.tenant_id: org.name}, list(scopes))
    connection = grant.connections[org.tenant_id]
    return json_response({**tokens, "tenant_id": org.tenant_id, "connection_id": connection.id}, status=201)


@routes.post("/sim/{tenant}/tokens/expire")
@control
async def expire_tokens(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    body = await read_body(request)
    return json_response({"expired": sim.tokens.expire_tenant(org.tenant_id, bool(body.get("refresh_tokens")))})


@routes.get("/sim/{tenant}/stats")
@control
async def stats(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    return json_response(sim.stats.for_account(org.tenant_id))


@routes.post("/sim/{tenant}/items")
@control
async def create_item(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    item = org.create_item(ItemSpec.model_validate(await read_body(request)))
    return json_response(item.render(4), status=201)


@routes.get("/sim/{tenant}/items")
@control
async def list_items(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    return json_response([i.render(4) for i in org.items.values()])


@routes.post(f"/sim/{{tenant}}/{KIND}")
@control
async def create_doc(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    doc, changes = org.create(KIND_PATHS[request.match_info["kind"]], DocSpec.model_validate(await read_body(request)))
    sim.publish(changes, notify_requested(request))
    return _doc(doc)


@routes.get(f"/sim/{{tenant}}/{KIND}")
@control
async def list_docs(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    docs = org.documents[KIND_PATHS[request.match_info["kind"]]].values()
    return json_response([d.render(with_lines=True, unitdp=4) for d in docs])


@routes.post(f"/sim/{{tenant}}/{KIND}/{{id}}")
@control
async def edit_doc(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    patch = DocPatch.model_validate(await read_body(request))
    doc, changes = org.edit(KIND_PATHS[request.match_info["kind"]], request.match_info["id"], patch)
    sim.publish(changes, notify_requested(request))
    return _doc(doc)


@routes.post(f"/sim/{{tenant}}/{KIND}/{{id}}/{{move:void|delete|pay|authorise|submit}}")
@control
async def move_doc(request: web.Request, sim: Simulator) -> web.Response:
    org = sim.org(request.match_info["tenant"])
    kind = KIND_PATHS[request.match_info["kind"]]
    doc, changes = org.move(kind, request.match_info["id"], MOVES[request.match_info["move"]])
    sim.publish(changes, notify_requested(request))
    return _doc(doc)


# --- webhooks and API faults ------------------------------------------------------------------
@routes.get("/sim/webhooks")
@control
async def webhooks_state(request: web.Request, sim: Simulator) -> web.Response:
    return json_response(
        {
            "status": sim.webhooks.status,
            "url": sim.webhooks.url,
            "pending": sim.webhooks.pending,
            "faults": sim.webhooks.faults.model_dump(),
            "log": list(sim.webhooks.log),
        }
    )


@routes.post("/sim/webhooks/flush")
@control
async def webhooks_flush(request: web.Request, sim: Simulator) -> web.Response:
    return json_response({"sent": await sim.webhooks.flush()})


@routes.post("/sim/webhooks/intent-to-receive")
@control
async def intent_to_receive(request: web.Request, sim: Simulator) -> web.Response:
    body = await read_body(request)
    url = body.get("url")
    if url is not None:
        sim.webhooks.configure({"url": url})
    return json_response(await sim.webhooks.intent_to_receive(rounds=int(body.get("rounds", 1))))


@routes.post("/sim/api/config")
@control
async def api_config(request: web.Request, sim: Simulator) -> web.Response:
    body = await read_body(request)
    for key in ("latency", "fail_next", "fail_status"):
        if key in body:
            setattr(sim.api_faults, key, type(getattr(sim.api_faults, key))(body[key]))
    return json_response(vars(sim.api_faults))


@routes.post("/sim/throttle/reset")
@control
async def throttle_reset(request: web.Request, sim: Simulator) -> web.Response:
    body = await read_body(request)
    sim.throttle.reset(body.get("tenant"))
    return json_response({"reset": True})

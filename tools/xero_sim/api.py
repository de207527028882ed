"""The Accounting API reads (docs/xero.md §3–§6) under ``/api.xro/2.0/``.

Every request needs ``Authorization: Bearer …`` (401 problem object when missing, unknown or expired) and
``xero-tenant-id`` naming an organisation the token's grant is connected to (403 otherwise). Requests are
counted against the tenant's limits (429 + ``X-Rate-Limit-Problem`` + ``Retry-After``, see ``throttle``) and
every answer carries ``X-DayLimit-Remaining``, ``X-MinLimit-Remaining``, ``X-AppMinLimit-Remaining``.
Answers are JSON (Xero's default is XML; clients send ``Accept: application/json``), in Xero's envelope
``{"Id","Status":"OK","ProviderName","DateTimeUTC","Invoices":[…]}``.

Lists: without ``page`` every match comes back **without** ``LineItems``; with ``page`` 100 a page (or
``pageSize``) **with** lines and a ``pagination`` object; by id (or number) always with lines; unknown id → 404
plain text. ``unitdp=4`` shows ``UnitAmount`` / ``UnitPrice`` with 4 decimals (else rounded to 2).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tools.sim_common.jsonutil import json_response
from tools.sim_common.oauth import bearer_token
from tools.xero_sim import faults, query, timefmt
from tools.xero_sim.entities import KINDS
from tools.xero_sim.simulator import SIM, Simulator
from tools.xero_sim.store import Org

routes = web.RouteTableDef()
BASE = "/api.xro/2.0"
PROVIDER = "Partsemble Xero simulator"

ApiHandler = Callable[[web.Request, Simulator, Org], Awaitable[web.StreamResponse]]


def xero_api(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIM]
        token = bearer_token(request)
        grant, verdict = sim.tokens.grant_for_access(token) if token else (None, "missing")
        tenant = request.headers.get("xero-tenant-id", "").strip()
        if verdict != "ok":
            if tenant:
                sim.stats.add(tenant, "unauthorized")
            detail = {"expired": "TokenExpired: token expired", "missing": "AuthenticationUnsuccessful"}
            return faults.unauthorized(detail.get(verdict, "AuthenticationUnsuccessful"))
        if not tenant or grant is None or tenant not in grant.connections or tenant not in sim.store.orgs:
            if tenant:
                sim.stats.add(tenant, "unauthorized")
            return faults.forbidden("AuthenticationUnsuccessful")
        sim.stats.add(tenant, "requests")
        admitted = sim.throttle.admit(tenant)
        if not admitted.ok:
            sim.stats.add(tenant, "throttled")
            return faults.throttled(admitted.problem or "minute", admitted.retry_after, admitted.headers)
        try:
            if sim.api_faults.latency:
                await asyncio.sleep(sim.api_faults.latency)
            if sim.api_faults.fail_next > 0:
                sim.api_faults.fail_next -= 1
                response: web.StreamResponse = faults.unavailable(sim.api_faults.fail_status)
            else:
                try:
                    response = await handler(request, sim, sim.store.orgs[tenant])
                except query.QueryError as exc:
                    response = faults.api_exception(str(exc))
        finally:
            sim.throttle.release(tenant)
        response.headers.update(admitted.headers)
        response.headers["Xero-Correlation-Id"] = str(uuid.uuid4())
        return response

    return wrapper


def _envelope(key: str, value: Any, extra: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": PROVIDER,
        "DateTimeUTC": timefmt.ms_json(timefmt.now()),
    }
    if extra:
        body.update(extra)
    body[key] = value
    return json_response(body)


def _unitdp(request: web.Request) -> int:
    return 4 if request.query.get("unitdp") == "4" else 2


def _list(kind: str) -> ApiHandler:
    async def handler(request: web.Request, sim: Simulator, org: Org) -> web.StreamResponse:
        docs = query.select(
            list(org.documents[kind].values()),
            request.query,
            request.headers.get("If-Modified-Since"),
            list_deleted=sim.config.list_deleted,
        )
        unitdp = _unitdp(request)
        paged = query.paging(request.query, sim.config.page_size, sim.config.max_page_size)
        summary = request.query.get("summaryOnly", "").lower() == "true"
        if paged is None:
            return _envelope(KINDS[kind], [d.render(with_lines=False, unitdp=unitdp) for d in docs])
        page, size = paged
        chosen = docs[(page - 1) * size : page * size]
        return _envelope(
            KINDS[kind],
            [d.render(with_lines=not summary, unitdp=unitdp) for d in chosen],
            {"pagination": query.pagination(page, size, len(docs))},
        )

    return handler


def _one(kind: str) -> ApiHandler:
    async def handler(request: web.Request, sim: Simulator, org: Org) -> web.StreamResponse:
        doc = org.document(kind, request.match_info["id"])
        if doc is None:
            return faults.not_found()
        return _envelope(KINDS[kind], [doc.render(with_lines=True, unitdp=_unitdp(request))])

    return handler


for _kind, _collection in KINDS.items():
    routes.get(f"{BASE}/{_collection}")(xero_api(_list(_kind)))
    routes.get(f"{BASE}/{_collection}/{{id}}")(xero_api(_one(_kind)))


@routes.get(f"{BASE}/Items")
@xero_api
async def items(request: web.Request, sim: Simulator, org: Org) -> web.StreamResponse:
    chosen = list(org.items.values())
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            moment = timefmt.second(timefmt.parse_if_modified_since(since))
        except (ValueError, TypeError):
            return faults.api_exception(f"invalid If-Modified-Since {since!r}")
        chosen = [i for i in chosen if timefmt.second(i.updated) >= moment]
    where = request.query.get("where")
    if where:
        predicate = query.parse_where(where, lambda name: name.casefold() in ("code", "name", "itemid"))
        chosen = [i for i in chosen if predicate(_ItemView(i))]  # type: ignore[arg-type]
    unitdp = _unitdp(request)
    return _envelope("Items", [i.render(unitdp) for i in sorted(chosen, key=lambda i: i.spec.code)])


class _ItemView:
    """Lets ``query.parse_where`` read item fields."""

    def __init__(self, item: Any):
        self.item = item

    def field(self, name: str) -> Any:
        spec = self.item.spec
        return {"code": spec.code, "name": spec.name or spec.code, "itemid": self.item.item_id}.get(name.casefold())


@routes.get(f"{BASE}/Items/{{id}}")
@xero_api
async def item(request: web.Request, sim: Simulator, org: Org) -> web.StreamResponse:
    key = request.match_info["id"]
    found = org.items.get(key) or next((i for i in org.items.values() if i.spec.code == key), None)
    if found is None:
        return faults.not_found()
    return _envelope("Items", [found.render(_unitdp(request))])


@routes.get(f"{BASE}/Organisation")
@xero_api
async def organisation(request: web.Request, sim: Simulator, org: Org) -> web.StreamResponse:
    return _envelope(
        "Organisations",
        [
            {
                "OrganisationID": org.tenant_id,
                "Name": org.name,
                "LegalName": org.name,
                "BaseCurrency": org.base_currency,
                "CountryCode": org.country_code,
                "OrganisationType": "COMPANY",
                "OrganisationStatus": "ACTIVE",
                "IsDemoCompany": False,
                "ShortCode": org.short_code,
                "Timezone": "NEWZEALANDSTANDARDTIME",
                "CreatedDateUTC": timefmt.ms_json(org.created),
            }
        ],
    )

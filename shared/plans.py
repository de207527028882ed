"""Plans and the sales-tracking entitlement (issue 18).

A tenant is on the ``starter``, ``standard`` or ``advanced`` plan and has receiving
enabled or not (``tenants.plan``, ``tenants.receiving_enabled``; set by ``admin
create-tenant``/``update-tenant``). Sales tracking needs both Advanced and receiving.
The entitlement is read with the API key (``api_key_lookup``, so it costs no query of its
own and a change applies to the next request). While a tenant is not entitled, every
sales-tracking endpoint answers 403 ``sales_tracking_unavailable``; its data is kept, and
QuickBooks changes are stored but not processed until it is entitled again.

Which endpoints are sales tracking (docs/api.md, "Plans"):

* query service: every ``/api/v1/`` endpoint except ``GET /api/v1/tenant`` and the
  OpenAPI document;
* ingest service: manual sales (``/api/v1/sales`` and below), QuickBooks connections
  (``/api/v1/connections/`` and below) and ``GET /oauth/quickbooks/connect``. Products and
  lots (receiving) are not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.db import tenant_read
from shared.web import POOL, SALES_TRACKING, TENANT, ApiError, json_response

PLANS = ("starter", "standard", "advanced")
TENANT_PATH = "/api/v1/tenant"
UNAVAILABLE = "sales_tracking_unavailable"
UNAVAILABLE_DETAIL = (
    "Sales tracking needs the Advanced plan and receiving enabled. Ask your Partsemble administrator "
    "to move this account to the Advanced plan and turn receiving on; nothing is lost meanwhile: "
    "your data is kept and QuickBooks changes are stored, and all of it appears once both are set."
)


def entitled(plan: str, receiving_enabled: bool) -> bool:
    return plan == "advanced" and receiving_enabled


def unavailable() -> ApiError:
    return ApiError(403, UNAVAILABLE, UNAVAILABLE_DETAIL)


def sales_tracking_gate(is_sales_tracking: Callable[[web.Request], bool]) -> Middleware:
    """403 ``sales_tracking_unavailable`` for a sales-tracking request of a tenant that is
    not entitled. Runs after authentication (``request[SALES_TRACKING]`` is set by it)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.get(SALES_TRACKING, True) and is_sales_tracking(request):
            raise unavailable()
        return await handler(request)

    return middleware


TENANT_INFO = "SELECT name, home_currency, plan, receiving_enabled FROM tenants WHERE id = $1"


async def tenant_info(request: web.Request) -> web.Response:
    """``GET /api/v1/tenant``: the key's tenant, its plan and whether sales tracking is on.
    Always allowed with a valid key (the Sales tab asks it first)."""
    tenant_id: uuid.UUID = request[TENANT]
    async with tenant_read(request.app[POOL], tenant_id) as conn:
        row = await conn.fetchrow(TENANT_INFO, tenant_id)
    if row is None:  # pragma: no cover - a live key's tenant exists (foreign key)
        raise ApiError(404, "not_found", "no such tenant")
    return json_response(
        {
            "name": row["name"],
            "home_currency": row["home_currency"].strip(),
            "plan": row["plan"],
            "receiving_enabled": row["receiving_enabled"],
            "sales_tracking": entitled(row["plan"], row["receiving_enabled"]),
        }
    )

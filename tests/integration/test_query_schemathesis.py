"""Schemathesis against the query API: every operation of the OpenAPI document the
app serves is exercised with generated parameters (valid and invalid) on a running
server, under a real tenant's key, over sales costed by the real pipeline.
Schemathesis' default checks hold: no 5xx, every status code and content type is
documented, every response body conforms to its schema, invalid input is refused.

Two tenants hold the same skus, lot numbers and references (and each a product, lot
and sale of its own); every generated request is replayed with the other tenant's key,
and that answer must hold nothing of the first tenant's (values, sale ids, event ids)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings

from services.costing.main import running_consumer
from services.ingest.app import create_app as create_ingest_app
from services.query.app import SERVER_LIMITS, create_app
from services.query.openapi import DOCUMENT
from shared import broker
from shared.api_keys import INSERT_KEY
from tests.conftest import client_for, event_applied, new_tenant, settings_for, wait_for

def _key() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"psk_{prefix}_{secrets.token_urlsafe(32)}"


# The tenants' API keys are made before collection (schemathesis builds some cases then)
# and stored by the ``tenants`` fixture. The cases run with tenant A's key.
(API_KEY_PREFIX, API_KEY), (OTHER_KEY_PREFIX, OTHER_KEY) = _key(), _key()
SECRETS = {"oauth_state_secret": secrets.token_urlsafe(32),
           "token_encryption_key": base64.b64encode(os.urandom(32)).decode()}

# All default checks run but one: positive_data_acceptance wants a 2xx for every
# schema-valid request, while a few are refused by rules a schema cannot state (a
# cursor must be one this API issued; ``from`` must not be after ``to``). Those get a
# 400, which the document declares and status_code_conformance checks.
CONFIG = schemathesis.Config.from_dict({
    "checks": {"positive_data_acceptance": {"enabled": False}},
    "auth": {"openapi": {"bearerAuth": {"bearer": API_KEY}}},
})
# The document the app serves: the same dict (test_the_served_document_is_the_one_tested).
# It is loaded at import, because schemathesis' fixture-based loader does not work with
# pytest 9; the running server's URL is given with each call.
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(DOCUMENT)), config=CONFIG)


def seed(m: str) -> list[tuple[str, str, dict | None]]:
    """The same skus, lot numbers and references in both tenants; names, customers and
    one product, lot and sale of its own (``m``, the tenant's marker) unique to it."""
    return [
        ("POST", "/api/v1/products", {"sku": "W-1", "name": f"Widget {m}"}),
        ("POST", "/api/v1/products", {"sku": f"ONLY-{m}", "name": f"Own {m}"}),
        ("POST", "/api/v1/lots", {"sku": "W-1", "lot_number": "L1", "quantity": "10", "unit_cost": "2.25",
                                  "received_at": "2026-01-05T08:00:00Z"}),
        ("POST", "/api/v1/lots", {"sku": f"ONLY-{m}", "lot_number": f"L-{m}", "quantity": "2", "unit_cost": "1",
                                  "received_at": "2026-01-05T08:00:00Z"}),
        ("POST", "/api/v1/sales", {"reference": "INV-1", "type": "invoice", "date": "2026-02-01",
                                   "customer": f"Bob {m}",
                                   "lines": [{"sku": "W-1", "quantity": "12", "unit_price": "5"},
                                             {"description": "Shipping", "quantity": "1", "unit_price": "7.50"}]}),
        ("POST", "/api/v1/sales", {"reference": "REC-1", "type": "sales_receipt", "date": "2026-02-02",
                                   "lines": [{"sku": "W-1", "quantity": "0.5", "unit_price": "3.333"}]}),
        ("POST", "/api/v1/sales", {"reference": "CM-1", "type": "credit_memo", "date": "2026-02-03",
                                   "customer": f"Ann {m}",
                                   "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "5"}]}),
        ("POST", "/api/v1/sales", {"reference": "INV-2", "type": "invoice", "date": "2026-02-04", "customer": f"Cy {m}",
                                   "lines": [{"description": "Consulting", "quantity": "1", "unit_price": "0"}]}),
        ("POST", "/api/v1/sales/INV-2/void", None),
        ("POST", "/api/v1/sales", {"reference": f"REF-{m}", "type": "invoice", "date": "2026-02-05",
                                   "lines": [{"sku": f"ONLY-{m}", "quantity": "3", "unit_price": "4"}]}),
    ]


@dataclass
class Tenant:
    id: uuid.UUID
    key: str
    marker: str
    sale_ids: set[int] = field(default_factory=set)
    event_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def values(self) -> list[str]:
        """Strings only this tenant's answers may hold."""
        m = self.marker
        return [f"Widget {m}", f"Own {m}", f"ONLY-{m}", f"L-{m}", f"Bob {m}", f"Ann {m}", f"Cy {m}", f"REF-{m}",
                *self.event_ids]


def _ids(value) -> set[int]:
    """Every ``id`` / ``sale_id`` in a JSON answer."""
    if isinstance(value, list):
        return set().union(*map(_ids, value)) if value else set()
    if isinstance(value, dict):
        own = {v for k, v in value.items() if k in ("id", "sale_id") and isinstance(v, int)}
        return own.union(*map(_ids, value.values()))
    return set()


def assert_nothing_of(tenant: Tenant, response: requests.Response) -> None:
    """The answer (to the other tenant's key) holds none of the tenant's values or sale
    ids, except those the request named itself (a 404 may quote what it did not find)."""
    assert response.status_code < 500, response.text
    sent = unquote(response.request.url)
    leaked = [value for value in tenant.values if value in response.text and value not in sent]
    if "json" in response.headers.get("Content-Type", ""):
        leaked += sorted(_ids(response.json()) & tenant.sale_ids)
    assert not leaked, (f"{response.request.method} {response.request.url} with the other tenant's key answered "
                        f"tenant {tenant.id}'s {leaked}: {response.text[:500]}")


async def _seeded(pool, ingest, prefix: str, key: str) -> Tenant:
    tenant = Tenant(await new_tenant(pool, "Fuzzed"), key, secrets.token_hex(8))
    await pool.execute(INSERT_KEY, uuid.uuid4(), tenant.id, prefix, hashlib.sha256(key.encode()).digest())
    for method, path, body in seed(tenant.marker):
        response = await ingest.request(method, path, json=body, headers=tenant.headers)
        assert response.status == 202, await response.text()
        tenant.event_ids += (await response.json())["event_ids"]
    for event_id in tenant.event_ids:
        await wait_for(lambda: event_applied(pool, event_id))
    tenant.sale_ids = {r["id"] for r in await pool.fetch("SELECT id FROM sales WHERE tenant_id = $1", tenant.id)}
    return tenant


@pytest.fixture(scope="module")
async def tenants(pool, database_url) -> tuple[Tenant, Tenant]:
    """Tenant A (API_KEY, the cases') and tenant B, with the same sales costed through
    ingest and the costing consumer."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    ingest = await client_for(create_ingest_app(settings_for(database_url, prefix, **SECRETS)))
    try:
        async with running_consumer(settings_for(database_url, prefix, **SECRETS)) as (_, _, topology):
            a = await _seeded(pool, ingest, API_KEY_PREFIX, API_KEY)
            b = await _seeded(pool, ingest, OTHER_KEY_PREFIX, OTHER_KEY)
            await broker.delete(topology.costing.channel, topology.names)  # leave nothing on the broker
    finally:
        await ingest.close()
    return a, b


class ServerThread:
    """The query app on an aiohttp TestServer in its own thread and event loop, so the
    schemathesis cases can call it synchronously from the test's thread."""

    def __init__(self, app):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="query-server", daemon=True)
        self.server = TestServer(app)

    def start(self) -> str:
        self.thread.start()
        # The server's limits go to start_server: TestServer() ignores them (aiohttp 3.14),
        # and a long generated URL then met aiohttp's default 8,190-byte line limit.
        asyncio.run_coroutine_threadsafe(self.server.start_server(**SERVER_LIMITS), self.loop).result(timeout=30)
        return str(self.server.make_url("")).rstrip("/")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def query_url(tenants, database_url):
    server = ServerThread(create_app(settings_for(database_url, "unused")))
    url = server.start()
    yield url
    server.stop()


def test_the_served_document_is_the_one_tested(query_url):
    served = requests.get(f"{query_url}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))
    sales = requests.get(f"{query_url}/api/v1/sales", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert sales.json()["summary"]["count"] == 5  # the seeded tenant is the one the cases use


def test_another_tenants_objects_answer_404(query_url, tenants):
    """Each tenant's sales, events and own product, read with the other tenant's key:
    404; its lists show nothing of the first tenant."""
    for owner, other in (tenants, tenants[::-1]):
        paths = [f"/api/v1/sales/{i}" for i in owner.sale_ids] + [f"/api/v1/events/{e}" for e in owner.event_ids]
        paths.append(f"/api/v1/products/ONLY-{owner.marker}/stock")
        for path in paths:
            assert requests.get(f"{query_url}{path}", headers=owner.headers, timeout=10).status_code == 200, path
            response = requests.get(f"{query_url}{path}", headers=other.headers, timeout=10)
            assert response.status_code == 404, (path, response.text)
            assert_nothing_of(owner, response)
        for path in ["/api/v1/sales?limit=200", "/api/v1/products/margins", "/api/v1/products/W-1/stock",
                     "/api/v1/shortages", "/api/v1/sales?sku=W-1"]:
            response = requests.get(f"{query_url}{path}", headers=other.headers, timeout=10)
            assert response.status_code == 200, response.text
            assert_nothing_of(owner, response)


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_query_api_conforms_to_its_openapi_document(case, query_url, tenants):
    a, b = tenants
    case.call_and_validate(base_url=query_url)  # tenant A's key (CONFIG)
    # tenant_isolation: the same request with tenant B's key shows nothing of tenant A's.
    assert_nothing_of(a, case.call(base_url=query_url, headers=b.headers))

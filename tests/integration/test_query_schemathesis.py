"""Schemathesis against the query API: every operation of the OpenAPI document the
app serves is exercised with generated parameters (valid and invalid) on a running
server, under a real tenant's key, over sales costed by the real pipeline.
Schemathesis' default checks hold: no 5xx, every status code and content type is
documented, every response body conforms to its schema, invalid input is refused.

Two tenants hold the same skus, lot numbers and references (and each a product, lot
and sale of its own); every generated request is replayed with the other tenant's key,
and that answer must hold nothing of the first tenant's (values, sale ids, event ids)."""

from __future__ import annotations

import functools
import json
import secrets
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from services.costing.main import running_consumer
from services.ingest.app import create_app as create_ingest_app
from services.query.app import create_app
from services.query.openapi import DOCUMENT
from shared import broker
from tests.conftest import client_for, event_applied, new_tenant, settings_for, wait_for
from tests.schemathesis_support import (
    ServerThread,
    assert_nothing_leaked,
    bearer,
    call_as_both,
    case_settings,
    load_schema,
    new_key,
    service_secrets,
    store_key,
)

# The tenants' API keys are made before collection (schemathesis builds some cases then)
# and stored by the ``tenants`` fixture. The cases run with tenant A's key.
(API_KEY_PREFIX, API_KEY), (OTHER_KEY_PREFIX, OTHER_KEY) = new_key(), new_key()
SECRETS = service_secrets()

# All default checks run but positive_data_acceptance: a few schema-valid requests are
# refused by rules a schema cannot state (a cursor must be one this API issued; ``from``
# must not be after ``to``). Those get a 400, which the document declares. The document
# is the one the app serves: the same dict (test_the_served_document_is_the_one_tested).
schema = load_schema(DOCUMENT, API_KEY)


def seed(m: str) -> list[tuple[str, str, dict | None]]:
    """The same skus, lot numbers and references in both tenants; names, customers and
    one product, lot and sale of its own (``m``, the tenant's marker) unique to it."""
    return [
        ("POST", "/api/v1/products", {"sku": "W-1", "name": f"Widget {m}"}),
        ("POST", "/api/v1/products", {"sku": f"ONLY-{m}", "name": f"Own {m}"}),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L1",
                "quantity": "10",
                "unit_cost": "2.25",
                "received_at": "2026-01-05T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": f"ONLY-{m}",
                "lot_number": f"L-{m}",
                "quantity": "2",
                "unit_cost": "1",
                "received_at": "2026-01-05T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": "INV-1",
                "type": "invoice",
                "date": "2026-02-01",
                "customer": f"Bob {m}",
                "lines": [
                    {"sku": "W-1", "quantity": "12", "unit_price": "5"},
                    {"description": "Shipping", "quantity": "1", "unit_price": "7.50"},
                ],
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": "REC-1",
                "type": "sales_receipt",
                "date": "2026-02-02",
                "lines": [{"sku": "W-1", "quantity": "0.5", "unit_price": "3.333"}],
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": "CM-1",
                "type": "credit_memo",
                "date": "2026-02-03",
                "customer": f"Ann {m}",
                "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "5"}],
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": "INV-2",
                "type": "invoice",
                "date": "2026-02-04",
                "customer": f"Cy {m}",
                "lines": [{"description": "Consulting", "quantity": "1", "unit_price": "0"}],
            },
        ),
        ("POST", "/api/v1/sales/INV-2/void", None),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": f"REF-{m}",
                "type": "invoice",
                "date": "2026-02-05",
                "lines": [{"sku": f"ONLY-{m}", "quantity": "3", "unit_price": "4"}],
            },
        ),
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
        return bearer(self.key)

    @property
    def values(self) -> list[str]:
        """Strings only this tenant's answers may hold."""
        m = self.marker
        return [
            f"Widget {m}",
            f"Own {m}",
            f"ONLY-{m}",
            f"L-{m}",
            f"Bob {m}",
            f"Ann {m}",
            f"Cy {m}",
            f"REF-{m}",
            *self.event_ids,
        ]


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
    ids = _ids(response.json()) & tenant.sale_ids if "json" in response.headers.get("Content-Type", "") else set()
    assert_nothing_leaked(tenant.id, tenant.values, response, ids)


async def _seeded(pool, ingest, prefix: str, key: str) -> Tenant:
    tenant = Tenant(await new_tenant(pool, "Fuzzed"), key, secrets.token_hex(8))
    await store_key(pool, tenant.id, prefix, key)
    for method, path, body in seed(tenant.marker):
        response = await ingest.request(method, path, json=body, headers=tenant.headers)
        assert response.status == 202, await response.text()
        tenant.event_ids += (await response.json())["event_ids"]
    for event_id in tenant.event_ids:
        await wait_for(functools.partial(event_applied, pool, event_id))
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
    sales = requests.get(f"{query_url}/api/v1/sales", headers=bearer(API_KEY), timeout=10)
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
        for path in [
            "/api/v1/sales?limit=200",
            "/api/v1/products/margins",
            "/api/v1/products/W-1/stock",
            "/api/v1/shortages",
            "/api/v1/sales?sku=W-1",
        ]:
            response = requests.get(f"{query_url}{path}", headers=other.headers, timeout=10)
            assert response.status_code == 200, response.text
            assert_nothing_of(owner, response)


@schema.parametrize()
@case_settings(max_examples=25)
def test_query_api_conforms_to_its_openapi_document(case, query_url, tenants):
    a, b = tenants
    # Validated with tenant A's key (the schema's); tenant_isolation: the same request
    # with tenant B's key shows nothing of tenant A's.
    assert_nothing_of(a, call_as_both(case, query_url, b.headers))

"""Schemathesis against the ingest API: every operation of the OpenAPI document the
app serves is exercised with generated bodies and parameters (valid and invalid) on
a running server under a real tenant's key. Schemathesis' default checks hold: no
5xx, every status code and content type is documented, every response body conforms
to its schema, invalid input is refused.

Two tenants hold the same skus, lot numbers and references (and each a few objects of
its own); every generated request is replayed with the other tenant's key, and that
answer must hold nothing of the first tenant's (tenant_isolation)."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

import aio_pika
import pytest
import requests

from services.ingest.app import create_app
from services.ingest.openapi import DOCUMENT
from shared import broker
from tests.conftest import TEST_AMQP_URL, client_for, new_tenant, settings_for
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

# Made before collection (schemathesis builds some cases then), stored by ``tenants``.
(PREFIX_A, KEY_A), (PREFIX_B, KEY_B) = new_key(), new_key()
SECRETS = service_secrets()
BROKER_PREFIX = f"test-{uuid.uuid4().hex[:10]}"

# Schema-valid bodies may be refused by rules a schema does not state (an unknown sku,
# an existing reference: 409/422, documented).
schema = load_schema(DOCUMENT, KEY_A)


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    key: str
    marker: str  # in every value unique to this tenant (names, customers, its own skus)

    @property
    def values(self) -> list[str]:
        """What only this tenant's answers may hold."""
        m = self.marker
        return [
            f"Widget {m}",
            f"Own {m}",
            f"item-{m}",
            f"Bob {m}",
            f"Ann {m}",
            self.own_sku,
            f"L-{m}",
            f"REF-{m}",
            self.realm,
        ]

    @property
    def headers(self) -> dict:
        return bearer(self.key)

    @property
    def own_sku(self) -> str:
        return f"ONLY-{self.marker}"

    @property
    def realm(self) -> str:
        return f"realm-{self.marker}"


def seed(tenant: Tenant, unit_cost: str) -> list[tuple[str, str, dict | None]]:
    """The same skus, lot numbers and references in both tenants; names, customers and
    costs, and one product, lot and sale of its own, unique to the tenant."""
    m = tenant.marker
    return [
        ("POST", "/api/v1/products", {"sku": "W-1", "name": f"Widget {m}", "standard_cost": unit_cost}),
        ("POST", "/api/v1/products", {"sku": tenant.own_sku, "name": f"Own {m}", "qbo_item_id": f"item-{m}"}),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L1",
                "quantity": "10",
                "unit_cost": unit_cost,
                "received_at": "2026-01-05T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": tenant.own_sku,
                "lot_number": f"L-{m}",
                "quantity": "3",
                "unit_cost": unit_cost,
                "received_at": "2026-01-06T08:00:00Z",
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
                "lines": [{"sku": "W-1", "quantity": "2", "unit_price": "5"}],
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            {
                "reference": f"REF-{m}",
                "type": "sales_receipt",
                "date": "2026-02-02",
                "customer": f"Ann {m}",
                "lines": [{"sku": tenant.own_sku, "quantity": "1", "unit_price": "9"}],
            },
        ),
    ]


async def _tenant(pool, prefix: str, key: str) -> Tenant:
    tenant_id = await new_tenant(pool, "Fuzzed")
    await store_key(pool, tenant_id, prefix, key)
    tenant = Tenant(tenant_id, key, secrets.token_hex(8))
    # A QuickBooks connection (disconnected: the worker leaves it alone) with tenant-unique values.
    await pool.execute(
        "INSERT INTO qbo_connections (realm_id, tenant_id, access_token, refresh_token, "
        "access_expires_at, status) VALUES ($1, $2, '\\x00', '\\x00', now(), 'disconnected')",
        tenant.realm,
        tenant_id,
    )
    return tenant


@pytest.fixture(scope="module")
async def tenants(pool, database_url) -> tuple[Tenant, Tenant]:
    a, b = await _tenant(pool, PREFIX_A, KEY_A), await _tenant(pool, PREFIX_B, KEY_B)
    ingest = await client_for(create_app(settings_for(database_url, BROKER_PREFIX, **SECRETS)))
    try:
        for tenant, cost in ((a, "2.25"), (b, "3.75")):
            for method, path, body in seed(tenant, cost):
                response = await ingest.request(method, path, json=body, headers=tenant.headers)
                assert response.status == 202, await response.text()
    finally:
        await ingest.close()
    yield a, b
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        await broker.delete(await connection.channel(), broker.Names(BROKER_PREFIX))
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def ingest_url(tenants, database_url):
    server = ServerThread(create_app(settings_for(database_url, BROKER_PREFIX, **SECRETS)))
    url = server.start()
    yield url
    server.stop()


def assert_nothing_of(tenant: Tenant, response: requests.Response) -> None:
    """The answer holds none of the tenant's values, except those the request named
    itself (a 404 may quote the sku it did not find)."""
    assert_nothing_leaked(tenant.id, tenant.values, response)


def test_the_served_document_is_the_one_tested(ingest_url, tenants):
    a, b = tenants
    served = requests.get(f"{ingest_url}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))
    product = requests.get(f"{ingest_url}/api/v1/products/W-1", headers=a.headers, timeout=10)
    assert product.json()["name"] == f"Widget {a.marker}"  # the cases' key is tenant A's
    # explicit headers win over the case's own (the replay below relies on it)
    case = schema["/api/v1/products/{sku}"]["GET"].Case(path_parameters={"sku": "W-1"})
    assert case.call(base_url=ingest_url, headers=a.headers).json()["name"] == f"Widget {a.marker}"
    assert case.call(base_url=ingest_url, headers=b.headers).json()["name"] == f"Widget {b.marker}"


def test_another_tenants_objects_answer_404(ingest_url, tenants):
    """Each tenant's own objects, read or written with the other tenant's key: 404, and
    its lists and shared objects show nothing of the first tenant."""
    for owner, other in (tenants, tenants[::-1]):
        sku, lot, ref, realm = owner.own_sku, f"L-{owner.marker}", f"REF-{owner.marker}", owner.realm
        for method, path, body in [
            ("GET", f"/api/v1/products/{sku}", None),
            ("GET", f"/api/v1/lots/{sku}/{lot}", None),
            ("PATCH", f"/api/v1/lots/{sku}/{lot}", {"quantity": "1"}),
            (
                "PUT",
                f"/api/v1/sales/{ref}",
                {
                    "type": "sales_receipt",
                    "date": "2026-02-02",
                    "lines": [{"description": "x", "quantity": "1", "unit_price": "1"}],
                },
            ),
            ("POST", f"/api/v1/sales/{ref}/void", None),
            ("DELETE", f"/api/v1/sales/{ref}", None),
            ("POST", f"/api/v1/connections/quickbooks/{realm}/sync", None),
            ("POST", f"/api/v1/connections/quickbooks/{realm}/disconnect", None),
        ]:
            response = requests.request(method, f"{ingest_url}{path}", json=body, headers=other.headers, timeout=10)
            assert response.status_code == 404, (method, path, response.text)
            assert_nothing_of(owner, response)
        for path in [
            "/api/v1/products",
            "/api/v1/products/W-1",
            "/api/v1/lots/W-1/L1",
            "/api/v1/connections/quickbooks",
        ]:
            response = requests.get(f"{ingest_url}{path}", headers=other.headers, timeout=10)
            assert response.status_code == 200, response.text
            assert_nothing_of(owner, response)
        # The owner does see them (the 404s above are not for some other reason).
        own = requests.get(f"{ingest_url}/api/v1/lots/{sku}/{lot}", headers=owner.headers, timeout=10)
        assert own.status_code == 200 and own.json()["lot_number"] == lot


@schema.parametrize()
@case_settings(max_examples=60)
def test_ingest_api_conforms_to_its_openapi_document(case, ingest_url, tenants):
    a, b = tenants
    # Validated with tenant A's key (the schema's); tenant_isolation: the same request
    # with tenant B's key shows nothing of tenant A's.
    assert_nothing_of(a, call_as_both(case, ingest_url, b.headers))

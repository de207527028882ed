"""Schemathesis against the query API: every operation of the OpenAPI document the
app serves is exercised with generated parameters (valid and invalid) on a running
server, under a real tenant's key, over sales costed by the real pipeline.
Schemathesis' default checks hold: no 5xx, every status code and content type is
documented, every response body conforms to its schema, invalid input is refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import uuid

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

# The tenant's API key is made before collection (schemathesis builds some cases then)
# and stored for the tenant by the ``seeded_tenant`` fixture.
API_KEY_PREFIX = secrets.token_hex(6)
API_KEY = f"psk_{API_KEY_PREFIX}_{secrets.token_urlsafe(32)}"

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

SEED = [
    ("POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"}),
    ("POST", "/api/v1/lots", {"sku": "W-1", "lot_number": "L1", "quantity": "10", "unit_cost": "2.25",
                              "received_at": "2026-01-05T08:00:00Z"}),
    ("POST", "/api/v1/sales", {"reference": "INV-1", "type": "invoice", "date": "2026-02-01", "customer": "Bob",
                               "lines": [{"sku": "W-1", "quantity": "12", "unit_price": "5"},
                                         {"description": "Shipping", "quantity": "1", "unit_price": "7.50"}]}),
    ("POST", "/api/v1/sales", {"reference": "REC-1", "type": "sales_receipt", "date": "2026-02-02",
                               "lines": [{"sku": "W-1", "quantity": "0.5", "unit_price": "3.333"}]}),
    ("POST", "/api/v1/sales", {"reference": "CM-1", "type": "credit_memo", "date": "2026-02-03", "customer": "Ann",
                               "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "5"}]}),
    ("POST", "/api/v1/sales", {"reference": "INV-2", "type": "invoice", "date": "2026-02-04", "customer": "Cy",
                               "lines": [{"description": "Consulting", "quantity": "1", "unit_price": "0"}]}),
    ("POST", "/api/v1/sales/INV-2/void", None),
]


@pytest.fixture(scope="module")
async def seeded_tenant(pool, database_url) -> uuid.UUID:
    """The tenant of API_KEY, with a few sales costed through ingest and the costing consumer."""
    tenant_id = await new_tenant(pool, "Fuzzed")
    await pool.execute(INSERT_KEY, uuid.uuid4(), tenant_id, API_KEY_PREFIX, hashlib.sha256(API_KEY.encode()).digest())
    headers = {"Authorization": f"Bearer {API_KEY}"}
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    ingest = await client_for(create_ingest_app(settings_for(database_url, prefix)))
    try:
        async with running_consumer(settings_for(database_url, prefix)) as (_, _, topology):
            for method, path, body in SEED:
                response = await ingest.request(method, path, json=body, headers=headers)
                assert response.status == 202, await response.text()
                for event_id in (await response.json())["event_ids"]:
                    await wait_for(lambda: event_applied(pool, event_id))
            await broker.delete(topology.costing.channel, topology.names)  # leave nothing on the broker
    finally:
        await ingest.close()
    return tenant_id


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
def query_url(seeded_tenant, database_url):
    server = ServerThread(create_app(settings_for(database_url, "unused")))
    url = server.start()
    yield url
    server.stop()


def test_the_served_document_is_the_one_tested(query_url):
    served = requests.get(f"{query_url}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))
    sales = requests.get(f"{query_url}/api/v1/sales", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert sales.json()["summary"]["count"] == 4  # the seeded tenant is the one the cases use


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_query_api_conforms_to_its_openapi_document(case, query_url):
    case.call_and_validate(base_url=query_url)

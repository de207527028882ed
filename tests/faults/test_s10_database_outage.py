"""The HTTP services while their database is unreachable (docs/reliability.md §6 item 1, I7,
S10): every request that needs the database is answered 503 with a JSON body, nothing is
accepted that was not committed, readiness says why, and the same request goes through
once the database is back. The database is cut through a loopback TCP proxy, so the real
server keeps running for everyone else."""

from __future__ import annotations

import json
import uuid

import pytest

from services.ingest.app import create_app as create_ingest_app
from services.ingest.qbo.signature import sign
from services.query.app import create_app as create_query_app
from tests.conftest import client_for, outbox_pending, settings_for, wait_for
from tests.tcp_proxy import TcpProxy, through

VERIFIER = "outage-verifier-token"


@pytest.fixture
async def cut_database(database_url):
    """(proxy, the database URL through it); the proxy is up until the test cuts it."""
    proxy = TcpProxy.to(database_url)
    await proxy.start()
    yield proxy, through(database_url, proxy.port)
    await proxy.stop()


async def _unavailable(response) -> None:
    assert response.status == 503, await response.text()
    assert (await response.json())["error"] == "unavailable"


async def test_ingest_answers_503_while_the_database_is_gone_and_stores_nothing(
    pool, cut_database, broker_prefix, api_tenant
):
    proxy, url = cut_database
    tenant_id, headers = api_tenant
    client = await client_for(create_ingest_app(settings_for(url, broker_prefix, qbo_webhook_verifier_token=VERIFIER)))
    try:
        product = {"sku": f"W-{uuid.uuid4().hex[:6]}", "name": "Widget"}
        delivery = json.dumps(
            [
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "type": "qbo.invoice.created.v1",
                    "intuitentityid": "1",
                    "intuitaccountid": "outage-realm",
                }
            ]
        ).encode()
        proxy.cut()
        await _unavailable(await client.post("/api/v1/products", json=product, headers=headers))
        # A 5xx makes Intuit deliver the webhook again later; a 2xx would lose it.
        await _unavailable(
            await client.post(
                "/webhooks/quickbooks", data=delivery, headers={"intuit-signature": sign(delivery, VERIFIER)}
            )
        )
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"].startswith("unavailable")
        assert await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id) == 0
        assert await pool.fetchval("SELECT count(*) FROM qbo_deliveries WHERE body = $1", delivery) == 0

        proxy.restore()
        response = await client.post("/api/v1/products", json=product, headers=headers)
        assert response.status == 202, await response.text()
        response = await client.post(
            "/webhooks/quickbooks", data=delivery, headers={"intuit-signature": sign(delivery, VERIFIER)}
        )
        assert response.status == 200
        await wait_for(lambda: _published(pool, tenant_id))  # so no later test's relay meets the row
    finally:
        await client.close()
    assert await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id) == 1


async def _published(pool, tenant_id) -> bool:
    return await outbox_pending(pool, tenant_id) == 0


async def test_query_answers_503_while_the_database_is_gone(cut_database, api_tenant):
    proxy, url = cut_database
    _, headers = api_tenant
    client = await client_for(create_query_app(settings_for(url, "unused")))
    try:
        assert (await client.get("/api/v1/sales", headers=headers)).status == 200
        proxy.cut()
        await _unavailable(await client.get("/api/v1/sales", headers=headers))
        await _unavailable(await client.get("/api/v1/products/margins", headers=headers))
        proxy.restore()
        assert (await client.get("/api/v1/sales", headers=headers)).status == 200
    finally:
        await client.close()

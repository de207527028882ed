"""Many processes per service (issue 20): two ingest, three costing and two query processes
(subprocesses) on one database and one broker, under acceptance-style load (manual writes
to both ingest processes at once, QuickBooks changes whose signed webhooks the simulator
posts, a replay of the tenant's log in the middle), give exactly the reference model's
result over the event log. The singleton jobs are safe with N processes: the outbox relays
share the outbox (SKIP LOCKED), the CDC scheduler elects one process per realm (advisory
lock) and skips periodic catch-ups another process just made, the rollup folders take
turns (advisory lock)."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp

from services.ingest.qbo.admin import connect_quickbooks
from services.ingest.replay import Selection, replay
from shared.events import parse_event
from tests.conftest import TEST_AMQP_URL, client_for, queue_counts, settings_for, wait_for
from tests.invariants import assert_invariants, violations
from tests.processes import metric, running
from tests.projection import project
from tests.reference_model import compute
from tools.qbo_sim.app import create_app as create_sim
from tools.qbo_sim.config import SimConfig

VERIFIER = "scale-out-verifier"
CDC_INTERVAL = 2.0


async def logged_events(pool, tenant_id):
    rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 ORDER BY seq", tenant_id)
    return [parse_event(bytes(r["body"])) for r in rows]


async def settled(pool, tenant_id, topology) -> bool:
    """Nothing left anywhere: notifications handled, outbox empty, every logged event applied, queue empty."""
    busy = await pool.fetchval(
        """SELECT (SELECT count(*) FROM qbo_notifications WHERE status IN ('pending', 'processing'))
                + (SELECT count(*) FROM outbox o JOIN event_log e USING (seq) WHERE e.tenant_id = $1)
                + (SELECT count(*) FROM event_log e WHERE e.tenant_id = $1
                   AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = e.event_id))""",
        tenant_id,
    )
    return busy == 0 and (await queue_counts(topology)).message_count == 0


def sale(reference: str, day: int, quantity: int) -> dict:
    return {
        "reference": reference,
        "type": "invoice",
        "date": f"2026-02-{day:02d}",
        "customer": "Bob",
        "lines": [{"sku": "W-1", "quantity": str(quantity), "unit_price": "9"}],
    }


async def test_two_ingest_three_costing_two_query_processes_give_the_reference_result(
    pool, database_url, broker_prefix, api_tenant, topology
):
    tenant_id, headers = api_tenant
    sim = await client_for(
        create_sim(SimConfig(verifier_token=VERIFIER, webhook_batch_window=0.05, log_level="WARNING"))
    )
    sim_url = str(sim.make_url("")).rstrip("/")
    qbo_env = {
        "QBO_API_BASE": sim_url,
        "QBO_OAUTH_TOKEN_URL": f"{sim_url}/oauth2/v1/tokens/bearer",
        "QBO_OAUTH_REVOKE_URL": f"{sim_url}/v2/oauth2/tokens/revoke",
        "QBO_OAUTH_AUTHORIZE_URL": f"{sim_url}/appcenter/connect/oauth2",
        "QBO_CLIENT_ID": "sim-client",
        "QBO_CLIENT_SECRET": "sim-secret",
        "QBO_WEBHOOK_VERIFIER_TOKEN": VERIFIER,
        "QBO_CDC_INTERVAL_SECONDS": str(CDC_INTERVAL),
    }
    specs = [("ingest", qbo_env)] * 2 + [("costing", {})] * 3 + [("query", {})] * 2
    realm = ""
    try:
        async with (
            running(specs, database_url, TEST_AMQP_URL, broker_prefix) as services,
            aiohttp.ClientSession() as http,
        ):
            ingests = [s for s in services if s.name == "ingest"]
            queries = [s for s in services if s.name == "query"]
            rnd = random.Random(20)

            async def call(method: str, path: str, body=None, status=202) -> None:
                url = rnd.choice(ingests).url + path  # a balancer in front of both
                async with http.request(method, url, json=body, headers=headers) as response:
                    assert response.status == status, await response.text()

            async def sim_call(method: str, path: str, body=None):
                response = await sim.request(method, path, json=body)
                assert response.status < 300, await response.text()
                return await response.json()

            # The simulator's webhooks go to one ingest process, manual writes to either.
            await sim_call("POST", "/sim/webhooks/config", {"url": f"{ingests[0].url}/webhooks/quickbooks"})
            realm = (await sim_call("POST", "/sim/companies", {}))["realm_id"]
            item = (
                await sim_call("POST", f"/sim/{realm}/items", {"name": "Widget", "sku": "W-1", "type": "Inventory"})
            )["Item"]["Id"]
            await call("PUT", "/api/v1/products/W-1", {"name": "Widget"})
            for n, (qty, cost, day) in enumerate([(40, "2", 1), (30, "3", 10), (25, "2.5", 20)]):
                lot = {"sku": "W-1", "lot_number": f"L{n}", "quantity": str(qty), "unit_cost": cost}
                await call("POST", "/api/v1/lots", {**lot, "received_at": f"2026-01-{day:02d}T00:00:00Z"})
            tokens = await sim_call("POST", f"/sim/{realm}/tokens")
            async with pool.acquire() as conn:
                assert await connect_quickbooks(
                    conn,
                    settings_for(database_url, broker_prefix),
                    tenant_id,
                    realm,
                    tokens["access_token"],
                    tokens["refresh_token"],
                    tokens["expires_in"],
                )
            started = time.monotonic()

            async def manual() -> None:
                for n in range(24):
                    await call("POST", "/api/v1/sales", sale(f"M-{n}", n % 27 + 1, rnd.randint(1, 4)))
                    if n % 6 == 5:
                        await call("PUT", f"/api/v1/sales/M-{n - 2}", sale(f"M-{n - 2}", (n - 2) % 27 + 1, 5))
                    if n % 8 == 7:
                        await call("POST", f"/api/v1/sales/M-{n - 3}/void")

            async def quickbooks() -> list[str]:
                ids = []
                for n in range(16):
                    body = {
                        "customer": "Ann",
                        "txn_date": f"2026-02-{n % 27 + 1:02d}",
                        "lines": [{"item_id": item, "qty": str(rnd.randint(1, 3)), "unit_price": "11"}],
                    }
                    created = await sim_call("POST", f"/sim/{realm}/invoice", body)
                    ids.append(created["Invoice"]["Id"])
                    if n % 5 == 4:
                        edited = {"lines": [{"item_id": item, "qty": "6", "unit_price": "11"}]}
                        await sim_call("POST", f"/sim/{realm}/invoice/{ids[n - 1]}", edited)
                    if n % 7 == 6:
                        await sim_call("POST", f"/sim/{realm}/invoice/{ids[n - 2]}/void")
                    await asyncio.sleep(0.05)
                return ids

            async def replay_midway() -> None:
                await asyncio.sleep(1.0)
                assert await replay(pool, topology.exchange, Selection(tenant_id=tenant_id)) > 0

            _, invoices, _ = await asyncio.gather(manual(), quickbooks(), replay_midway())
            await sim_call("POST", "/sim/webhooks/flush")
            await wait_for(lambda: settled(pool, tenant_id, topology), timeout=90, interval=0.25)
            await asyncio.sleep(CDC_INTERVAL * 1.5)  # periodic catch-ups of both processes in between
            await wait_for(lambda: settled(pool, tenant_id, topology), timeout=60, interval=0.25)
            elapsed = time.monotonic() - started

            events = await logged_events(pool, tenant_id)
            assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id) == len(
                events
            )
            assert await project(pool, tenant_id) == compute(events)
            assert_invariants(await violations(pool, tenant_id))
            imported = await pool.fetch(
                "SELECT external_id FROM sales WHERE tenant_id = $1 AND source = 'quickbooks'", tenant_id
            )
            assert {r["external_id"] for r in imported} == set(invoices)

            # The CDC scheduler: about one periodic catch-up per interval across both processes, not two.
            done = [await metric(s.url, "qbo_catch_ups_total", 'outcome="done"') for s in ingests]
            skipped = [
                await metric(s.url, "qbo_catch_ups_total", f'outcome="{outcome}"')
                for s in ingests
                for outcome in ("recent", "elsewhere")
            ]
            assert sum(done) <= elapsed / (CDC_INTERVAL * 0.9) + 3, (done, skipped, elapsed)
            assert sum(skipped) > 0, (done, skipped)

            # Both query processes answer the same, and exactly (rollups folded by whichever holds the lock).
            answers = []
            for query in queries:
                async with http.get(f"{query.url}/api/v1/sales?limit=200", headers=headers) as response:
                    assert response.status == 200, await response.text()
                    body = await response.json()
                answers.append(sorted((s["source"], s["external_id"], s["status"], s["cost"]) for s in body["items"]))
            assert answers[0] == answers[1] and len(answers[0]) == len(compute(events).sales)
    finally:
        await sim.close()
        if realm:
            await pool.execute("UPDATE qbo_connections SET status = 'disconnected' WHERE realm_id = $1", realm)

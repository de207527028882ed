"""``python -m services.ingest.demo``: the demo company of ``make run``.

With the QuickBooks and/or Xero simulators running: creates the tenant "Demo Manufacturing"
(its API key is written to ``var/demo-api-key``), its finished goods and lots
through the ingest API, and connects the QuickBooks simulator's demo company and a Xero
demo organisation (base USD, items W-100 and W-200, a few invoices and a cash sale) the way
an app does (OAuth authorization code, then the code exchange at the token endpoint; Xero's
organisation from ``GET /connections``); the ingest service then imports, costs and shows
the sales of both, each under its source. ``--no-quickbooks`` / ``--no-xero`` (or
``DEMO_QUICKBOOKS=0`` / ``DEMO_XERO=0``, as ``make run`` sets them when real credentials are
configured) skip one. Idempotent; it then stays up (honcho ends every process when one
exits) until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg

from services.ingest.admin import create_tenant
from services.ingest.qbo.admin import connect_quickbooks
from services.ingest.xero.admin import connect_xero
from services.ingest.xero.oauth import auth_event_id, token_url
from shared.api_keys import create_key
from shared.logging import configure, get_logger
from shared.migrate import migrate
from shared.settings import Settings

log = get_logger("demo")
TENANT_NAME = "Demo Manufacturing"
KEY_FILE = Path("var/demo-api-key")
DEMO_REALM_ID = "9130350000000001"
#: The Xero simulator's organisation of the demo (base USD like the demo tenant).
DEMO_XERO_ORG = "6f1d2e3c-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
PRODUCTS = [("W-100", "Widget", "4.90"), ("W-200", "Widget Pro", "10.75"), ("G-300", "Gadget", "18.00")]
LOTS = [
    ("W-100", "W100-A", "20", "4.80", 90),
    ("W-100", "W100-B", "15", "5.10", 50),
    ("W-200", "W200-A", "10", "10.90", 75),
    ("G-300", "G300-A", "5", "18.00", 70),
]


async def _wait(session: aiohttp.ClientSession, url: str, what: str, seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit(f"demo: {what} did not come up at {url}")
        await asyncio.sleep(0.5)


async def _authorize(session: aiohttp.ClientSession, settings: Settings, realm_id: str) -> dict[str, Any]:
    """Connect the company as an app does: the OAuth 2.0 authorization-code grant against the
    configured QuickBooks endpoints (the simulator's consent is automatic; ``realm`` picks the
    company the user would pick), then the code exchange with HTTP Basic client authentication."""
    if not (settings.qbo_client_id and settings.qbo_client_secret):
        raise SystemExit("demo: QBO_CLIENT_ID and QBO_CLIENT_SECRET are required")
    params = {
        "client_id": settings.qbo_client_id,
        "response_type": "code",
        "redirect_uri": settings.qbo_redirect_uri,
        "scope": "com.intuit.quickbooks.accounting",
        "state": secrets.token_urlsafe(16),
        "realm": realm_id,
    }
    async with session.get(settings.qbo_oauth_authorize_url, params=params, allow_redirects=False) as response:
        callback = parse_qs(urlsplit(response.headers.get("Location", "")).query)
    if response.status != 302 or callback.get("state") != [params["state"]] or "code" not in callback:
        raise SystemExit(f"demo: the QuickBooks consent did not return a code (HTTP {response.status})")
    auth = aiohttp.BasicAuth(settings.qbo_client_id, settings.qbo_client_secret)
    form = {"grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": settings.qbo_redirect_uri}
    async with session.post(
        settings.qbo_oauth_token_url, data=form, auth=auth, headers={"Accept": "application/json"}
    ) as response:
        if response.status != 200:
            raise SystemExit(f"demo: the code exchange failed: HTTP {response.status} {await response.text()}")
        tokens: dict[str, Any] = await response.json()
        return tokens


async def _authorize_xero(session: aiohttp.ClientSession, settings: Settings, org: str) -> tuple[dict[str, Any], str]:
    """Connect the organisation as an app does: consent (the simulator's ``sim_consent=allow``
    stands for the person's click, ``tenant`` for the organisation ticked), the code exchange
    (HTTP Basic), then ``GET /connections`` for the organisation the consent linked."""
    if not (settings.xero_client_id and settings.xero_client_secret):
        raise SystemExit("demo: XERO_CLIENT_ID and XERO_CLIENT_SECRET are required")
    params = {
        "response_type": "code",
        "client_id": settings.xero_client_id,
        "redirect_uri": settings.xero_redirect_uri,
        "scope": settings.xero_scopes,
        "state": secrets.token_urlsafe(16),
        "sim_consent": "allow",
        "tenant": org,
    }
    async with session.get(settings.xero_oauth_authorize_url, params=params, allow_redirects=False) as response:
        callback = parse_qs(urlsplit(response.headers.get("Location", "")).query)
    if response.status != 302 or callback.get("state") != [params["state"]] or "code" not in callback:
        raise SystemExit(f"demo: the Xero consent did not return a code (HTTP {response.status})")
    auth = aiohttp.BasicAuth(settings.xero_client_id, settings.xero_client_secret)
    form = {"grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": settings.xero_redirect_uri}
    async with session.post(token_url(settings), data=form, auth=auth, headers={"Accept": "application/json"}) as r:
        if r.status != 200:
            raise SystemExit(f"demo: the Xero code exchange failed: HTTP {r.status}")
        tokens: dict[str, Any] = await r.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"}
    query = {"authEventId": auth_event_id(tokens["access_token"]) or ""}
    async with session.get(f"{settings.xero_api_base.rstrip('/')}/connections", params=query, headers=bearer) as r:
        tenants = [c["tenantId"] for c in await r.json()]
    if org not in tenants:
        raise SystemExit("demo: GET /connections does not list the demo organisation")
    return tokens, org


def _read_key() -> str | None:
    return KEY_FILE.read_text().strip() if KEY_FILE.exists() else None


def _write_key(key: str) -> None:
    KEY_FILE.parent.mkdir(exist_ok=True)
    KEY_FILE.write_text(key + "\n")
    os.chmod(KEY_FILE, 0o600)


async def _tenant_and_key(conn: asyncpg.Connection) -> tuple[uuid.UUID, str]:
    tenant_id: uuid.UUID | None = await conn.fetchval(
        "SELECT id FROM tenants WHERE name = $1 ORDER BY created_at LIMIT 1", TENANT_NAME
    )
    if tenant_id is None:
        tenant_id, key = await create_tenant(conn, TENANT_NAME, "USD")
    else:
        stored = await asyncio.to_thread(_read_key)
        key = stored if stored is not None else (await create_key(conn, tenant_id)).key
    await asyncio.to_thread(_write_key, key)
    return tenant_id, key


async def setup(
    settings: Settings,
    sim_url: str | None,
    ingest_url: str | None = None,
    xero_sim_url: str | None = None,
) -> str:
    """``sim_url``/``xero_sim_url`` None: that simulator is not running (its channel is skipped)."""
    await migrate(settings.database_owner_url, settings.database_url)
    ingest_url = ingest_url or f"http://127.0.0.1:{settings.ingest_port}"
    async with aiohttp.ClientSession() as session:
        if sim_url:
            await _wait(session, f"{sim_url}/sim/health", "the QuickBooks simulator")
        if xero_sim_url:
            await _wait(session, f"{xero_sim_url}/sim/health", "the Xero simulator")
        await _wait(session, f"{ingest_url}/healthz", "the ingest service")
        conn = await asyncpg.connect(settings.database_owner_url)  # creates the demo tenant: the owner
        try:
            tenant_id, key = await _tenant_and_key(conn)
            headers = {"Authorization": f"Bearer {key}"}
            now = datetime.now(UTC)
            for sku, name, standard_cost in PRODUCTS:
                await session.put(
                    f"{ingest_url}/api/v1/products/{sku}",
                    headers=headers,
                    json={"name": name, "standard_cost": standard_cost},
                )
            for sku, lot, qty, cost, days in LOTS:  # 409 when it exists already: fine
                await session.post(
                    f"{ingest_url}/api/v1/lots",
                    headers=headers,
                    json={
                        "sku": sku,
                        "lot_number": lot,
                        "quantity": qty,
                        "unit_cost": cost,
                        "received_at": (now - timedelta(days=days)).isoformat(),
                    },
                )
            if sim_url:
                await _connect_quickbooks(session, conn, settings, sim_url, tenant_id)
            if xero_sim_url:
                await _connect_xero(session, conn, settings, xero_sim_url, tenant_id)
        finally:
            await conn.close()
    return key


async def _connect_xero(
    session: aiohttp.ClientSession, conn: asyncpg.Connection, settings: Settings, sim_url: str, tenant_id: uuid.UUID
) -> None:
    async with session.get(f"{sim_url}/sim/orgs") as response:
        orgs = [o["tenant_id"] for o in await response.json()]
    if DEMO_XERO_ORG not in orgs:
        await session.post(
            f"{sim_url}/sim/orgs",
            json={
                "tenant_id": DEMO_XERO_ORG,
                "name": "Demo Manufacturing (Xero)",
                "base_currency": "USD",
                "demo": True,
            },
        )
    connected = await conn.fetchval(
        "SELECT status = 'connected' FROM qbo_connections WHERE provider = 'xero' AND realm_id = $1", DEMO_XERO_ORG
    )
    if not connected:
        tokens, org = await _authorize_xero(session, settings, DEMO_XERO_ORG)
        await connect_xero(
            conn, settings, tenant_id, org, tokens["access_token"], tokens["refresh_token"], int(tokens["expires_in"])
        )


async def _connect_quickbooks(
    session: aiohttp.ClientSession, conn: asyncpg.Connection, settings: Settings, sim_url: str, tenant_id: uuid.UUID
) -> None:
    async with session.get(f"{sim_url}/sim/companies") as response:
        realms = (await response.json())["realm_ids"]
    if DEMO_REALM_ID not in realms:
        await session.post(f"{sim_url}/sim/companies", json={"realm_id": DEMO_REALM_ID, "demo": True})
    connected = await conn.fetchval(
        "SELECT status = 'connected' FROM qbo_connections WHERE provider = 'quickbooks' AND realm_id = $1",
        DEMO_REALM_ID,
    )
    if not connected:
        tokens = await _authorize(session, settings, DEMO_REALM_ID)
        await connect_quickbooks(
            conn,
            settings,
            tenant_id,
            DEMO_REALM_ID,
            tokens["access_token"],
            tokens["refresh_token"],
            int(tokens["expires_in"]),
        )


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    qbo = None if args.no_quickbooks or os.environ.get("DEMO_QUICKBOOKS") == "0" else args.sim
    xero = None if args.no_xero or os.environ.get("DEMO_XERO") == "0" else args.xero_sim
    key = await setup(settings, qbo, args.ingest, xero)
    print(
        f"\n  Demo company ready.\n  API key: {key}  (also in {KEY_FILE})\n"
        f"  Sales tab: http://127.0.0.1:{settings.query_port}/sales\n"
        f"  Drive QuickBooks: .venv/bin/python -m tools.qbo_sim.cli --help\n"
        f"  Drive Xero: .venv/bin/python -m tools.xero_sim.cli --tenant {DEMO_XERO_ORG} --help\n",
        flush=True,
    )
    if args.stay:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--sim", default=f"http://127.0.0.1:{os.environ.get('QBO_SIM_PORT', '8090')}")
    parser.add_argument("--xero-sim", default=f"http://127.0.0.1:{os.environ.get('XERO_SIM_PORT', '8091')}")
    parser.add_argument("--no-quickbooks", action="store_true", help="do not connect the QuickBooks simulator")
    parser.add_argument("--no-xero", action="store_true", help="do not connect the Xero simulator")
    parser.add_argument("--ingest", help="the ingest service's URL (default http://127.0.0.1:INGEST_PORT)")
    parser.add_argument("--stay", action="store_true", help="keep running after the setup (for honcho)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""What the schemathesis tests of the ingest and query APIs share: two tenants' API keys
made before collection, the schema loaded from the served document with tenant A's key,
the app on a server thread the synchronous cases can call, the hypothesis settings, and
the tenant-isolation check (every case replayed with tenant B's key must show nothing
of tenant A's)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterable
from urllib.parse import unquote

import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings

from services.query.app import SERVER_LIMITS
from shared.api_keys import INSERT_KEY


def new_key() -> tuple[str, str]:
    """An API key (prefix, key) made before the tenant it will be stored for."""
    prefix = secrets.token_hex(6)
    return prefix, f"psk_{prefix}_{secrets.token_urlsafe(32)}"


def service_secrets() -> dict[str, str]:
    """The secrets ingest refuses to start without."""
    return {
        "oauth_state_secret": secrets.token_urlsafe(32),
        "token_encryption_key": base64.b64encode(os.urandom(32)).decode(),
    }


def load_schema(document: dict, key: str):
    """The document the app serves, loaded at import (schemathesis' fixture-based loader
    does not work with pytest 9; the server's URL is given with each call), its cases
    sent with ``key``. positive_data_acceptance is off: schema-valid requests are refused
    by rules a schema cannot state (documented 4xx, which status_code_conformance checks)."""
    config = schemathesis.Config.from_dict(
        {
            "checks": {"positive_data_acceptance": {"enabled": False}},
            "auth": {"openapi": {"bearerAuth": {"bearer": key}}},
        }
    )
    return schemathesis.openapi.from_dict(json.loads(json.dumps(document)), config=config)


def case_settings(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    )


async def store_key(pool, tenant_id: uuid.UUID, prefix: str, key: str) -> None:
    await pool.execute(INSERT_KEY, uuid.uuid4(), tenant_id, prefix, hashlib.sha256(key.encode()).digest())


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class ServerThread:
    """An app on an aiohttp TestServer in its own thread and event loop, so the
    schemathesis cases can call it synchronously from the test's thread."""

    def __init__(self, app):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-server", daemon=True)
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


def assert_nothing_leaked(
    tenant_id, values: Iterable[str], response: requests.Response, leaked_ids: Iterable = ()
) -> None:
    """An answer to the other tenant's key holds none of ``values`` (nor ``leaked_ids``,
    found by the caller), except what the request named itself (a 404 may quote what it
    did not find)."""
    assert response.status_code < 500, response.text
    body = response.request.body or b""
    sent = unquote(response.request.url) + (body.decode(errors="replace") if isinstance(body, bytes) else body)
    leaked = [value for value in values if value in response.text and value not in sent]
    leaked += sorted(leaked_ids)
    assert not leaked, (
        f"{response.request.method} {response.request.url} with the other tenant's key answered "
        f"tenant {tenant_id}'s {leaked}: {response.text[:500]}"
    )


def call_as_both(case, base_url: str, other_headers: dict) -> requests.Response:
    """Call the case with its own key (tenant A's) and validate it; return the answer to
    the same request with the other tenant's key."""
    case.call_and_validate(base_url=base_url)
    return case.call(base_url=base_url, headers=other_headers)

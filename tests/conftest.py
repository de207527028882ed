"""Fixtures on the machine's real PostgreSQL and RabbitMQ. Tests use their own
database (TEST_DATABASE_URL, the owner's URL, recreated per run) and their own broker
names. The services under test connect as the service role (``database_url``: the same
database, user TEST_SERVICE_ROLE), so row-level security applies to them as in
production; the ``pool`` fixture is the owner's, for setting up and inspecting."""

from __future__ import annotations

import base64
import os
import secrets
import uuid

import pytest
from yarl import URL

from services.costing import recost
from services.costing.service import CostingService
from shared.db import create_pool
from shared.migrate import recreate_database
from shared.settings import Settings

pytest_plugins = ["tests.secret_scan"]  # no secret in clear in the logs or the database (issue 15)

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/partsemble_test")
TEST_SERVICE_URL = str(URL(TEST_DATABASE_URL).with_user(os.environ.get("TEST_SERVICE_ROLE", "partsemble_app")))
TEST_AMQP_URL = os.environ.get("TEST_AMQP_URL", os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))

# Secrets of this test run, made fresh (nothing has a default); services started as
# subprocesses inherit them through the environment.
os.environ.setdefault("TOKEN_ENCRYPTION_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
os.environ.setdefault("OAUTH_STATE_SECRET", secrets.token_urlsafe(48))


@pytest.fixture(scope="session")
def owner_database_url() -> str:
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def database_url() -> str:
    """What the services under test connect with: the service role, bound by row-level security."""
    return TEST_SERVICE_URL


@pytest.fixture(scope="session")
async def pool(owner_database_url, database_url):
    """The owner's pool (bypasses row-level security): test set-up and inspection only."""
    await recreate_database(owner_database_url, database_url)
    pool = await create_pool(owner_database_url, min_size=1, max_size=12)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def service_pool(pool, database_url):
    """A pool of the service role, for services constructed directly in tests."""
    service_pool = await create_pool(database_url, min_size=1, max_size=12)
    yield service_pool
    await service_pool.close()


async def new_tenant(pool, name: str = "test") -> uuid.UUID:
    tenant_id = uuid.uuid4()
    await pool.execute("INSERT INTO tenants (id, name, home_currency) VALUES ($1, $2, 'USD')", tenant_id, name)
    return tenant_id


@pytest.fixture
async def tenant_id(pool) -> uuid.UUID:
    return await new_tenant(pool)


@pytest.fixture(params=["python", "database"])
def tail_recost(request, monkeypatch) -> str:
    """Run a test twice: every tail re-costed in Python, then every tail re-costed inside
    PostgreSQL (repository.RECOST_TAIL_IN_DB; the engine chooses by the tail's length)."""
    monkeypatch.setattr(recost, "RECOST_TAIL_IN_DB_FROM", 0 if request.param == "database" else 10**9)
    return request.param


@pytest.fixture
def costing(service_pool) -> CostingService:
    return CostingService(service_pool)


@pytest.fixture
async def broker_prefix():
    """Broker object names of one test. Whatever declared them (the ingest relay, a
    consumer, the test), its queues and exchanges are deleted afterwards: quorum
    queues left behind by hundreds of tests would weigh down the broker."""
    import aio_pika

    from shared import broker

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        await broker.delete(await connection.channel(), broker.Names(prefix))
    finally:
        await connection.close()


@pytest.fixture
async def amqp():
    import aio_pika

    connection = await aio_pika.connect_robust(TEST_AMQP_URL)
    yield connection
    await connection.close()


@pytest.fixture
async def topology(amqp, broker_prefix):
    from shared import broker

    channel = await broker.open_channel(amqp)
    topo = await broker.declare(channel, broker.Names(broker_prefix), Settings().costing_delivery_limit)
    yield topo  # deleted with the rest of the prefix's objects by `broker_prefix`


async def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):  # noqa: ASYNC109 - polling deadline; fails the test with AssertionError, not a cancellation
    """Poll a predicate (plain or async) until it returns a truthy value; fail after ``timeout`` s."""
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def queue_counts(topology):
    """The costing queue's DeclareOk now (message_count: ready messages; consumer_count).
    Asked on a connection of its own: a robust channel answers a repeated ``declare_queue``
    with the queue object it cached, counts of the first declaration included."""
    import aio_pika

    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        queue = await (await connection.channel()).declare_queue(topology.names.costing_queue, passive=True)
        return queue.declaration_result
    finally:
        await connection.close()


async def outbox_pending(pool, tenant_id) -> int:
    """The tenant's events not yet confirmed by the broker (rows in the outbox)."""
    return await pool.fetchval(
        "SELECT count(*) FROM outbox o JOIN event_log e USING (seq) WHERE e.tenant_id = $1", tenant_id
    )


def settings_for(database_url: str, broker_prefix: str, **extra) -> Settings:
    extra.setdefault("database_owner_url", TEST_DATABASE_URL)
    return Settings(
        database_url=database_url, amqp_url=extra.pop("amqp_url", TEST_AMQP_URL), broker_prefix=broker_prefix, **extra
    )


async def client_for(app):
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def ingest(pool, database_url, broker_prefix):
    """The ingest app on a test server (its relay publishes to this test's broker names)."""
    from services.ingest.app import create_app

    client = await client_for(create_app(settings_for(database_url, broker_prefix)))
    yield client
    await client.close()


@pytest.fixture
async def costing_consumer(pool, database_url, broker_prefix):
    """A costing consumer running in-process on this test's queue."""
    from services.costing.main import running_consumer

    async with running_consumer(settings_for(database_url, broker_prefix)) as running:
        yield running


@pytest.fixture
async def api_tenant(pool):
    """A tenant with an API key: (tenant_id, request headers)."""
    return await make_api_tenant(pool)


async def make_api_tenant(pool, name: str = "Acme", home_currency: str = "USD"):
    from services.ingest.admin import create_tenant

    async with pool.acquire() as conn:
        tenant_id, key = await create_tenant(conn, name, home_currency)
    return tenant_id, {"Authorization": f"Bearer {key}"}


async def event_applied(pool, event_id) -> bool:
    return (
        await pool.fetchval("SELECT true FROM processed_events WHERE event_id = $1", uuid.UUID(str(event_id))) or False
    )


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--with-docker",
        action="store_true",
        default=os.environ.get("PARTSEMBLE_WITH_DOCKER") == "1",
        help="also run the tests marked 'docker' (they need a Docker engine with Compose; not in CI here)",
    )
    parser.addoption(
        "--fault-mode",
        choices=("ci", "soak"),
        default=os.environ.get("FAULT_MODE", "soak" if os.environ.get("FAULT_SOAK") == "1" else "ci"),
        help="tests/faults/: 'ci' (short, fixed seeds; the default) or 'soak' (longer, random seeds)",
    )


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``docker`` run only with --with-docker (or PARTSEMBLE_WITH_DOCKER=1): this
    machine and CI have no Docker engine. They are deselected, not skipped, and with the option
    they fail when Docker is missing."""
    if config.getoption("--with-docker"):
        return
    selected = [item for item in items if item.get_closest_marker("docker") is None]
    if len(selected) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("docker")])
        items[:] = selected

"""Bad input that used to get through, and the edges of the HTTP servers (issue 15):
decimal inputs out of range (accepted then dead-lettered, or a 500), oversized and
non-UTF-8 headers, crafted query cursors, and replayed QuickBooks webhooks. Every
refusal is a JSON 4xx naming what is wrong, with nothing stored and no library's
exception text in the body."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging

import pytest
from aiohttp import web

from services.ingest.app import create_app
from services.ingest.qbo.signature import sign
from services.query.app import SERVER_LIMITS
from services.query.app import create_app as create_query_app
from shared import http_server
from shared.events import parse_event
from tests.conftest import client_for, make_api_tenant, settings_for

PRODUCTS, LOTS, SALES = "/api/v1/products", "/api/v1/lots", "/api/v1/sales"
RECEIVED_AT = "2026-01-05T08:00:00+00:00"
VERIFIER = "edges-verifier-token"
SECRETS = {
    "oauth_state_secret": "edges-oauth-state-secret-of-at-least-32-characters",
    "token_encryption_key": base64.b64encode(b"e" * 32).decode(),
}


def ingest_settings(database_url, broker_prefix):
    return settings_for(database_url, broker_prefix, qbo_webhook_verifier_token=VERIFIER, **SECRETS)


@pytest.fixture
async def app(database_url, broker_prefix):
    client = await client_for(create_app(ingest_settings(database_url, broker_prefix)))
    yield client
    await client.close()


@pytest.fixture
async def tenant(pool, app):
    tenant_id, headers = await make_api_tenant(pool)
    response = await app.post(PRODUCTS, json={"sku": "W-1", "name": "Widget"}, headers=headers)
    assert response.status == 202, await response.text()
    response = await app.post(
        LOTS,
        json={"sku": "W-1", "lot_number": "L1", "quantity": "10", "unit_cost": "2", "received_at": RECEIVED_AT},
        headers=headers,
    )
    assert response.status == 202, await response.text()
    return tenant_id, headers


async def events_of(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1", tenant_id)


def raw_json(template: str, value: str) -> bytes:
    """A body with ``value`` spliced in verbatim: a JSON number (1E+999999999, NaN) or a string."""
    return template.replace("@", value).encode()


SALE = (
    '{"reference": "S-1", "type": "invoice", "date": "2026-02-01", '
    '"lines": [{"sku": "W-1", "quantity": "1", "unit_price": "1", "@F": @}]}'
)
SALE_WITH_RATE = (
    '{"reference": "S-1", "type": "invoice", "date": "2026-02-01", "currency": "EUR", '
    '"exchange_rate": @, "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "1"}]}'
)
LOT = (
    f'{{"sku": "W-1", "lot_number": "L2", "quantity": "1", "unit_cost": "1", "@F": @, "received_at": "{RECEIVED_AT}"}}'
)
PRODUCT = '{"sku": "P-9", "name": "Nine", "standard_cost": @}'

#: (method, path, body template with "@" for the value and "@F" for the field, field named in the error)
TARGETS = {
    "quantity": ("POST", SALES, SALE.replace("@F", "quantity"), "lines.0.quantity"),
    "unit_price": ("POST", SALES, SALE.replace("@F", "unit_price"), "lines.0.unit_price"),
    "discount": ("POST", SALES, SALE.replace("@F", "discount"), "lines.0.discount"),
    "exchange_rate": ("POST", SALES, SALE_WITH_RATE, "exchange_rate"),
    "lot_quantity": ("POST", LOTS, LOT.replace("@F", "quantity"), "quantity"),
    "lot_unit_cost": ("POST", LOTS, LOT.replace("@F", "unit_cost"), "unit_cost"),
    "lot_patch": ("PATCH", f"{LOTS}/W-1/L1", '{"unit_cost": @}', "unit_cost"),
    "standard_cost": ("POST", PRODUCTS, PRODUCT, "standard_cost"),
}

BAD_NUMBERS = [
    "1E-999999999",
    "1E+999999999",
    '"1E-999999999"',
    '"1E+999999999"',  # exponent out of any range
    "NaN",
    "Infinity",
    "-Infinity",
    '"NaN"',
    '"sNaN"',
    '"Infinity"',  # not finite
    "0.0000001",
    '"1.0000001"',
    '"1.00000000000000000000000000000001"',  # more than 6 places
    "1000000000000",
    '"1E+12"',
    '"123456789012345678901234567890"',  # 10**12 or more
    "1" + "0" * 5000,  # a JSON integer longer than Python's int() reads
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("value", BAD_NUMBERS)
async def test_a_decimal_out_of_range_is_422_naming_the_field_and_nothing_is_stored(pool, app, tenant, target, value):
    tenant_id, headers = tenant
    method, path, template, field = TARGETS[target]
    before = await events_of(pool, tenant_id)
    response = await app.request(
        method, path, data=raw_json(template, value), headers={**headers, "Content-Type": "application/json"}
    )
    text = await response.text()
    assert response.status == 422, text
    body = json.loads(text)
    assert body["error"] == "validation_failed", body
    assert field in [d["field"] for d in body["detail"]], body
    assert "Value error" not in text and "decimal.Overflow" not in text and "Traceback" not in text
    assert await events_of(pool, tenant_id) == before


async def test_the_largest_and_finest_accepted_amounts_are_accepted_by_costing_too(pool, app, tenant):
    """Anything ingest accepts, costing's event validation accepts (never dead-lettered for its numbers)."""
    tenant_id, headers = tenant
    before = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM event_log WHERE tenant_id = $1", tenant_id)
    body = {
        "reference": "BIG",
        "type": "invoice",
        "date": "2026-02-01",
        "currency": "EUR",
        "exchange_rate": "999999999999.999999",
        "lines": [
            {
                "sku": "W-1",
                "quantity": "999999999999.999999",
                "unit_price": "999999999999.999999",
                "discount": "0.000001",
            },
            {"sku": "W-1", "quantity": "0.000001", "unit_price": "0.000001"},
            {"sku": "W-1", "quantity": "1.0000000000", "unit_price": "1E+3"},
        ],
    }
    response = await app.post(SALES, json=body, headers=headers)
    assert response.status == 202, await response.text()
    response = await app.patch(
        f"{LOTS}/W-1/L1", json={"quantity": "999999999999.999999", "unit_cost": "0E-999999999"}, headers=headers
    )
    assert response.status == 202, await response.text()
    rows = await pool.fetch("SELECT body FROM event_log WHERE tenant_id = $1 AND seq > $2", tenant_id, before)
    assert len(rows) == 2
    events = [parse_event(row["body"]) for row in rows]
    assert str(events[0].lines[0].quantity) == "999999999999.999999"
    assert str(events[1].unit_cost) == "0"  # 0E-999999999 stored as plain 0


# --- headers ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(app: web.Application, **limits):
    """The app on a real socket with the services' runner (shared.http_server.AppRunner)."""
    runner = http_server.AppRunner(app, access_log=None, **limits)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head, _, rest = (await asyncio.wait_for(reader.read(1 << 20), 10)).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("Content-Length", len(rest)))
        while len(rest) < length:
            chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split()[1]), headers, rest
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
def all_logs(caplog, capsys):
    """Everything logged: stdlib logging (aiohttp.server) and structlog's printed lines."""
    caplog.set_level(logging.DEBUG)

    def text() -> str:
        captured = capsys.readouterr()
        return (
            caplog.text + captured.out + captured.err + "".join(repr(r.exc_info) + repr(r.args) for r in caplog.records)
        )

    return text


def apps(database_url, broker_prefix):
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    health = web.Application()  # costing's health app: a plain Application behind the same runner
    health.router.add_get("/health", ok)
    return {
        "ingest": (lambda: create_app(ingest_settings(database_url, broker_prefix)), {}),
        "query": (lambda: create_query_app(settings_for(database_url, broker_prefix, **SECRETS)), SERVER_LIMITS),
        "costing_health": (lambda: health, {}),
    }


@pytest.mark.parametrize("service", ["ingest", "query", "costing_health"])
@pytest.mark.parametrize("where", ["header", "header_name", "request_line"])
async def test_an_oversized_header_is_431_json_and_its_value_never_logged(
    pool, database_url, broker_prefix, all_logs, service, where
):
    _, headers = await make_api_tenant(pool)
    key = headers["Authorization"].removeprefix("Bearer ")
    make, limits = apps(database_url, broker_prefix)[service]
    limit = limits.get("max_line_size", 8190)
    padding = "a" * (max(9000, limit + 100))
    path, extra = "/api/v1/sales", ""
    if where == "header":
        extra = f"X-Padding: {padding}{key}\r\nAuthorization: Bearer {key}\r\n"
    elif where == "header_name":
        extra = f"X-{key}{padding}: 1\r\n"
    else:
        path = f"/api/v1/sales?q={key}{padding}"
    async with served(make(), **limits) as port:
        status, response_headers, body = await raw_request(
            port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
        )
    assert status == 431, body
    assert response_headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {
        "error": "request_header_fields_too_large",
        "detail": "the request line or a header field is too long",
    }
    assert key.encode() not in body
    logged = all_logs()
    assert "http.malformed_request" in logged
    assert key not in logged and key[:20] not in logged and "Got more than" not in logged


async def test_a_malformed_request_is_400_json_without_the_parsers_text(pool, database_url, broker_prefix, all_logs):
    _, headers = await make_api_tenant(pool)
    key = headers["Authorization"].removeprefix("Bearer ")
    async with served(create_app(ingest_settings(database_url, broker_prefix))) as port:
        status, _, body = await raw_request(port, f"GET / HTTP/1.1\r\nHost: x\r\nX-{key}\x01: 1\r\n\r\n".encode())
    assert status == 400
    assert json.loads(body) == {"error": "bad_request", "detail": "the request is not well-formed HTTP"}
    assert key not in all_logs()


@pytest.mark.parametrize(
    "value", [b"Bearer \xff\xfe", b"Bearer psk_\xc3\x28_\xa0\xa1", b"Bearer psk_ab_\xed\xa0\x80", b"\xff psk_ab_cd"]
)
async def test_a_non_utf8_authorization_is_401_json(database_url, broker_prefix, value):
    async with served(create_app(ingest_settings(database_url, broker_prefix))) as port:
        status, headers, body = await raw_request(
            port, b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: " + value + b"\r\n\r\n"
        )
    assert status == 401, body
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "unauthorized"


async def test_a_non_utf8_correlation_id_is_replaced(pool, database_url, broker_prefix):
    _, auth = await make_api_tenant(pool)
    async with served(create_app(ingest_settings(database_url, broker_prefix))) as port:
        status, headers, body = await raw_request(
            port,
            b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + auth["Authorization"].encode()
            + b"\r\nX-Correlation-ID: \xff\xfe\r\n\r\n",
        )
    assert status == 200, body
    assert headers["X-Correlation-ID"].isascii() and len(headers["X-Correlation-ID"]) == 36


# --- library text in error bodies ----------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"sku": ', b"\xff\xfe{}", b"[" * 100_000, b'{"a": 1} x'])
async def test_bad_json_is_400_in_our_words(app, tenant, raw):
    _, headers = tenant
    response = await app.post(PRODUCTS, data=raw, headers={**headers, "Content-Type": "application/json"})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_json"
    for library_text in ("Expecting", "JSONDecodeError", "codec", "recursion", "Extra data"):
        assert library_text not in body["detail"]


async def test_a_validator_error_carries_our_words_only(app, tenant):
    _, headers = tenant
    response = await app.post(
        SALES,
        json={
            "reference": "X",
            "type": "invoice",
            "date": "2026-02-01",
            "currency": "ZZZ",
            "lines": [{"sku": "W-1", "quantity": "1", "unit_price": "1", "discount": "5"}],
        },
        headers=headers,
    )
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert {"field": "currency", "problem": "unknown currency 'ZZZ' (ISO 4217 code expected)"} in detail
    assert {"field": "lines.0", "problem": "discount exceeds quantity × unit_price"} in detail


# --- query cursors -------------------------------------------------------------------------


def b64(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sales_payload(**changes) -> dict:
    return {"kind": "sales", "sort": "date", "order": "desc", "key": "2026-01-01", "id": 1} | changes


CURSORS = {
    "bad base64": "a",
    "bad characters": "!!!",
    "not json": b64(b"\xff\x00garbage"),
    "json NaN": b64(b'{"kind": "sales", "sort": "date", "order": "desc", "key": "2026-01-01", "id": NaN}'),
    "deep nesting": b64(b"[" * 3000),
    "a list": b64([1, 2]),
    "key a number": b64(sales_payload(key=20260101)),
    "key not a date": b64(sales_payload(key="2026-02-30")),
    "key a year 0": b64(sales_payload(key="0000-01-01")),
    "key an injection": b64(sales_payload(key="2026-01-01'::date); --")),
    "key a revenue for the date sort": b64(sales_payload(key="12.5")),
    "id a string": b64(sales_payload(id="1")),
    "id a float": b64(sales_payload(id=1.5)),
    "id a bool": b64(sales_payload(id=True)),
    "id negative": b64(sales_payload(id=-1)),
    "id huge": b64(sales_payload(id=2**63)),
    "id enormous": b64(
        b'{"kind": "sales", "sort": "date", "order": "desc", "key": "2026-01-01", "id": 1' + b"0" * 4000 + b"}"
    ),
    "another sort": b64(sales_payload(sort="revenue", key="12.5")),
    "another order": b64(sales_payload(order="asc")),
    "sort not a string": b64(sales_payload(sort=["date"])),
    "unknown field": b64(sales_payload(extra=1)),
    "missing id": b64({k: v for k, v in sales_payload().items() if k != "id"}),
    "a shortages cursor": b64(
        {"kind": "shortages", "key": ["2026-01-01", "2026-01-01T00:00:00+00:00", "a", "b", "c", 1]}
    ),
}


@pytest.fixture
async def query(pool, database_url, broker_prefix):
    client = await client_for(create_query_app(settings_for(database_url, broker_prefix, **SECRETS)))
    yield client
    await client.close()


@pytest.mark.parametrize("name", CURSORS)
async def test_a_crafted_sales_cursor_is_400_invalid_cursor(pool, query, name):
    _, headers = await make_api_tenant(pool)
    response = await query.get(SALES, params={"cursor": CURSORS[name]}, headers=headers)
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": "invalid_cursor", "detail": "invalid cursor"}


@pytest.mark.parametrize(
    "sort, key",
    [
        ("revenue", "2026-01-01"),
        ("revenue", "-Infinity"),
        ("revenue", "1e5"),
        ("margin", "1" * 101),
        ("cost", "NaN"),
        ("margin_pct", "--1"),
    ],
)
async def test_a_sales_cursor_key_must_fit_its_sort_column(pool, query, sort, key):
    _, headers = await make_api_tenant(pool)
    cursor = b64(sales_payload(sort=sort, key=key))
    response = await query.get(SALES, params={"cursor": cursor, "sort": sort}, headers=headers)
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": "invalid_cursor", "detail": "invalid cursor"}


@pytest.mark.parametrize(
    "key",
    [
        ["2026-01-01", "0001-01-01T00:00:00+14:00", "a", "b", "c", 1],  # before year 1 in UTC
        ["2026-01-01", "9999-12-31T23:00:00-05:00", "a", "b", "c", 1],  # after year 9999 in UTC
        ["2026-01-01", "2026-01-01T00:00:00+00:00", "\udc80", "b", "c", 1],  # a lone surrogate
        ["2026-01-01", "2026-01-01T00:00:00", "a", "b", "c", 1],  # no offset
        ["2026-01-01", "2026-01-01T00:00:00+00:00", "a", "b", "c", 2**40],
    ],
)
async def test_a_crafted_shortages_cursor_is_400_invalid_cursor(pool, query, key):
    _, headers = await make_api_tenant(pool)
    response = await query.get(
        "/api/v1/shortages", params={"cursor": b64({"kind": "shortages", "key": key})}, headers=headers
    )
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": "invalid_cursor", "detail": "invalid cursor"}


async def test_a_cursor_the_api_made_still_works(pool, query):
    from services.query.params import sales_cursor

    _, headers = await make_api_tenant(pool)
    for sort, key in (
        ("date", "2026-01-01"),
        ("date", "-infinity"),
        ("margin_pct", "-Infinity"),
        ("revenue", "-12.50"),
    ):
        response = await query.get(
            SALES, params={"cursor": sales_cursor(sort, "desc", key, 2**63 - 1), "sort": sort}, headers=headers
        )
        assert response.status == 200, await response.text()


# --- webhook deliveries ----------------------------------------------------------------------


async def test_a_replayed_webhook_is_stored_once_and_counted(pool, app):
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "edges-replay-1",
                "type": "qbo.invoice.created.v1",
                "time": "2026-02-01T00:00:00Z",
                "intuitentityid": "1",
                "intuitaccountid": "edges-no-such-realm",
            }
        ]
    ).encode()
    news = []
    for _ in range(3):
        response = await app.post(
            "/webhooks/quickbooks",
            data=body,
            headers={"Content-Type": "application/cloudevents+json", "intuit-signature": sign(body, VERIFIER)},
        )
        assert response.status == 200, await response.text()
        news.append((await response.json())["new"])
    assert news == [1, 0, 0]
    rows = await pool.fetch(
        "SELECT received_count, last_received_at >= received_at AS later FROM qbo_deliveries WHERE body = $1", body
    )
    assert [(r["received_count"], r["later"]) for r in rows] == [(3, True)]
    assert await pool.fetchval("SELECT count(*) FROM qbo_notifications WHERE realm_id = 'edges-no-such-realm'") == 1


async def test_an_unparseable_webhook_replayed_is_stored_once(pool, app):
    garbage = b'{"edges": "not a delivery"}'
    for _ in range(2):
        response = await app.post(
            "/webhooks/quickbooks", data=garbage, headers={"intuit-signature": sign(garbage, VERIFIER)}
        )
        assert response.status == 200
    rows = await pool.fetch("SELECT received_count, parse_error FROM qbo_deliveries WHERE body = $1", garbage)
    assert len(rows) == 1 and rows[0]["received_count"] == 2 and rows[0]["parse_error"]


async def test_a_malformed_chunked_body_is_400_json(database_url, broker_prefix, pool):
    _, auth = await make_api_tenant(pool)
    async with served(create_app(ingest_settings(database_url, broker_prefix))) as port:
        status, _, body = await raw_request(
            port,
            b"POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + auth["Authorization"].encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        )
    assert status == 400, body
    assert json.loads(body)["error"] == "bad_request"

"""The query API over data costed by the real pipeline (ingest app -> RabbitMQ ->
in-process costing consumer -> PostgreSQL): every endpoint and filter, sorting
both ways, keyset pagination, summaries, numbers checked by hand, voided and
deleted sales, event status, bad parameters, tenant isolation and auth."""

from __future__ import annotations

import base64
import functools
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest

from services.costing.main import running_consumer
from services.costing.service import CostingService
from services.ingest import deadletters
from services.ingest.app import create_app as create_ingest_app
from services.query import rollups
from services.query.app import create_app
from services.query.app_keys import GENERIC_POOL, READ_POOL
from shared import broker
from shared.api_keys import create_key
from shared.events import LotReceived, SaleRemoved
from tests.conftest import client_for, event_applied, make_api_tenant, settings_for, wait_for
from tests.histories import T0

W1_LOT = {
    "sku": "W-1",
    "lot_number": "L1",
    "quantity": "10",
    "unit_cost": "2.25",
    "received_at": "2026-01-05T08:00:00Z",
}
G2_LOT = {"sku": "G-2", "lot_number": "GL1", "quantity": "5", "unit_cost": "4", "received_at": "2026-01-02T00:00:00Z"}


def sale(reference: str, date: str, customer: str, lines: list, type_: str = "invoice") -> dict:
    return {"reference": reference, "type": type_, "date": date, "customer": customer, "lines": lines}


def item(sku: str, quantity: str, price: str) -> dict:
    return {"sku": sku, "quantity": quantity, "unit_price": price}


SHIPPING = {"description": "Shipping", "quantity": "1", "unit_price": "7.50"}

# Tenant A's sales: (method, path, body). Each event is applied before the next is sent,
# so ids and cost revisions are deterministic.
HISTORY = [
    ("POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"}),
    ("POST", "/api/v1/products", {"sku": "G-2", "name": "Gadget"}),
    ("POST", "/api/v1/lots", W1_LOT),
    ("POST", "/api/v1/lots", G2_LOT),
    # 10 from L1 at 2.25 + 2 short at WAC 2.25 = 27.00; revenue 12 × 5 + 7.50 = 67.50.
    ("POST", "/api/v1/sales", sale("INV-1", "2026-02-01", "Bob Builder", [item("W-1", "12", "5"), SHIPPING])),
    ("POST", "/api/v1/sales", sale("INV-5", "2026-02-01", "Eve", [item("G-2", "1", "5")])),
    ("POST", "/api/v1/sales", sale("INV-2", "2026-02-02", "Alice Ltd", [item("G-2", "2", "10")])),
    ("POST", "/api/v1/sales", sale("REC-1", "2026-02-03", "bob's bikes", [item("G-2", "1", "6")], "sales_receipt")),
    ("POST", "/api/v1/sales", sale("CM-1", "2026-02-04", "Alice Ltd", [item("G-2", "1", "10")], "credit_memo")),
    (
        "POST",
        "/api/v1/sales",
        sale("INV-3", "2026-02-05", "Carol", [{"description": "Consulting", "quantity": "1", "unit_price": "0"}]),
    ),
    ("POST", "/api/v1/sales", sale("INV-4", "2026-02-06", "Dan", [item("W-1", "1", "5")])),
    ("POST", "/api/v1/sales/INV-4/void", None),
    ("POST", "/api/v1/sales", sale("INV-6", "2026-02-07", "Frank", [item("W-1", "3", "5")])),
    ("POST", "/api/v1/sales", sale("INV-7", "2026-02-08", "Gina", [item("G-2", "1", "5")])),
    ("DELETE", "/api/v1/sales/INV-7", None),
]

# external_id -> (date, status, revenue, cost, margin, margin_pct, shortage), worked out by hand.
EXPECTED = {
    "INV-1": ("2026-02-01", "posted", "67.50", "27.00", "40.50", "60.00", True),
    "INV-5": ("2026-02-01", "posted", "5.00", "4.00", "1.00", "20.00", False),
    "INV-2": ("2026-02-02", "posted", "20.00", "8.00", "12.00", "60.00", False),
    "REC-1": ("2026-02-03", "posted", "6.00", "4.00", "2.00", "33.33", False),
    # A return: revenue -10, cost -(1 × WAC 4.00); margin % of two negatives.
    "CM-1": ("2026-02-04", "posted", "-10.00", "-4.00", "-6.00", "60.00", False),
    "INV-3": ("2026-02-05", "posted", "0.00", "0.00", "0.00", None, False),
    "INV-4": ("2026-02-06", "voided", "0.00", "0.00", "0.00", None, False),
    # 3 short at WAC 2.25 = 6.75.
    "INV-6": ("2026-02-07", "posted", "15.00", "6.75", "8.25", "55.00", True),
    "INV-7": ("2026-02-08", "deleted", "0.00", "0.00", "0.00", None, False),
    # A QuickBooks invoice deleted before any version of it arrived: no date, no lines.
    "QB-9": (None, "deleted", "0.00", "0.00", "0.00", None, False),
}
ALL = set(EXPECTED)


@dataclass
class Dataset:
    tenant_id: uuid.UUID
    headers: dict
    other_headers: dict
    other_sale_id: int
    ids: dict[str, int]  # external_id -> sale id
    event_ids: list[str]


async def _post(client, headers, method: str, path: str, body=None) -> list[str]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == 202, await response.text()
    return (await response.json())["event_ids"]


async def _apply(pool, client, headers, method, path, body=None) -> list[str]:
    event_ids = await _post(client, headers, method, path, body)
    for event_id in event_ids:
        await wait_for(functools.partial(event_applied, pool, event_id))
    return event_ids


@pytest.fixture(scope="module")
async def data(pool, database_url):
    """Tenant A's history and one sale of tenant B, costed by the real pipeline."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    tenant_id, headers = await make_api_tenant(pool, "Acme")
    other_id, other_headers = await make_api_tenant(pool, "Other")
    ingest = await client_for(create_ingest_app(settings_for(database_url, prefix)))
    try:
        async with running_consumer(settings_for(database_url, prefix)) as (_, _, topology):
            event_ids = []
            for method, path, body in HISTORY:
                event_ids += await _apply(pool, ingest, headers, method, path, body)
            await _apply(pool, ingest, other_headers, "POST", "/api/v1/products", {"sku": "Z-9", "name": "Zed"})
            await _apply(
                pool,
                ingest,
                other_headers,
                "POST",
                "/api/v1/sales",
                sale("INV-1", "2026-02-01", "Bob Builder", [item("Z-9", "1", "3")]),
            )
            await broker.delete(topology.costing.channel, topology.names)  # leave nothing on the broker
    finally:
        await ingest.close()
    await CostingService(pool).apply(
        SaleRemoved(
            tenant_id=tenant_id,
            occurred_at=T0,
            source="quickbooks",
            sale_type="invoice",
            external_id="QB-9",
            reason="deleted",
        )
    )
    ids = {
        r["external_id"]: r["id"]
        for r in await pool.fetch("SELECT external_id, id FROM sales WHERE tenant_id = $1", tenant_id)
    }
    other_sale_id = await pool.fetchval("SELECT id FROM sales WHERE tenant_id = $1", other_id)
    return Dataset(tenant_id, headers, other_headers, other_sale_id, ids, event_ids)


@pytest.fixture(scope="module")
async def query(pool, database_url):
    client = await client_for(create_app(settings_for(database_url, "unused")))
    yield client
    await client.close()


async def get(client, headers, path: str, expect: int = 200, /, **params):
    response = await client.get(path, headers=headers, params=params)
    assert response.status == expect, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def sales(query, data, **params) -> list[dict]:
    """All items of a filtered list, walking every page."""
    items, cursor = [], None
    while True:
        page = await get(query, data.headers, "/api/v1/sales", **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


STALE_KEYS = "SELECT count(*) FROM sale_cost_keys_stale WHERE tenant_id = $1"
STALE_KEYS_OF = """
SELECT count(DISTINCT u.id) FROM sale_cost_keys_stale x, unnest(x.sale_ids) u(id)
WHERE x.tenant_id = $1 AND u.id = ANY($2)"""


def external_ids(items) -> set[str]:
    return {i["external_id"] for i in items}


# --- pools ---------------------------------------------------------------------------------


async def test_generic_plans_run_without_parallel_workers(pool, query):
    """A generic plan guesses a LIMIT $n at a tenth of the rows: on the generic pool that
    guess must not buy parallel workers for a page of 50 (services/query/app.py query_dsn)."""
    settings = "SELECT current_setting('plan_cache_mode'), current_setting('max_parallel_workers_per_gather')"
    app = query.server.app
    async with app[GENERIC_POOL].acquire() as conn:
        assert tuple(await conn.fetchrow(settings)) == ("force_generic_plan", "0")
    async with app[READ_POOL].acquire() as conn:
        mode, workers = await conn.fetchrow(settings)
        assert mode == "force_custom_plan"
        assert workers == await pool.fetchval("SHOW max_parallel_workers_per_gather")  # the server's own


# --- list ---------------------------------------------------------------------------------


async def test_list_items_have_the_contract_fields_and_hand_computed_numbers(query, data):
    page = await get(query, data.headers, "/api/v1/sales", limit="500")
    assert page["next_cursor"] is None
    assert external_ids(page["items"]) == ALL
    for i in page["items"]:
        assert list(i) == [
            "id",
            "source",
            "type",
            "external_id",
            "doc_number",
            "date",
            "customer",
            "revenue",
            "cost",
            "margin",
            "margin_pct",
            "status",
            "shortage",
            "updated_at",
        ]
        assert i["id"] == data.ids[i["external_id"]]
        assert i["source"] == ("quickbooks" if i["external_id"] == "QB-9" else "manual")
        assert (
            i["date"],
            i["status"],
            i["revenue"],
            i["cost"],
            i["margin"],
            i["margin_pct"],
            i["shortage"],
        ) == EXPECTED[i["external_id"]], i["external_id"]
    types = {i["external_id"]: i["type"] for i in page["items"]}
    assert (types["CM-1"], types["REC-1"], types["INV-1"]) == ("credit_memo", "sales_receipt", "invoice")
    # Summary over the whole set: 67.50 + 5 + 20 + 6 - 10 + 15 = 103.50; 27 + 4 + 8 + 4 - 4 + 6.75 = 45.75.
    assert page["summary"] == {"count": 10, "revenue": "103.50", "cost": "45.75", "margin": "57.75"}


async def test_default_order_is_date_descending_then_id(query, data):
    items = (await get(query, data.headers, "/api/v1/sales"))["items"]
    keys = [(i["date"] or "", i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    assert items[0]["external_id"] == "INV-7" and items[-1]["external_id"] == "QB-9"  # no date: the oldest


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"from": "2026-02-02", "to": "2026-02-04"}, {"INV-2", "REC-1", "CM-1"}),
        ({"from": "2026-02-05"}, {"INV-3", "INV-4", "INV-6", "INV-7"}),
        ({"to": "2026-02-01"}, {"INV-1", "INV-5"}),
        ({"from": "2026-02-03", "to": "2026-02-03"}, {"REC-1"}),
        ({"from": "2027-01-01"}, set()),
        ({"from": "0001-01-01"}, ALL - {"QB-9"}),  # a sale without a date is in no date range
        ({"to": "9999-12-31"}, ALL - {"QB-9"}),
        ({"from": "0001-01-01", "to": "9999-12-31", "status": "deleted"}, {"INV-7"}),
        ({"customer": "BOB"}, {"INV-1", "REC-1"}),
        ({"customer": "alice"}, {"INV-2", "CM-1"}),
        ({"customer": "'s b"}, {"REC-1"}),
        ({"customer": "%"}, set()),  # literal, not a wildcard
        ({"customer": "_"}, set()),
        ({"status": "posted"}, ALL - {"INV-4", "INV-7", "QB-9"}),
        ({"status": "voided"}, {"INV-4"}),
        ({"status": "deleted"}, {"INV-7", "QB-9"}),
        ({"type": "credit_memo"}, {"CM-1"}),
        ({"type": "sales_receipt"}, {"REC-1"}),
        ({"type": "invoice"}, ALL - {"CM-1", "REC-1"}),
        ({"source": "manual"}, ALL - {"QB-9"}),
        ({"source": "quickbooks"}, {"QB-9"}),
        ({"source": "quickbooks", "status": "deleted", "type": "invoice", "shortage": "false"}, {"QB-9"}),
        ({"external_id": "INV-2"}, {"INV-2"}),
        ({"external_id": "INV"}, set()),
        ({"sku": "W-1"}, {"INV-1", "INV-4", "INV-6"}),
        ({"sku": "G-2"}, {"INV-5", "INV-2", "REC-1", "CM-1", "INV-7"}),
        ({"sku": "Z-9"}, set()),  # tenant B's product
        ({"shortage": "true"}, {"INV-1", "INV-6"}),
        ({"shortage": "false"}, ALL - {"INV-1", "INV-6"}),
        ({"min_margin_pct": "55"}, {"INV-1", "INV-2", "CM-1", "INV-6"}),
        ({"max_margin_pct": "33.34"}, {"INV-5", "REC-1"}),
        ({"min_margin_pct": "33.33", "max_margin_pct": "33.34"}, {"REC-1"}),
        ({"min_margin_pct": "-1000"}, ALL - {"INV-3", "INV-4", "INV-7", "QB-9"}),  # no revenue, no margin %
        ({"min_margin_pct": "6e1", "max_margin_pct": "60"}, {"INV-1", "INV-2", "CM-1"}),
        ({"customer": "alice", "type": "invoice"}, {"INV-2"}),
        ({"sku": "W-1", "status": "posted", "shortage": "true", "from": "2026-02-07"}, {"INV-6"}),
    ],
)
async def test_filters(query, data, params, expected):
    items = await sales(query, data, limit="2", **params)
    assert external_ids(items) == expected
    # The summary (from the rollup or from the rows, depending on the filters) adds up the set.
    summary = (await get(query, data.headers, "/api/v1/sales", limit="1", **params))["summary"]
    revenue, cost = sum(Decimal(i["revenue"]) for i in items), sum(Decimal(i["cost"]) for i in items)
    assert summary == {
        "count": len(items),
        "revenue": f"{revenue:.2f}",
        "cost": f"{cost:.2f}",
        "margin": f"{revenue - cost:.2f}",
    }


async def test_summary_covers_the_filtered_set_not_the_page(query, data):
    page = await get(query, data.headers, "/api/v1/sales", customer="alice", limit="1")
    assert len(page["items"]) == 1 and page["next_cursor"] is not None
    assert page["summary"] == {"count": 2, "revenue": "10.00", "cost": "4.00", "margin": "6.00"}
    empty = await get(query, data.headers, "/api/v1/sales", external_id="nothing")
    assert empty == {
        "items": [],
        "next_cursor": None,
        "summary": {"count": 0, "revenue": "0.00", "cost": "0.00", "margin": "0.00"},
    }


def _sort_value(i: dict, sort: str):
    if sort == "date":
        return i["date"] or ""  # no date sorts as the oldest
    if sort == "margin_pct":
        return Decimal(i["margin_pct"]) if i["margin_pct"] is not None else Decimal("-Infinity")
    return Decimal(i[sort])


@pytest.mark.parametrize("sort", ["date", "revenue", "cost", "margin", "margin_pct"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", ["1", "2", "4"])
async def test_pages_walk_every_sale_once_in_order(query, data, sort, order, limit):
    items = await sales(query, data, sort=sort, order=order, limit=limit)
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == len(ALL)  # no duplicates, no gaps
    keys = [(_sort_value(i, sort), i["id"]) for i in items]
    assert keys == sorted(keys, reverse=order == "desc")  # ties (equal values) by id, same direction


@dataclass
class UnfoldedKeys:
    sales: list[int]
    holder: object  # the connection holding the folder's lock

    async def release(self) -> None:
        await self.holder.execute("SELECT pg_advisory_unlock_all()")


@pytest.fixture
async def unfolded_keys(pool, data):
    """Every other sale of tenant A re-costed in the sort keys' eyes (marked stale, its
    keys scrambled) while the folder is held off; folded afterwards."""
    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1)", rollups.FOLD_LOCK)
        stale = sorted(data.ids.values())[::2]
        await pool.execute(
            "UPDATE sale_cost_keys SET revenue = 0, cost = -1000 * sale_id WHERE sale_id = ANY($1)", stale
        )
        await pool.execute(
            "INSERT INTO sale_cost_keys_stale (tenant_id, sale_ids) VALUES ($1, $2)",
            data.tenant_id,
            stale,
        )
        keys = UnfoldedKeys(stale, holder)
        try:
            yield keys
        finally:
            await keys.release()
    await rollups.fold_all(pool)


@pytest.mark.parametrize("sort", ["cost", "margin", "margin_pct"])
async def test_pages_by_a_cost_key_are_exact_before_the_keys_are_folded(pool, query, data, unfolded_keys, sort):
    for order in ("asc", "desc"):
        for limit in ("1", "3"):
            items = await sales(query, data, sort=sort, order=order, limit=limit)
            assert sorted(i["id"] for i in items) == sorted(data.ids.values())
            keys = [(_sort_value(i, sort), i["id"]) for i in items]
            assert keys == sorted(keys, reverse=order == "desc")
    # Read from the stale marks, not from a fold of them meanwhile.
    assert await pool.fetchval(STALE_KEYS_OF, data.tenant_id, unfolded_keys.sales) == len(unfolded_keys.sales)


async def test_the_folder_brings_stale_keys_up_to_date(pool, data, unfolded_keys):
    assert await rollups.fold_all(pool) == 0  # another folder holds the lock: wait for the next round
    await unfolded_keys.release()
    assert await rollups.fold_all(pool) >= len(unfolded_keys.sales)
    assert await pool.fetchval(STALE_KEYS, data.tenant_id) == 0
    assert (
        await pool.fetch(
            """SELECT s.id FROM sales s LEFT JOIN sale_cost_keys k ON k.sale_id = s.id
                               WHERE s.tenant_id = $1 AND (k.revenue, k.cost) IS DISTINCT FROM (s.revenue, s.cost)""",
            data.tenant_id,
        )
        == []
    )


@pytest.mark.parametrize(
    "sku, expected",
    [("W-1", {"INV-1", "INV-4", "INV-6"}), ("G-2", {"INV-5", "INV-2", "REC-1", "CM-1", "INV-7"}), ("Z-9", set())],
)
async def test_a_sku_list_by_date_pages_through_each_sale_once(query, data, sku, expected):
    """By date with a sku alone the page comes from the sku's lines (a sale with two lines
    of the sku is one row), followed by cursor in both orders and any page size."""
    for order in ("asc", "desc"):
        for limit in ("1", "2", "50"):
            items = await sales(query, data, sku=sku, order=order, limit=limit)
            ids = [i["id"] for i in items]
            assert len(ids) == len(set(ids)) and external_ids(items) == expected
            keys = [(_sort_value(i, "date"), i["id"]) for i in items]
            assert keys == sorted(keys, reverse=order == "desc")


async def test_sort_orders_by_hand(query, data):
    revenue_asc = [i["external_id"] for i in await sales(query, data, sort="revenue", order="asc", limit="3")]
    assert revenue_asc[0] == "CM-1" and revenue_asc[-1] == "INV-1"
    assert set(revenue_asc[1:5]) == {"INV-3", "INV-4", "INV-7", "QB-9"}
    pct_desc = [i["external_id"] for i in await sales(query, data, sort="margin_pct", order="desc", limit="2")]
    three_sixties = sorted(["INV-1", "INV-2", "CM-1"], key=lambda e: data.ids[e], reverse=True)
    assert pct_desc[:5] == [*three_sixties, "INV-6", "REC-1"]
    assert set(pct_desc[-4:]) == {"INV-3", "INV-4", "INV-7", "QB-9"}  # no margin % sorts lowest
    cost_desc = [i["external_id"] for i in await sales(query, data, sort="cost", order="desc", limit="50")]
    assert cost_desc[:3] == ["INV-1", "INV-2", "INV-6"]


async def test_a_cursor_continues_only_its_own_sort(query, data):
    page = await get(query, data.headers, "/api/v1/sales", sort="revenue", limit="2")
    body = await get(query, data.headers, "/api/v1/sales", 400, sort="cost", cursor=page["next_cursor"])
    assert body == {"error": "invalid_cursor", "detail": "invalid cursor"}
    body = await get(query, data.headers, "/api/v1/sales", 400, sort="revenue", order="asc", cursor=page["next_cursor"])
    assert body == {"error": "invalid_cursor", "detail": "invalid cursor"}


# --- detail -------------------------------------------------------------------------------


async def test_sale_detail_numbers_by_hand(query, data):
    sale_ = await get(query, data.headers, f"/api/v1/sales/{data.ids['INV-1']}")
    # 10 @ 2.25 + 2 short at WAC 2.25 = 27.00; margin 67.50 - 27.00 = 40.50, 60.00 % of revenue.
    assert (sale_["revenue"], sale_["cost"], sale_["margin"], sale_["margin_pct"]) == (
        "67.50",
        "27.00",
        "40.50",
        "60.00",
    )
    assert sale_["shortage"] is True and sale_["status"] == "posted" and sale_["customer"] == "Bob Builder"
    widget, shipping = sale_["lines"]
    assert widget == {
        "line_no": 1,
        "sku": "W-1",
        "description": None,
        "kind": "inventory",
        "quantity": "12",
        "revenue": "60.00",
        "cost": "27.00",
        "margin": "33.00",
        "margin_pct": "55.00",
        "shortage_quantity": "2",
        "shortage_cost": "4.50",
        "flags": ["shortage"],
        "allocations": [
            {
                "lot_number": "L1",
                "received_at": "2026-01-05T08:00:00+00:00",
                "quantity": "10",
                "unit_cost": "2.25",
                "cost": "22.50",
            }
        ],
    }
    assert shipping == {
        "line_no": 2,
        "sku": None,
        "description": "Shipping",
        "kind": "non_inventory",
        "quantity": "1",
        "revenue": "7.50",
        "cost": "0.00",
        "margin": "7.50",
        "margin_pct": "100.00",
        "shortage_quantity": "0",
        "shortage_cost": "0.00",
        "flags": ["non_inventory"],
        "allocations": [],
    }
    [version] = sale_["versions"]
    assert (version["version"], version["event_type"], version["applied"], version["note"]) == (
        1,
        "sale.upserted",
        True,
        None,
    )
    assert version["event_id"] in data.event_ids
    assert sale_["cost_revisions"] == []
    list_item = next(
        i
        for i in (await get(query, data.headers, "/api/v1/sales", limit="500"))["items"]
        if i["id"] == data.ids["INV-1"]
    )
    assert {k: sale_[k] for k in list_item} == list_item


async def test_credit_memo_detail_carries_negative_revenue_and_return_cost(query, data):
    sale_ = await get(query, data.headers, f"/api/v1/sales/{data.ids['CM-1']}")
    [line] = sale_["lines"]
    assert (line["quantity"], line["revenue"], line["cost"], line["margin"], line["margin_pct"]) == (
        "1",
        "-10.00",
        "-4.00",
        "-6.00",
        "60.00",
    )
    assert line["allocations"] == []


async def test_voided_sale_is_listed_with_zeros_and_keeps_its_history(query, data):
    sale_ = await get(query, data.headers, f"/api/v1/sales/{data.ids['INV-4']}")
    assert (
        sale_["status"],
        sale_["revenue"],
        sale_["cost"],
        sale_["margin"],
        sale_["margin_pct"],
        sale_["shortage"],
    ) == ("voided", "0.00", "0.00", "0.00", None, False)
    [line] = sale_["lines"]
    assert (line["sku"], line["quantity"], line["revenue"], line["cost"], line["allocations"], line["flags"]) == (
        "W-1",
        "1",
        "0.00",
        "0.00",
        [],
        [],
    )
    assert [(v["version"], v["event_type"], v["applied"], v["note"]) for v in sale_["versions"]] == [
        (1, "sale.upserted", True, None),
        (2, "sale.removed", True, "voided"),
    ]
    # It was costed (1 short at WAC 2.25) before the void released it.
    [revision] = sale_["cost_revisions"]
    assert (revision["line_no"], revision["old_cost"], revision["new_cost"]) == (1, "2.25", "0.00")
    assert "INV-4 voided" in revision["cause"] and revision["event_id"] in data.event_ids
    deleted = await get(query, data.headers, f"/api/v1/sales/{data.ids['INV-7']}")
    assert (deleted["status"], deleted["revenue"], deleted["cost"]) == ("deleted", "0.00", "0.00")
    assert deleted["lines"][0]["allocations"] == []
    assert [v["note"] for v in deleted["versions"]] == [None, "deleted"]


async def test_sale_removed_before_any_version_has_no_date_and_one_version(query, data):
    sale_ = await get(query, data.headers, f"/api/v1/sales/{data.ids['QB-9']}")
    assert (sale_["date"], sale_["status"], sale_["source"], sale_["lines"], sale_["cost_revisions"]) == (
        None,
        "deleted",
        "quickbooks",
        [],
        [],
    )
    assert [(v["version"], v["event_type"], v["applied"], v["note"]) for v in sale_["versions"]] == [
        (None, "sale.removed", True, "deleted")
    ]


async def test_unknown_sale_is_404(query, data):
    body = await get(query, data.headers, "/api/v1/sales/9223372036854775807", 404)
    assert body["error"] == "not_found"


# --- products -----------------------------------------------------------------------------


async def test_product_margins(query, data):
    items = (await get(query, data.headers, "/api/v1/products/margins"))["items"]
    assert items == [
        # INV-1 (12) and INV-6 (3); INV-4 was voided.
        {
            "sku": "W-1",
            "name": "Widget",
            "quantity_sold": "15",
            "quantity_returned": "0",
            "revenue": "75.00",
            "cost": "33.75",
            "margin": "41.25",
            "margin_pct": "55.00",
            "shortage_quantity": "5",
        },
        # INV-5 (1), INV-2 (2), REC-1 (1) sold; CM-1 (1) returned; INV-7 deleted. 9 / 21 = 42.857 %.
        {
            "sku": "G-2",
            "name": "Gadget",
            "quantity_sold": "4",
            "quantity_returned": "1",
            "revenue": "21.00",
            "cost": "12.00",
            "margin": "9.00",
            "margin_pct": "42.86",
            "shortage_quantity": "0",
        },
    ]
    ranged = await get(query, data.headers, "/api/v1/products/margins", **{"from": "2026-02-02", "to": "2026-02-03"})
    assert ranged["items"] == [
        {
            "sku": "G-2",
            "name": "Gadget",
            "quantity_sold": "3",
            "quantity_returned": "0",
            "revenue": "26.00",
            "cost": "12.00",
            "margin": "14.00",
            "margin_pct": "53.85",
            "shortage_quantity": "0",
        }
    ]
    assert (await get(query, data.headers, "/api/v1/products/margins", **{"from": "2030-01-01"}))["items"] == []


@pytest.mark.parametrize(
    ("sort", "asc"),
    [
        ("margin", ["G-2", "W-1"]),
        ("margin_pct", ["G-2", "W-1"]),
        ("revenue", ["G-2", "W-1"]),
        ("cost", ["G-2", "W-1"]),
        ("quantity_sold", ["G-2", "W-1"]),
    ],
)
async def test_product_margins_sort_both_ways(query, data, sort, asc):
    got = await get(query, data.headers, "/api/v1/products/margins", sort=sort, order="asc")
    assert [i["sku"] for i in got["items"]] == asc
    got = await get(query, data.headers, "/api/v1/products/margins", sort=sort, order="desc")
    assert [i["sku"] for i in got["items"]] == asc[::-1]


async def test_product_stock(query, data):
    widget = await get(query, data.headers, "/api/v1/products/W-1/stock")
    # L1 is used up (listed as depleted); INV-1 and INV-6 are 5 short.
    assert {k: v for k, v in widget.items() if k != "lots"} == {
        "sku": "W-1", "name": "Widget", "on_hand": "0", "wac": "2.25", "open_shortage": "5"}  # fmt: skip
    assert [(lot["lot_number"], lot["remaining"], lot["status"]) for lot in widget["lots"]] == [("L1", "0", "depleted")]
    gadget = await get(query, data.headers, "/api/v1/products/G-2/stock")
    assert gadget == {
        "sku": "G-2",
        "name": "Gadget",
        "on_hand": "2",
        "wac": "4.00",
        "open_shortage": "0",
        "lots": [
            {
                "lot_number": "GL1",
                "received_at": "2026-01-02T00:00:00+00:00",
                "quantity": "5",
                "remaining": "1",
                "unit_cost": "4.00",
                "is_return": False,
                "status": "available",
            },
            {
                "lot_number": "RET-manual-CM-1-1",
                "received_at": "2026-02-04T00:00:00+00:00",
                "quantity": "1",
                "remaining": "1",
                "unit_cost": "4.00",
                "is_return": True,
                "status": "available",
            },
        ],
    }
    assert (await get(query, data.headers, "/api/v1/products/NOPE/stock", 404))["error"] == "not_found"


# --- shortages ----------------------------------------------------------------------------


async def test_shortages_oldest_first_paginated(query, data):
    first = await get(query, data.headers, "/api/v1/shortages", limit="1")
    second = await get(query, data.headers, "/api/v1/shortages", limit="1", cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    assert all(item["status"] == "open" and item["since"] and item["resolved_at"] is None for item in first["items"])
    new_fields = ("sale", "quantity_short", "wac_estimate", "status", "since", "resolved_at")
    assert [{k: v for k, v in item.items() if k not in new_fields} for item in first["items"] + second["items"]] == [
        {
            "sale_id": data.ids["INV-1"],
            "external_id": "INV-1",
            "type": "invoice",
            "date": "2026-02-01",
            "customer": "Bob Builder",
            "line_no": 1,
            "sku": "W-1",
            "shortage_quantity": "2",
            "shortage_cost": "4.50",
        },
        {
            "sale_id": data.ids["INV-6"],
            "external_id": "INV-6",
            "type": "invoice",
            "date": "2026-02-07",
            "customer": "Frank",
            "line_no": 1,
            "sku": "W-1",
            "shortage_quantity": "3",
            "shortage_cost": "6.75",
        },
    ]
    assert (await get(query, data.headers, "/api/v1/shortages"))["items"] == first["items"] + second["items"]


# --- events -------------------------------------------------------------------------------


async def test_applied_events(query, data):
    for event_id in data.event_ids[:3]:
        assert await get(query, data.headers, f"/api/v1/events/{event_id}") == {
            "event_id": event_id,
            "status": "applied",
            "error": None,
        }
    await get(query, data.headers, f"/api/v1/events/{uuid.uuid4()}", 404)


async def test_event_is_pending_until_costing_applies_it(pool, query, ingest, api_tenant, database_url, broker_prefix):
    _, headers = api_tenant
    [event_id] = await _post(ingest, headers, "POST", "/api/v1/products", {"sku": "P-1", "name": "Pending"})
    assert await get(query, headers, f"/api/v1/events/{event_id}") == {
        "event_id": event_id,
        "status": "pending",
        "error": None,
    }  # no consumer yet
    async with running_consumer(settings_for(database_url, broker_prefix)):
        await wait_for(lambda: event_applied(pool, event_id))
    assert (await get(query, headers, f"/api/v1/events/{event_id}"))["status"] == "applied"


async def test_dead_lettered_event_reports_its_error_and_applies_after_redrive(pool, query, costing_consumer):
    _, _, topology = costing_consumer
    tenant_id = uuid.uuid4()  # its products cannot be written until the tenant exists
    event = LotReceived(
        tenant_id=tenant_id, occurred_at=T0, sku="W-1", lot_number="L1", quantity=1, unit_cost=1, received_at=T0
    )
    await broker.publish_event(topology.exchange, event)
    await wait_for(lambda: pool.fetchval("SELECT true FROM dead_letters WHERE event_id = $1", event.event_id))
    await pool.execute("INSERT INTO tenants (id, name) VALUES ($1, 'late')", tenant_id)  # the fix
    async with pool.acquire() as conn:
        headers = {"Authorization": f"Bearer {(await create_key(conn, tenant_id)).key}"}
    status = await get(query, headers, f"/api/v1/events/{event.event_id}")
    assert status["status"] == "dead_lettered" and "ForeignKeyViolation" in status["error"]
    _, other_headers = await make_api_tenant(pool, "Nosy")
    await get(query, other_headers, f"/api/v1/events/{event.event_id}", 404)
    await deadletters.redrive(topology, pool, {str(event.event_id)})
    assert (await get(query, headers, f"/api/v1/events/{event.event_id}"))["status"] in ("pending", "applied")
    await wait_for(lambda: event_applied(pool, event.event_id))
    assert await get(query, headers, f"/api/v1/events/{event.event_id}") == {
        "event_id": str(event.event_id),
        "status": "applied",
        "error": None,
    }


# --- bad parameters, isolation, auth ------------------------------------------------------


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/v1/sales", {"from": "2026-13-01"}, "from"),
        ("/api/v1/sales", {"from": "yesterday"}, "from"),
        ("/api/v1/sales", {"from": "20260101"}, "from"),
        ("/api/v1/sales", {"to": "2026-02-30"}, "to"),
        ("/api/v1/sales", {"from": "2026-03-01", "to": "2026-02-01"}, "from"),
        ("/api/v1/sales", {"limit": "0"}, "limit"),
        ("/api/v1/sales", {"limit": "501"}, "limit"),
        ("/api/v1/sales", {"limit": "-1"}, "limit"),
        ("/api/v1/sales", {"limit": "1e3"}, "limit"),
        ("/api/v1/sales", {"limit": "99999999999999999999999999"}, "limit"),
        ("/api/v1/sales", {"limit": "abc"}, "limit"),
        ("/api/v1/sales", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/sales", {"cursor": "!!!"}, "cursor"),
        ("/api/v1/sales", {"cursor": _b64([1, 2])}, "cursor"),
        (
            "/api/v1/sales",
            {"cursor": _b64({"kind": "sales", "sort": "date", "order": "desc", "key": "x", "id": 1})},
            "cursor",
        ),
        (
            "/api/v1/sales",
            {"cursor": _b64({"kind": "sales", "sort": "date", "order": "desc", "key": "2026-01-01", "id": 2**70})},
            "cursor",
        ),
        (
            "/api/v1/sales",
            {
                "sort": "revenue",
                "cursor": _b64({"kind": "sales", "sort": "revenue", "order": "desc", "key": "1e999999", "id": 1}),
            },
            "cursor",
        ),
        ("/api/v1/sales", {"cursor": "x" * 5000}, "cursor"),
        ("/api/v1/sales", {"status": "open"}, "status"),
        ("/api/v1/sales", {"type": "bill"}, "type"),
        ("/api/v1/sales", {"source": "shopify"}, "source"),
        ("/api/v1/sales", {"sort": "customer"}, "sort"),
        ("/api/v1/sales", {"order": "up"}, "order"),
        ("/api/v1/sales", {"shortage": "yes"}, "shortage"),
        ("/api/v1/sales", {"min_margin_pct": "abc"}, "min_margin_pct"),
        ("/api/v1/sales", {"min_margin_pct": "NaN"}, "min_margin_pct"),
        ("/api/v1/sales", {"max_margin_pct": "Infinity"}, "max_margin_pct"),
        ("/api/v1/sales", {"max_margin_pct": "1e400"}, "max_margin_pct"),
        ("/api/v1/sales", {"min_margin_pct": "50", "max_margin_pct": "10"}, "min_margin_pct"),
        ("/api/v1/sales", {"customer": ""}, "customer"),
        ("/api/v1/sales", {"customer": "a\x00b"}, "customer"),
        ("/api/v1/sales", {"sku": "x" * 201}, "sku"),
        ("/api/v1/sales", {"external_id": "\x00"}, "external_id"),
        ("/api/v1/sales", [("limit", "1"), ("limit", "2")], "limit"),
        ("/api/v1/sales/abc", {}, "id"),
        ("/api/v1/sales/0", {}, "id"),
        ("/api/v1/sales/-1", {}, "id"),
        ("/api/v1/sales/1.5", {}, "id"),
        ("/api/v1/sales/99999999999999999999", {}, "id"),
        ("/api/v1/products/margins", {"from": "x"}, "from"),
        ("/api/v1/products/margins", {"from": "2026-02-02", "to": "2026-02-01"}, "from"),
        ("/api/v1/products/margins", {"sort": "name"}, "sort"),
        ("/api/v1/products/margins", {"order": "sideways"}, "order"),
        ("/api/v1/products/a%00b/stock", {}, "sku"),
        ("/api/v1/shortages", {"limit": "0"}, "limit"),
        ("/api/v1/shortages", {"cursor": "bad"}, "cursor"),
        (
            "/api/v1/shortages",
            {"cursor": _b64({"kind": "shortages", "key": ["2026-01-01", "no", "a", "b", "c", 1]})},
            "cursor",
        ),
        ("/api/v1/events/not-a-uuid", {}, "event_id"),
    ],
)
async def test_bad_parameters_are_400_json(query, data, path, params, parameter):
    response = await query.get(path, headers=data.headers, params=params)
    assert response.status == 400, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    if parameter == "cursor":
        assert body == {"error": "invalid_cursor", "detail": "invalid cursor"}
        return
    assert body["error"] == "invalid_parameter"
    assert body["detail"]["parameter"] == parameter and body["detail"]["problem"]


async def test_a_sales_cursor_is_no_shortages_cursor(query, data):
    page = await get(query, data.headers, "/api/v1/sales", limit="1")
    assert (await get(query, data.headers, "/api/v1/shortages", 400, cursor=page["next_cursor"])) == {
        "error": "invalid_cursor",
        "detail": "invalid cursor",
    }


async def test_tenants_are_isolated(query, data):
    other = await get(query, data.other_headers, "/api/v1/sales")
    assert [(i["id"], i["external_id"]) for i in other["items"]] == [(data.other_sale_id, "INV-1")]
    assert other["summary"]["count"] == 1
    for sale_id in data.ids.values():
        assert (await get(query, data.other_headers, f"/api/v1/sales/{sale_id}", 404))["error"] == "not_found"
    await get(query, data.headers, f"/api/v1/sales/{data.other_sale_id}", 404)
    await get(query, data.other_headers, "/api/v1/products/W-1/stock", 404)
    await get(query, data.other_headers, f"/api/v1/events/{data.event_ids[0]}", 404)
    assert [i["sku"] for i in (await get(query, data.other_headers, "/api/v1/products/margins"))["items"]] == ["Z-9"]
    # B's sale has no lot at all: its own shortage, and only that.
    assert [i["sale_id"] for i in (await get(query, data.other_headers, "/api/v1/shortages"))["items"]] == [
        data.other_sale_id
    ]
    assert external_ids(await sales(query, data, customer="bob builder")) == {"INV-1"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer psk_nope_nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sales",
        "/api/v1/sales/1",
        "/api/v1/products/margins",
        "/api/v1/products/W-1/stock",
        "/api/v1/shortages",
        f"/api/v1/events/{uuid.uuid4()}",
    ],
)
async def test_401_without_a_valid_key(query, path, headers):
    body = await get(query, headers, path, 401)
    assert body["error"] == "unauthorized"


async def test_health_metrics_and_openapi(query):
    assert (await get(query, {}, "/healthz"))["status"] == "ok"
    ready = await get(query, {}, "/readyz")
    assert ready == {"status": "ok", "checks": {"database": "ok"}}
    metrics = await query.get("/metrics")
    assert metrics.status == 200 and "query_request_seconds" in await metrics.text()
    page = await query.get("/sales")  # the Sales tab, served by the same app
    assert page.status == 200 and page.content_type == "text/html"
    document = await get(query, {}, "/api/v1/openapi.json")  # public: describes no tenant data
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/api/v1/sales",
        "/api/v1/sales/{id}",
        "/api/v1/products/margins",
        "/api/v1/products/{sku}/stock",
        "/api/v1/shortages",
        "/api/v1/events/{event_id}",
    }


# --- rollups (tests/integration/test_query_rollups.py has the rest) --------------------------


async def test_rollups_equal_the_rows_they_sum(pool, data):
    from tests.integration.test_query_rollups import assert_rollups_exact

    await assert_rollups_exact(pool, data.tenant_id)

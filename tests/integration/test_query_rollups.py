"""The query service's rollups (shared/migrations/0003_query.sql, 0007_query_rollups.sql)
stay exact: every grain (day, month, all time, per customer, per sku, per product),
base plus unfolded deltas, equals a direct aggregate over the sales and lines, under
the costing engine's real writes (shuffled, duplicated, concurrent applies of a history
with edits, backdating, voids, deletes, credit memos, customer and sku changes), while
the folder runs, after a tenant reset, after cascaded deletes and after raw statements
that fire several triggers at once. And the list summary read from them equals the
same summary summed over the matching sales, for random filter combinations."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, timedelta

import pytest

from services.query import rollups, views
from services.query.params import _like_pattern
from services.query.views import SalesQuery
from services.query.views.sales_list import DATE_KEY
from shared.events import SaleUpserted
from tests.conftest import new_tenant
from tests.histories import history

DIMENSIONS = "status, type, source, has_shortage"
SALE_VALUES = "sales, revenue, cost"
PRODUCT_VALUES = "lines, quantity_sold, quantity_returned, revenue, cost, shortage_qty"
DAY = "coalesce(txn_date, '-infinity'::date)"
MONTH = f"date_trunc('month', {DAY}::timestamp)::date"
SALE_DELTA = f"SELECT tenant_id, day, {DIMENSIONS}, sales, revenue, cost FROM sales_totals_delta"
PRODUCT_DELTA = (
    "SELECT tenant_id, day, product_id, lines, quantity_sold, quantity_returned, revenue, cost, "
    "shortage_qty FROM product_totals_delta"
)
NONZERO_SALES = "HAVING sum(sales) <> 0 OR sum(revenue) <> 0 OR sum(cost) <> 0"


def _rolled(keys: str, base: str, delta: str, values: str, having: str) -> str:
    """The rollup at one grain: base rows plus the deltas brought to that grain."""
    sums = ", ".join(f"sum({v})" for v in values.split(", "))
    return f"""
SELECT {keys}, {sums} FROM (
    SELECT {keys}, {values} FROM {base} WHERE tenant_id = $1
    UNION ALL
    SELECT {keys}, {values} FROM ({delta}) d WHERE tenant_id = $1
) t GROUP BY {keys} {having} ORDER BY {keys}"""


def _month_delta(delta: str) -> str:
    return f"SELECT *, date_trunc('month', day::timestamp)::date AS month FROM ({delta}) d0"


SALES_DIRECT = f"""
SELECT {{keys}}, count(*) AS sales, sum(revenue) AS revenue, sum(cost) AS cost
FROM (SELECT *, {DAY} AS day, {MONTH} AS month FROM sales WHERE tenant_id = $1) s
WHERE {{where}} GROUP BY {{keys}} ORDER BY {{keys}}"""
SKU_DIRECT = """
SELECT k.sku, s.status, s.type, s.source, s.has_shortage, count(*) AS sales, sum(s.revenue) AS revenue,
       sum(s.cost) AS cost
FROM sales s JOIN (SELECT DISTINCT sale_id, tenant_id, sku FROM sale_lines WHERE sku IS NOT NULL) k
  ON k.sale_id = s.id AND k.tenant_id = s.tenant_id
WHERE s.tenant_id = $1 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"""
PRODUCTS_DIRECT = """
SELECT {keys}, count(*) AS lines,
       sum(CASE WHEN l.sale_type <> 'credit_memo' THEN l.quantity ELSE 0 END) AS sold,
       sum(CASE WHEN l.sale_type = 'credit_memo' THEN l.quantity ELSE 0 END) AS returned,
       sum(l.revenue) AS revenue, sum(l.cost) AS cost, sum(l.shortage_qty) AS shortage
FROM (SELECT l.*, coalesce(l.txn_date, '-infinity'::date) AS day,
             date_trunc('month', coalesce(l.txn_date, '-infinity'::date)::timestamp)::date AS month
      FROM sale_lines l) l JOIN sales s ON s.id = l.sale_id
WHERE l.tenant_id = $1 AND l.kind = 'inventory' AND l.product_id IS NOT NULL AND s.status = 'posted'
GROUP BY {keys} ORDER BY {keys}"""

#: (what, rollup statement, direct statement), each ordered by its keys
GRAINS = [
    (
        "sales by day",
        _rolled(f"day, {DIMENSIONS}", "sales_totals", SALE_DELTA, SALE_VALUES, NONZERO_SALES),
        SALES_DIRECT.format(keys=f"day, {DIMENSIONS}", where="true"),
    ),
    (
        "sales by month",
        _rolled(f"month, {DIMENSIONS}", "sales_totals_month", _month_delta(SALE_DELTA), SALE_VALUES, NONZERO_SALES),
        SALES_DIRECT.format(keys=f"month, {DIMENSIONS}", where="true"),
    ),
    (
        "sales of all time",
        _rolled(DIMENSIONS, "sales_totals_all", SALE_DELTA, SALE_VALUES, NONZERO_SALES),
        SALES_DIRECT.format(keys=DIMENSIONS, where="true"),
    ),
    (
        "sales by customer",
        _rolled(
            f"customer, {DIMENSIONS}",
            "customer_totals",
            "SELECT * FROM customer_totals_delta",
            SALE_VALUES,
            NONZERO_SALES,
        ),
        SALES_DIRECT.format(keys=f"customer, {DIMENSIONS}", where="customer IS NOT NULL"),
    ),
    (
        "sales by sku",
        _rolled(f"sku, {DIMENSIONS}", "sku_totals", "SELECT * FROM sku_totals_delta", SALE_VALUES, NONZERO_SALES),
        SKU_DIRECT,
    ),
    (
        "products by day",
        _rolled("day, product_id", "product_totals", PRODUCT_DELTA, PRODUCT_VALUES, "HAVING sum(lines) <> 0"),
        PRODUCTS_DIRECT.format(keys="day, l.product_id"),
    ),
    (
        "products by month",
        _rolled(
            "month, product_id",
            "product_totals_month",
            _month_delta(PRODUCT_DELTA),
            PRODUCT_VALUES,
            "HAVING sum(lines) <> 0",
        ),
        PRODUCTS_DIRECT.format(keys="month, l.product_id"),
    ),
]

SALE_SKUS = """
SELECT r.sale_id, r.skus FROM sale_skus r JOIN sales s ON s.id = r.sale_id
WHERE s.tenant_id = $1 AND r.skus <> '{}' ORDER BY 1"""
SALE_SKUS_DIRECT = """
SELECT l.sale_id, array_agg(DISTINCT l.sku ORDER BY l.sku) AS skus
FROM sale_lines l JOIN sales s ON s.id = l.sale_id AND s.tenant_id = l.tenant_id
WHERE s.tenant_id = $1 AND l.sku IS NOT NULL GROUP BY 1 ORDER BY 1"""
UNNAMED_CUSTOMERS = """
SELECT DISTINCT s.customer FROM sales s
WHERE s.tenant_id = $1 AND s.customer IS NOT NULL
  AND s.customer NOT IN (SELECT n.customer FROM customer_names n WHERE n.tenant_id = $1
                         UNION SELECT d.customer FROM customer_totals_delta d WHERE d.tenant_id = $1)"""
# The cost sort keys (0012_sale_cost_keys.sql) are the sales' own revenue and cost,
# except for the sales marked stale, which are still to be folded (0014_cost_keys_folded.sql).
COST_KEYS_ASTRAY = """
SELECT s.id, k.sale_id FROM (SELECT * FROM sales WHERE tenant_id = $1) s
FULL JOIN (SELECT * FROM sale_cost_keys WHERE tenant_id = $1) k ON k.sale_id = s.id
WHERE (k.revenue, k.cost) IS DISTINCT FROM (s.revenue, s.cost)
  AND coalesce(s.id, k.sale_id) NOT IN (SELECT u.id FROM sale_cost_keys_stale x, unnest(x.sale_ids) u(id)
                                        WHERE x.tenant_id = $1)"""
STALE_COST_KEYS = "SELECT count(*) FROM sale_cost_keys_stale WHERE tenant_id = $1"


async def assert_rollups_exact(pool, tenant_id) -> None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        for what, rolled, direct in GRAINS:
            assert [tuple(r) for r in await conn.fetch(rolled, tenant_id)] == [
                tuple(r) for r in await conn.fetch(direct, tenant_id)
            ], what
        assert [tuple(r) for r in await conn.fetch(SALE_SKUS, tenant_id)] == [
            tuple(r) for r in await conn.fetch(SALE_SKUS_DIRECT, tenant_id)
        ]
        assert await conn.fetch(UNNAMED_CUSTOMERS, tenant_id) == []
        assert await conn.fetch(COST_KEYS_ASTRAY, tenant_id) == []


async def assert_rollups_empty(pool, tenant_id) -> None:
    for what, rolled, _direct in GRAINS:
        assert await pool.fetch(rolled, tenant_id) == [], what


def with_customers_and_unmapped(events: list, seed: int) -> list:
    """The history with customers (changing between versions of a sale, some none)
    and some lines naming a sku that is no product (unmapped, still a sku)."""
    rnd = random.Random(seed)
    names = ["Harbor Marine Inc", "harbor marine llc", "Bluewater Co", "Ünïcode Café", None]
    out = []
    for event in events:
        if isinstance(event, SaleUpserted):
            lines = [line.model_copy(update={"sku": "U-1"}) if rnd.random() < 0.1 else line for line in event.lines]
            event = event.model_copy(update={"customer": rnd.choice(names), "lines": lines})
        out.append(event)
    return out


async def costed_tenant(pool, costing, seed: int, sales: int = 60) -> uuid.UUID:
    tenant_id = await new_tenant(pool)
    for event in with_customers_and_unmapped(history(tenant_id, seed=seed, sales=sales), seed):
        await costing.apply(event)
    return tenant_id


@pytest.mark.parametrize("seed", [11, 12])
async def test_rollups_stay_exact_under_concurrent_costing_folding_and_reset(pool, costing, seed):
    """Shuffled, duplicated, concurrent applies of a history with edits, backdating, voids,
    deletes and credit memos, folded while it runs; then a reset of the tenant."""
    tenant_id = await new_tenant(pool)
    events = with_customers_and_unmapped(history(tenant_id, seed=seed, sales=60), seed)
    products = [e for e in events if e.event_type == "product.upserted"]
    rest = [e for e in events if e.event_type != "product.upserted"]
    random.Random(seed).shuffle(rest)
    for event in rest[:10]:  # some sales before their product is defined (unmapped lines)
        await costing.apply(event)
    for event in products:
        await costing.apply(event)

    async def fold_a_few_times():
        for _ in range(5):
            await rollups.fold_all(pool, batch=7)
            await asyncio.sleep(0.01)

    await asyncio.gather(fold_a_few_times(), *(costing.apply(e) for e in rest[10:] + rest[:15]))
    await assert_rollups_exact(pool, tenant_id)
    await rollups.fold_all(pool)
    await assert_rollups_exact(pool, tenant_id)
    for delta in ("sales_totals_delta", "product_totals_delta", "customer_totals_delta", "sku_totals_delta"):
        assert await pool.fetchval(f"SELECT count(*) FROM {delta} WHERE tenant_id = $1", tenant_id) == 0, delta
    assert await pool.fetchval(STALE_COST_KEYS, tenant_id) == 0  # so every sale's keys equal its amounts

    await costing.reset_tenant(tenant_id)  # the rebuild path deletes lines, then sales
    await assert_rollups_exact(pool, tenant_id)
    await assert_rollups_empty(pool, tenant_id)


async def test_a_reset_empties_its_tenants_rollups_only_and_the_triggers_stay_on(pool, costing):
    """The reset deletes the tenant's rollup rows with their delete triggers off for that
    tenant (0029_tenant_reset.sql): another tenant's rollups are untouched, and the
    switch holds only while app.tenant_reset names the tenant the transaction is scoped to."""
    tenant_id = await costed_tenant(pool, costing, seed=21, sales=20)
    other = await costed_tenant(pool, costing, seed=22, sales=20)
    other_rolled = [await pool.fetch(rolled, other) for _, rolled, _ in GRAINS]
    await costing.reset_tenant(tenant_id)
    await assert_rollups_empty(pool, tenant_id)
    assert [await pool.fetch(rolled, other) for _, rolled, _ in GRAINS] == other_rolled
    await assert_rollups_exact(pool, other)

    async def delete_sales(reset: uuid.UUID, count: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1::uuid::text, true)", other)
            await conn.execute("SELECT set_config('app.tenant_reset', $1::uuid::text, true)", reset)
            for table in ("cost_revisions", "sale_versions", "allocations"):
                await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", other)
            await conn.execute("DELETE FROM lots WHERE tenant_id = $1 AND is_return", other)
            await conn.execute(
                "DELETE FROM sales WHERE id IN (SELECT id FROM sales WHERE tenant_id = $1 ORDER BY id LIMIT $2)",
                other,
                count,
            )

    await delete_sales(tenant_id, 4)  # the setting names another tenant: the triggers run
    await assert_rollups_exact(pool, other)
    await delete_sales(other, 4)  # it names this one: they do not (the reset empties the rollups itself)
    with pytest.raises(AssertionError):
        await assert_rollups_exact(pool, other)


async def test_rollups_follow_a_sale_deleted_with_its_lines_by_cascade(pool, costing):
    tenant_id = await costed_tenant(pool, costing, seed=13, sales=12)
    await pool.execute("DELETE FROM cost_revisions WHERE tenant_id = $1", tenant_id)
    await pool.execute("DELETE FROM sale_versions WHERE tenant_id = $1", tenant_id)
    await pool.execute("DELETE FROM allocations WHERE tenant_id = $1", tenant_id)
    await pool.execute("DELETE FROM lots WHERE tenant_id = $1 AND is_return", tenant_id)
    await pool.execute("DELETE FROM sales WHERE id IN (SELECT id FROM sales WHERE tenant_id = $1 LIMIT 5)", tenant_id)
    await assert_rollups_exact(pool, tenant_id)


async def test_sku_rollup_stays_exact_when_one_statement_fires_several_triggers(pool, costing):
    """Raw statements on sale_lines and sales that move skus between lines and sales
    in ways the costing engine may or may not use: an upsert that inserts and updates
    lines of one sale at once (its INSERT and UPDATE triggers each see the whole
    statement's result), skus swapped between lines, a line moved to another sale,
    lines deleted, status and amounts changed, a customer renamed."""
    tenant_id = await costed_tenant(pool, costing, seed=14, sales=16)
    sale, other = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM sales WHERE tenant_id = $1 AND status = 'posted' ORDER BY id LIMIT 2", tenant_id
        )
    ]
    line = "SELECT line_no FROM sale_lines WHERE sale_id = $1 ORDER BY line_no LIMIT 1"
    first = await pool.fetchval(line, sale)
    statements = [
        # the first line becomes sku X; a new line 90 takes the first line's old sku
        (
            """INSERT INTO sale_lines (tenant_id, sale_id, line_no, sku, kind, quantity, gross_revenue, revenue)
            SELECT tenant_id, sale_id, v.line_no, v.sku, 'unmapped', 1, 1, 1
            FROM sale_lines l, (VALUES ($2::int, 'X'), (90, (SELECT sku FROM sale_lines
                                                              WHERE sale_id = $1 AND line_no = $2))) v(line_no, sku)
            WHERE l.sale_id = $1 AND l.line_no = $2
            ON CONFLICT (sale_id, line_no) DO UPDATE SET sku = EXCLUDED.sku""",
            sale,
            first,
        ),
        (
            "UPDATE sale_lines SET sku = CASE WHEN sku = 'X' THEN 'Y' ELSE 'X' END WHERE sale_id = $1 AND $2::int > 0",
            sale,
            1,
        ),
        ("UPDATE sale_lines SET sale_id = $2 WHERE sale_id = $1 AND line_no = 90", sale, other),
        ("UPDATE sale_lines SET sku = NULL WHERE sale_id = $1 AND line_no = $2", other, 90),
        ("UPDATE sales SET status = 'voided', revenue = revenue + 1, cost = 0 WHERE id = $1 AND $2::int > 0", sale, 1),
        (
            "UPDATE sales SET customer = 'Renamed Ltd', has_shortage = NOT has_shortage WHERE id = ANY($1::bigint[])"
            " AND $2::int > 0",
            [sale, other],
            1,
        ),
        ("DELETE FROM sale_lines WHERE sale_id = $1 AND line_no >= $2", sale, first),
    ]
    for sql, *args in statements:
        await pool.execute(sql, *args)
        await assert_rollups_exact(pool, tenant_id)
    await rollups.fold_all(pool)
    await assert_rollups_exact(pool, tenant_id)


def random_filters(rnd: random.Random, first_day: date) -> dict:
    """A random combination of the list filters a rollup may cover (and some it does not)."""
    filters: dict = {}
    if rnd.random() < 0.5:
        a = first_day + timedelta(days=rnd.randint(-40, 70))
        b = a + timedelta(days=rnd.choice([0, 1, 15, 29, 30, 31, 45, 59, 60, 400]))
        kind = rnd.random()
        if kind < 0.4:
            filters["from"], filters["to"] = a, b
        elif kind < 0.6:
            filters["from"] = a
        elif kind < 0.8:
            filters["to"] = b
        else:
            filters["from"], filters["to"] = rnd.choice(
                [(date.min, b), (a, date.max), (date.min, date.max), (a.replace(day=1), b)]
            )
    for name, choices in (
        ("status", ["posted", "voided", "deleted"]),
        ("type", ["invoice", "credit_memo"]),
        ("source", ["manual", "quickbooks"]),
        ("shortage", [True, False]),
    ):
        if rnd.random() < 0.25:
            filters[name] = rnd.choice(choices)
    keyed = rnd.random()
    if keyed < 0.25:
        filters["customer"] = _like_pattern(rnd.choice(["harbor", "Marine", "é", "co", "nobody", "%"]))
    elif keyed < 0.5:
        filters["sku"] = rnd.choice(["A", "B", "U-1", "Z"])
    elif keyed < 0.55:
        filters["min_margin_pct"] = 10
    return filters


@pytest.mark.parametrize("seed", [21, 22])
async def test_summaries_from_rollups_equal_sums_over_the_sales(pool, costing, seed):
    tenant_id = await costed_tenant(pool, costing, seed=seed, sales=48)
    rnd = random.Random(seed)

    async def check(rounds: int) -> None:
        for _ in range(rounds):
            q = SalesQuery(random_filters(rnd, date(2026, 1, 1)))
            names, values = q.ordered_filters()
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                sql, args = views.sales_summary_statement(tenant_id, q)
                rolled = tuple(await conn.fetchrow(sql, *args))
                direct = tuple(await conn.fetchrow(views.direct_summary_sql(names), tenant_id, *values))
            assert rolled == direct, q.filters

    await check(150)  # partly unfolded
    await rollups.fold_all(pool)
    await check(150)


def with_repeated_skus(events: list) -> list:
    """Every third sale of two lines or more has its second line name its first line's sku."""
    out = []
    for n, event in enumerate(events):
        if isinstance(event, SaleUpserted) and n % 3 == 0 and len(event.lines) >= 2 and event.lines[0].sku:
            lines = [event.lines[0], event.lines[1].model_copy(update={"sku": event.lines[0].sku}), *event.lines[2:]]
            event = event.model_copy(update={"lines": lines})
        out.append(event)
    return out


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_a_sku_list_by_date_pages_through_the_sales_with_a_line_of_the_sku(pool, costing, order):
    """The sku page by date comes from the sku's lines (0030_sku_day_index.sql): followed by
    cursor, it is every sale with a line of the sku once, in (date, id) order, also for a
    sale with two lines of the sku and for sales of one date."""
    tenant_id = await new_tenant(pool)
    for event in with_repeated_skus(with_customers_and_unmapped(history(tenant_id, seed=31, sales=60), 31)):
        await costing.apply(event)
    repeated = """SELECT count(*) FROM (SELECT 1 FROM sale_lines WHERE tenant_id = $1 AND sku IS NOT NULL
                  GROUP BY sale_id, sku HAVING count(*) > 1) x"""
    assert await pool.fetchval(repeated, tenant_id) > 0
    direction = order.upper()
    expected_sql = f"""SELECT s.id FROM sales s WHERE s.tenant_id = $1
        AND EXISTS (SELECT 1 FROM sale_lines l WHERE l.sale_id = s.id AND l.sku = $2)
        ORDER BY {DATE_KEY} {direction}, s.id {direction}"""
    skus = [r["sku"] for r in await pool.fetch("SELECT DISTINCT sku FROM sale_lines WHERE tenant_id = $1", tenant_id)]
    for sku in [*(s for s in skus if s is not None), "NO-SUCH-SKU"]:
        expected = [r["id"] for r in await pool.fetch(expected_sql, tenant_id, sku)]
        found: list[int] = []
        after = None
        while True:
            q = SalesQuery({"sku": sku}, order=order, limit=4, after=after)
            statement = views.sales_list_statement(tenant_id, q)
            rows = await pool.fetch(statement.sql, *statement.args)
            page = [r for r in rows[:4] if r["id"] is not None]
            found += [r["id"] for r in page]
            if len(rows) <= 4:
                break
            after = (page[-1]["sort_key"], page[-1]["id"])
        assert found == expected, sku

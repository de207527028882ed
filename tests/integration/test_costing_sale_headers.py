"""A sale's header (version, document number, dates, customer, currency, rate, status)
as the engine stores it: written when the sale is created, replaced by a newer
version only, kept by a stale one, and kept by a removal except for the status."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_reference_model import Facts, line

HEADER = """
SELECT version, doc_number, txn_date, source_created_at, customer, currency, exchange_rate, status
FROM sales WHERE tenant_id = $1 AND external_id = $2"""


def with_header(event, **header):
    return event.model_copy(update=header)


async def stored(pool, tenant_id, external_id: str) -> dict:
    row = await pool.fetchrow(HEADER, tenant_id, external_id)
    assert row is not None, f"no sale {external_id}"
    return dict(row)


def expected(event, status: str = "posted") -> dict:
    return {
        "version": event.version,
        "doc_number": event.doc_number,
        "txn_date": event.txn_date,
        "source_created_at": event.source_created_at,
        "customer": event.customer,
        "currency": event.currency,
        "exchange_rate": event.exchange_rate,
        "status": status,
    }


async def test_a_sale_keeps_the_header_of_its_newest_version(pool, costing, tenant_id) -> None:
    f = Facts(tenant_id)
    assert await costing.apply(f.product()) is True
    v1 = with_header(
        f.sale("INV-1", "2024-02-01", line(1, "1", "10"), version=1),
        doc_number="1001",
        customer="Harbor Marine",
        currency="EUR",
        exchange_rate=Decimal("1.0825"),
    )
    assert await costing.apply(v1) is True
    assert await stored(pool, tenant_id, "INV-1") == expected(v1)

    stale = with_header(
        f.sale("INV-1", "2024-03-01", line(1, "2", "20"), version=0), doc_number="0999", customer="Someone Else"
    )
    assert await costing.apply(stale) is True  # recorded, not applied
    assert await stored(pool, tenant_id, "INV-1") == expected(v1)

    v2 = with_header(
        f.sale("INV-1", "2024-02-03", line(1, "1", "10"), version=2), doc_number="1001-A", customer="Harbor Marine Ltd"
    )
    assert await costing.apply(v2) is True
    assert await stored(pool, tenant_id, "INV-1") == expected(v2)

    assert await costing.apply(f.remove("INV-1", "voided")) is True
    assert await stored(pool, tenant_id, "INV-1") == expected(v2, "voided")


async def test_sales_created_in_one_group_get_their_own_headers(pool, costing, tenant_id) -> None:
    f = Facts(tenant_id)
    assert await costing.apply(f.product()) is True
    events = [
        with_header(
            f.sale(f"INV-{n}", f"2024-02-0{n}", line(1, "1", "10"), version=n),
            doc_number=f"D-{n}",
            customer=f"Customer {n}",
        )
        for n in range(1, 4)
    ]
    removal = f.remove("INV-9", "deleted")  # a sale first heard of by its removal
    assert await costing.apply_group([*events, removal]) == [True] * 4
    for event in events:
        assert await stored(pool, tenant_id, event.external_id) == expected(event)
    gone = await stored(pool, tenant_id, "INV-9")
    assert (gone["status"], gone["version"], gone["doc_number"], gone["customer"]) == ("deleted", None, None, None)

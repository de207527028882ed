"""How the costing consumer cuts prefetched events into transactions (service.groups)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from services.costing.service import groups
from shared.events import LotReceived, ProductUpserted, SaleRemoved, SaleUpserted

T = datetime(2026, 1, 1, tzinfo=UTC)
ACME, OTHER = uuid.uuid4(), uuid.uuid4()


def sale(external_id: str, tenant: uuid.UUID = ACME) -> SaleUpserted:
    return SaleUpserted(
        tenant_id=tenant,
        occurred_at=T,
        source="manual",
        sale_type="invoice",
        external_id=external_id,
        version=1,
        txn_date=date(2026, 1, 1),
        source_created_at=T,
        lines=[],
    )


def void(external_id: str) -> SaleRemoved:
    return SaleRemoved(
        tenant_id=ACME,
        occurred_at=T,
        source="manual",
        sale_type="invoice",
        external_id=external_id,
        version=2,
        reason="voided",
    )


def names(cut) -> list[list[str]]:
    return [[getattr(e, "external_id", None) or e.sku for e in group] for group in cut]


def test_sale_events_of_distinct_sales_form_one_group_up_to_the_limit() -> None:
    events = [sale(str(n)) for n in range(5)]
    assert names(groups(events, 10)) == [["0", "1", "2", "3", "4"]]
    assert names(groups(events, 2)) == [["0", "1"], ["2", "3"], ["4"]]


def test_a_second_event_of_the_same_sale_starts_a_new_group() -> None:
    assert names(groups([sale("1"), sale("2"), void("1"), sale("3")], 10)) == [["1", "2"], ["1", "3"]]


def test_product_and_lot_events_go_alone_and_keep_their_place() -> None:
    product = ProductUpserted(tenant_id=ACME, occurred_at=T, sku="P", name="P", version=1)
    lot = LotReceived(
        tenant_id=ACME,
        occurred_at=T,
        sku="L",
        lot_number="1",
        quantity=Decimal(1),
        unit_cost=Decimal(1),
        received_at=T,
        version=1,
    )
    assert names(groups([sale("1"), product, sale("2"), lot, lot, sale("3")], 10)) == [
        ["1"],
        ["P"],
        ["2"],
        ["L"],
        ["L"],
        ["3"],
    ]


def test_tenants_never_share_a_group() -> None:
    assert names(groups([sale("1"), sale("2", OTHER), sale("3", OTHER)], 10)) == [["1"], ["2", "3"]]

"""The demo organisation (NZD base, 15 % GST): tracked and untracked items and a few sales, created without
webhooks (they happened before any app connected)."""

from __future__ import annotations

from decimal import Decimal

from tools.xero_sim import timefmt
from tools.xero_sim.specs import DocSpec, ItemSpec, LineSpec, OrgSpec
from tools.xero_sim.store import Org, Store

DEMO_TENANT_ID = "fe79f7dd-b7f1-4f3c-9d2c-3b0d2a0f5e11"
GST = Decimal(15)


def demo_org(store: Store) -> Org:
    org = store.create_org(OrgSpec(tenant_id=DEMO_TENANT_ID, name="Demo Company (NZ)", base_currency="NZD"))
    return populate(org)


def populate(org: Org) -> Org:
    for spec in (
        ItemSpec(
            code="W-100",
            name="Widget",
            sale_price=Decimal("12.50"),
            purchase_price=Decimal(5),
            tracked=True,
            quantity_on_hand=Decimal(200),
        ),
        ItemSpec(
            code="W-200",
            name="Widget Pro",
            sale_price=Decimal(25),
            purchase_price=Decimal(11),
            tracked=True,
            quantity_on_hand=Decimal(120),
        ),
        ItemSpec(code="INSTALL", name="Installation", sale_price=Decimal(45)),
    ):
        org.create_item(spec)
    org.create(
        "Invoice",
        DocSpec(
            contact="Ridgeway University",
            date=timefmt.days_ago(20),
            status="AUTHORISED",
            lines=[LineSpec(item_code="W-100", quantity=Decimal(4), unit_amount=Decimal("12.50"), tax_rate=GST)],
        ),
    )
    org.create(
        "Invoice",
        DocSpec(
            contact="Marine Systems",
            date=timefmt.days_ago(12),
            status="PAID",
            line_amount_types="Inclusive",
            lines=[
                LineSpec(
                    item_code="W-200",
                    quantity=Decimal(2),
                    unit_amount=Decimal("28.75"),
                    discount_rate=Decimal(10),
                    tax_rate=GST,
                )
            ],
        ),
    )
    org.create(
        "Invoice",
        DocSpec(
            contact="Boom FM",
            date=timefmt.days_ago(5),
            status="AUTHORISED",
            currency_code="USD",
            currency_rate=Decimal("0.600000"),
            lines=[LineSpec(item_code="W-100", quantity=Decimal(3), unit_amount=Decimal(9))],
        ),
    )
    org.create(
        "BankTransaction",
        DocSpec(
            contact="Cash sale",
            date=timefmt.days_ago(3),
            lines=[LineSpec(item_code="W-100", quantity=Decimal(1), unit_amount=Decimal("14.38"), tax_rate=GST)],
        ),
    )
    return org

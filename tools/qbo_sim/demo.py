"""The demo company: USD home currency, a few inventory items, a service, a non-inventory
shipping charge, a bundle, some customers and a dozen sales over the last 60 days (created
without webhooks: they happened before any app connected)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tools.qbo_sim.specs import ComponentSpec, ItemSpec, LineSpec, TxnSpec
from tools.qbo_sim.store import Company

DEMO_REALM_ID = "9130350000000001"

CUSTOMERS = ("Amy's Bird Sanctuary", "Bill's Windsurf Shop", "Cool Cars", "Diego Rodriguez", "Geeta Kalapatapu")


def populate(company: Company) -> Company:
    company.multicurrency = True  # it has a EUR customer
    items = {}
    for spec in (
        ItemSpec(
            name="Widget",
            sku="W-100",
            type="Inventory",
            unit_price=Decimal("12.50"),
            purchase_cost=Decimal("5.00"),
            qty_on_hand=Decimal(200),
            description="Standard widget",
        ),
        ItemSpec(
            name="Widget Pro",
            sku="W-200",
            type="Inventory",
            unit_price=Decimal("25.00"),
            purchase_cost=Decimal("11.00"),
            qty_on_hand=Decimal(120),
        ),
        ItemSpec(
            name="Gadget",
            sku="G-300",
            type="Inventory",
            unit_price=Decimal("40.00"),
            purchase_cost=Decimal("18.25"),
            qty_on_hand=Decimal(60),
        ),
        ItemSpec(name="Installation", type="Service", unit_price=Decimal("75.00")),
        ItemSpec(name="Shipping", type="NonInventory", unit_price=Decimal("7.50")),
    ):
        record, _ = company.create_item(spec)
        items[spec.sku or spec.name] = record.id
    kit, _ = company.create_item(
        ItemSpec(
            name="Starter Kit",
            sku="KIT-1",
            type="Group",
            description="2 widgets and a gadget",
            components=[
                ComponentSpec(item_id=items["W-100"], qty=Decimal(2)),
                ComponentSpec(item_id=items["G-300"], qty=Decimal(1)),
            ],
        )
    )
    items["KIT-1"] = kit.id

    today = company.today()

    def line(key: str, qty: str, price: str | None = None) -> LineSpec:
        return LineSpec(item_id=items[key], qty=Decimal(qty), unit_price=Decimal(price) if price else None)

    sales: list[tuple[str, int, str, list[LineSpec], dict[str, Any]]] = [
        ("Invoice", 58, CUSTOMERS[0], [line("W-100", "10"), line("Shipping", "1")], {}),
        ("SalesReceipt", 52, CUSTOMERS[3], [line("G-300", "1"), line("Installation", "1")], {}),
        (
            "Invoice",
            45,
            CUSTOMERS[1],
            [
                line("W-200", "4"),
                LineSpec(group_item_id=items["KIT-1"], qty=Decimal(2)),
                LineSpec(description="Rush order"),
            ],
            {},
        ),
        (
            "Invoice",
            38,
            CUSTOMERS[2],
            [
                line("W-100", "6", "12.00"),
                line("W-200", "2"),
                LineSpec(subtotal=True),
                LineSpec(discount_percent=Decimal(10)),
            ],
            {},
        ),
        ("SalesReceipt", 31, CUSTOMERS[4], [line("W-100", "3")], {"tax_rate": Decimal("0.0825")}),
        (
            "Invoice",
            24,
            CUSTOMERS[0],
            [line("G-300", "2"), line("Shipping", "1")],
            {"currency": "EUR", "exchange_rate": Decimal("1.0850")},
        ),
        ("CreditMemo", 20, CUSTOMERS[0], [line("W-100", "2")], {"private_note": "Returned 2 damaged widgets"}),
        (
            "Invoice",
            14,
            CUSTOMERS[1],
            [LineSpec(group_item_id=items["KIT-1"], qty=Decimal(1)), line("Installation", "2")],
            {},
        ),
        ("SalesReceipt", 9, CUSTOMERS[2], [line("W-200", "1"), LineSpec(discount_amount=Decimal("5.00"))], {}),
        ("Invoice", 5, CUSTOMERS[3], [line("W-100", "3.5"), line("G-300", "1")], {}),
        ("Invoice", 2, CUSTOMERS[4], [line("W-200", "2")], {"private_note": "Customer cancelled"}),
    ]
    created = [
        company.create_txn(
            entity, TxnSpec(customer=customer, txn_date=today - timedelta(days=days_ago), lines=lines, **extra)
        )[0]
        for entity, days_ago, customer, lines, extra in sales
    ]
    company.void_txn("Invoice", created[-1].id)  # the cancelled order
    return company

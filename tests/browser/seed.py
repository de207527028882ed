"""Data of the Sales tab's browser tests, written through the real pipeline (ingest API →
outbox → RabbitMQ → costing): two products, three lots, twelve sales (two short, one
voided, a credit memo), an edited sale and a lot cost correction (cost revisions)."""

from __future__ import annotations

from tests.conftest import event_applied, wait_for

NASTY_CUSTOMER = "<b>Dyna</b> & Sons"


async def post(client, headers, method: str, path: str, body=None) -> list[str]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == 202, await response.text()
    return (await response.json())["event_ids"]


def sale(
    reference: str,
    date: str,
    customer: str,
    lines: list[tuple[str, str, str]],
    type_: str = "invoice",
    shipping: str | None = None,
) -> dict:
    body_lines = [{"sku": sku, "quantity": qty, "unit_price": price} for sku, qty, price in lines]
    if shipping is not None:
        body_lines.append({"description": "Shipping", "quantity": "1", "unit_price": shipping})
    return {"reference": reference, "type": type_, "date": date, "customer": customer, "lines": body_lines}


async def seed(pool, ingest, headers) -> None:
    """Two products, three lots, twelve sales (two short, one voided, a credit memo),
    an edited sale and a lot cost correction (cost revisions)."""
    writes = [
        ("POST", "/api/v1/products", {"sku": "W-1", "name": "Widget"}),
        ("POST", "/api/v1/products", {"sku": "G-2", "name": "Gear housing"}),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L1",
                "quantity": "20",
                "unit_cost": "2.25",
                "received_at": "2026-01-05T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "W-1",
                "lot_number": "L2",
                "quantity": "10",
                "unit_cost": "3.10",
                "received_at": "2026-01-20T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/lots",
            {
                "sku": "G-2",
                "lot_number": "G1",
                "quantity": "8",
                "unit_cost": "11.40",
                "received_at": "2026-01-10T08:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/sales",
            sale("INV-1001", "2026-02-02", "Acme Robotics", [("W-1", "6", "5.00")], shipping="7.50"),
        ),
        ("POST", "/api/v1/sales", sale("INV-1002", "2026-02-03", "Bolt & Nut Co", [("W-1", "4", "5.25")])),
        ("POST", "/api/v1/sales", sale("INV-1003", "2026-02-04", "Cogsworth Ltd", [("G-2", "2", "18.50")])),
        ("POST", "/api/v1/sales", sale("INV-1004", "2026-02-05", "Acme Robotics", [("W-1", "8", "4.80")])),
        (
            "POST",
            "/api/v1/sales",
            sale("SR-1005", "2026-02-06", NASTY_CUSTOMER, [("W-1", "5", "5.10")], type_="sales_receipt"),
        ),
        ("POST", "/api/v1/sales", sale("INV-1006", "2026-02-07", "Bolt & Nut Co", [("G-2", "3", "21.00")])),
        ("POST", "/api/v1/sales", sale("INV-1007", "2026-02-09", "Acme Robotics", [("W-1", "2", "5.00")])),
        (
            "POST",
            "/api/v1/sales",
            sale("CM-1008", "2026-02-10", "Cogsworth Ltd", [("W-1", "1", "5.00")], type_="credit_memo"),
        ),
        ("POST", "/api/v1/sales", sale("INV-1009", "2026-02-11", "Acme Robotics", [("G-2", "1", "24.00")])),
        ("POST", "/api/v1/sales", sale("INV-1010", "2026-02-12", "Dyna Parts", [("W-1", "4", "5.40")])),
        (
            "POST",
            "/api/v1/sales",
            sale("INV-1011", "2026-02-14", "Bolt & Nut Co", [("W-1", "9", "5.00")], shipping="12.00"),
        ),  # short
        ("POST", "/api/v1/sales", sale("INV-1012", "2026-02-16", "Cogsworth Ltd", [("G-2", "3", "20.00")])),  # short
        # history: an edit (a second version), a void, and a lot cost correction
        (
            "PUT",
            "/api/v1/sales/INV-1002",
            sale("INV-1002", "2026-02-03", "Bolt & Nut Co", [("W-1", "4", "5.25"), ("G-2", "1", "19.99")]),
        ),
        ("POST", "/api/v1/sales/INV-1007/void", None),
        ("PATCH", "/api/v1/lots/W-1/L1", {"unit_cost": "2.40"}),
    ]
    event_ids = []
    for method, path, body in writes:
        event_ids += await post(ingest, headers, method, path, body)
    for event_id in event_ids:
        await wait_for(lambda event_id=event_id: event_applied(pool, event_id), timeout=60)

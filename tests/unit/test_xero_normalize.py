"""Every document case of tests/fixtures/xero through the Xero normalizer equals its hand-computed
expected lines exactly (README there); the webhook cases through the provider's verifier and parser."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.ingest.channels.mapping import Product
from services.ingest.xero import normalize
from services.ingest.xero.provider import XeroProvider
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
DOCUMENTS = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("webhook_"))
#: The fixtures name Xero's kinds; the engine's sale types are invoice, sales_receipt, credit_memo.
SALE_TYPES = {"invoice": "invoice", "credit_note": "credit_memo", "bank_transaction": "sales_receipt"}
TENANT = uuid.uuid4()


def load(path: Path) -> dict:
    return json.loads(path.read_text(), parse_float=Decimal)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_document_normalizes_to_its_expected_lines(path: Path) -> None:
    case = load(path)
    entity, body, expected = case["entity"], case["body"], case["expected"]
    provider = XeroProvider()
    if expected["event_type"] is None:
        assert not provider.is_sale(entity, body)
        return
    assert provider.is_sale(entity, body)
    event = provider.to_event(TENANT, entity, body, provider.mapper([], {}), 0, None)
    assert event.event_type == expected["event_type"]
    assert event.source == "xero"
    assert event.sale_type == SALE_TYPES[expected["sale_type"]]
    assert event.external_id == normalize.entity_id(entity, body)
    if event.event_type == "sale.removed":
        assert event.reason == expected["reason"]
        return
    got = [(line.kind, line.sku, line.quantity, line.revenue) for line in event.lines]
    want = [(w["kind"], w["sku"], Decimal(w["quantity"]), Decimal(w["revenue"])) for w in expected["lines"]]
    assert got == want


def test_an_explicit_xero_item_code_maps_to_its_product_and_versions_follow_updated_date() -> None:
    case = load(FIXTURES / "invoice_exclusive.json")
    body = case["body"]
    provider = XeroProvider()
    event = provider.to_event(
        TENANT, "Invoice", body, provider.mapper([Product("WIDGET", "Widget", "W-100")], {}), 2, None
    )
    assert event.lines[0].sku == "WIDGET"
    assert event.version == provider.version(body) * normalize.VERSION_STRIDE + 2
    edited = {**body, "UpdatedDateUTC": "/Date(1893456000000+0000)/"}
    assert provider.version(edited) > provider.version(body)


def test_webhook_fixtures_verify_and_parse() -> None:
    two = load(FIXTURES / "webhook_two_tenants.json")
    provider = XeroProvider(Settings.model_construct(xero_webhook_key=two["webhook_key"]))
    raw = two["raw"].encode()
    assert provider.verify_webhook(raw, {"x-xero-signature": two["signature"]})
    assert not provider.verify_webhook(raw + b" ", {"x-xero-signature": two["signature"]})
    delivery = provider.parse_webhook(raw)
    assert not delivery.rejected and not delivery.handshake
    got = [(n.realm_id, n.entity, n.entity_id, n.operation, n.occurred_at) for n in delivery.notifications]
    want = [
        (
            e["tenant_id"],
            {"INVOICE": "Invoice", "CREDITNOTE": "CreditNote"}[e["category"]],
            e["resource_id"],
            e["event_type"].capitalize(),
            datetime.fromisoformat(e["occurred_at"]),
        )
        for e in two["expected"]["notifications"]
    ]
    assert got == want
    assert len({n.dedupe_key for n in delivery.notifications}) == 2
    assert provider.parse_webhook(raw).notifications[0].dedupe_key == delivery.notifications[0].dedupe_key

    itr = load(FIXTURES / "webhook_intent_to_receive.json")
    raw = itr["raw"].encode()
    assert provider.verify_webhook(raw, {"x-xero-signature": itr["signature"]})
    assert not provider.verify_webhook(raw, {"x-xero-signature": itr["bad_signature"]})
    handshake = provider.parse_webhook(raw)
    assert handshake.handshake and handshake.notifications == [] and handshake.rejected == []
    assert not XeroProvider(Settings.model_construct(xero_webhook_key=None)).verify_webhook(
        raw, {"x-xero-signature": itr["signature"]}
    )

"""The Xero fixtures (tests/fixtures/xero) are self-consistent: each line's LineAmount follows Xero's discount
formula (to the cent, half-up), TaxAmount is inside LineAmount for Inclusive and on top for Exclusive, the totals
add up, and the webhook bodies verify against their key. The expected normalized lines are hand-computed (README);
this only guards the payloads against typos. The normalizer's own test belongs to the Xero provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
CASES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("webhook_"))
CENT = Decimal("0.01")


def load(path: Path) -> dict:
    return json.loads(path.read_text(), parse_float=Decimal)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_document_arithmetic(path: Path) -> None:
    body = load(path)["body"]
    lines = body["LineItems"]
    for line in lines:
        gross = Decimal(line["Quantity"]) * Decimal(line["UnitAmount"])
        if "DiscountRate" in line:
            gross = gross * (100 - line["DiscountRate"]) / 100
        gross -= line.get("DiscountAmount", 0)
        assert gross.quantize(CENT, ROUND_HALF_UP) == line["LineAmount"], line
    tax = sum(line["TaxAmount"] for line in lines)
    amounts = sum(line["LineAmount"] for line in lines)
    net = amounts - tax if body["LineAmountTypes"] == "Inclusive" else amounts
    assert (body["SubTotal"], body["TotalTax"], body["Total"]) == (net, tax, net + tax)


@pytest.mark.parametrize("name", ["webhook_two_tenants.json", "webhook_intent_to_receive.json"])
def test_webhook_signatures(name: str) -> None:
    case = json.loads((FIXTURES / name).read_text())
    digest = hmac.new(case["webhook_key"].encode(), case["raw"].encode(), hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == case["signature"]
    assert case.get("bad_signature") != case["signature"]

"""Every payload of the corpus (tests/fixtures/qbo, issue 16) through the channel's pure
parts: sales entities through the normalizer, webhook bodies through
``deliveries.read_delivery``. Expectations were computed by hand (the fixtures' README
says how); numbers are compared as Decimals, exactly."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.ingest.qbo import normalize
from services.ingest.qbo.deliveries import read_delivery
from services.ingest.qbo.mapping import Item, ItemMapper, Product
from services.ingest.qbo.signature import verify

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "qbo"
TENANT = uuid.uuid4()


def load(path: Path) -> dict:
    # As the client reads QuickBooks answers (services/ingest/qbo/client.py): numbers as Decimal.
    return json.loads(path.read_text(), parse_float=Decimal)


CATALOG = load(CORPUS / "_catalog.json")
CASES = sorted(p for p in CORPUS.glob("*.json") if not p.name.startswith("_"))
SALES = [p for p in CASES if "entity" in load(p)]
WEBHOOKS = [p for p in CASES if "entity" not in load(p)]


def mapper_for(case: dict) -> ItemMapper:
    items = {**(case.get("items") or CATALOG["items"]), **case.get("items_extra", {})}
    products = case.get("products", CATALOG["products"])
    return ItemMapper(
        [Product(p["sku"], p["name"], p.get("qbo_item_id")) for p in products],
        {
            i: Item(i, v["name"], v.get("sku"), v.get("type"), fully_qualified_name=v.get("fully_qualified_name"))
            for i, v in items.items()
        },
    )


def normalized(case: dict):
    """What the sync does with an entity (services/ingest/qbo/sync.py): a CDC ``Deleted``
    stub is a deletion; anything else goes through the normalizer."""
    body = case["body"]
    if str(body.get("status", "")).lower() == "deleted":
        return normalize.removed(TENANT, case["entity"], str(body["Id"]))
    return normalize.to_event(TENANT, case["entity"], body, mapper_for(case))


def test_the_corpus_has_every_case_the_issue_names():
    assert len(SALES) >= 20 and len(WEBHOOKS) >= 4
    for path in CASES:
        case = load(path)
        assert case.get("source") and case.get("expected"), path.name


@pytest.mark.parametrize("path", SALES, ids=lambda p: p.stem)
def test_sales_entity_normalizes_to_the_hand_computed_lines(path):
    case = load(path)
    want = case["expected"]
    event = normalized(case)
    assert event.event_type == want["event_type"]
    assert event.sale_type == want["sale_type"]
    assert event.external_id == str(case["body"]["Id"])
    if want["event_type"] == "sale.removed":
        assert event.reason == want["reason"]
        return
    have = [(line.kind, line.sku, line.quantity, line.revenue) for line in event.lines]
    expected = [
        (line["kind"], line["sku"], Decimal(line["quantity"]), Decimal(line["revenue"])) for line in want["lines"]
    ]
    assert have == expected
    assert [line.line_no for line in event.lines] == list(range(1, len(expected) + 1))
    if "exchange_rate" in want:
        assert event.exchange_rate == Decimal(want["exchange_rate"])
        assert event.currency == want["currency"]


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.stem)
def test_webhook_body_reads_to_the_expected_notifications(path):
    case = load(path)
    raw = case["raw"].encode() if "raw" in case else json.dumps(case["webhook"]).encode()
    if "signature" in case:
        assert verify(raw, case["signature"], case["verifier_token"])
    delivery = read_delivery(raw)
    want = case["expected"]
    assert delivery.format == want["format"]
    assert [r.element for r in delivery.rejected] == want["rejected"]
    assert all(r.reason for r in delivery.rejected)
    have = [
        {
            "realm_id": n.realm_id,
            "entity": n.entity,
            "entity_id": n.entity_id,
            "operation": n.operation,
            "occurred_at": n.occurred_at,
            "deleted_id": n.deleted_id,
        }
        for n in delivery.notifications
    ]
    assert have == [{**n, "occurred_at": datetime.fromisoformat(n["occurred_at"])} for n in want["notifications"]]
    assert len({n.dedupe_key for n in delivery.notifications}) == len(delivery.notifications)

"""The QuickBooks channel's pure parts: delivery parsing, signatures, state,
item mapping and normalization, on hand-written entities."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from services.ingest.qbo import normalize
from services.ingest.qbo.deliveries import DeliveryError, parse_delivery
from services.ingest.qbo.mapping import Item, ItemMapper, Product
from services.ingest.qbo.signature import sign, verify
from services.ingest.qbo.state import StateError, browser_matches, digest, make_state, new_secret, read_state
from shared.events import SaleRemoved, SaleUpserted

TENANT = uuid.uuid4()
ITEMS = {
    "1": Item("1", "Widget", "W-1", "Inventory"),
    "2": Item("2", "Gadget", "G-2", "NonInventory"),
    "3": Item("3", "Installation", None, "Service"),
    "4": Item("4", "Sprocket", "S-4", "Inventory"),
    "5": Item("5", "Old widget", "W-OLD", "Inventory", merged_into="1"),
}
PRODUCTS = [Product("W-1", "Widget", None), Product("GADGET", "gadget", None), Product("X-9", "Other", "4")]
MAPPER = ItemMapper(PRODUCTS, ITEMS)


def line(item: str, qty=None, price=None, amount=None, **extra) -> dict:
    detail = {"ItemRef": {"value": item, "name": ITEMS.get(item, Item(item, item, None, None)).name}}
    if qty is not None:
        detail["Qty"] = Decimal(qty)
    if price is not None:
        detail["UnitPrice"] = Decimal(price)
    return {"DetailType": "SalesItemLineDetail", "Amount": Decimal(amount), "SalesItemLineDetail": detail, **extra}


def invoice(lines, **extra) -> dict:
    return {
        "Id": "130",
        "SyncToken": "2",
        "TxnDate": "2026-02-23",
        "DocNumber": "1033",
        "MetaData": {"CreateTime": "2026-02-23T13:41:59-08:00", "LastUpdatedTime": "2026-02-24T07:34:40-08:00"},
        "CustomerRef": {"value": "10", "name": "Geeta"},
        "CurrencyRef": {"value": "USD"},
        "Line": lines,
        "TotalAmt": Decimal(1),
        **extra,
    }


def test_signature_matches_intuits_test_vector_and_rejects_tampering():
    body = (
        b'{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40",'
        b'"operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43",'
        b'"operation":"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}'
    )
    token = "00faeec4-08d0-4996-bb37-698ae19f0149"
    assert sign(body, token) == "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM="
    assert verify(body, "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=", token)
    assert not verify(body.replace(b"40", b"41"), sign(body, token), token)
    assert not verify(body, None, token) and not verify(body, "", token) and not verify(body, sign(body, token), None)


def test_cloudevents_delivery_with_both_void_spellings_and_data_variants():
    events = [
        {
            "specversion": "1.0",
            "id": "e1",
            "type": "qbo.invoice.created.v1",
            "time": "2026-01-01T10:00:00.123456789Z",
            "intuitentityid": "5",
            "intuitaccountid": "R1",
        },
        {
            "specversion": "1.0",
            "id": "e2",
            "type": "qbo.salesreceipt.VOID.v1",
            "intuitentityid": "6",
            "intuitaccountid": "R2",
            "data": {},
        },
        {
            "specversion": "1.0",
            "id": "e3",
            "type": "qbo.creditmemo.voided.v1",
            "intuitentityid": "7",
            "intuitaccountid": "R1",
        },
        {
            "specversion": "1.0",
            "id": "e4",
            "type": "qbo.item.merged.v1",
            "intuitentityid": "1",
            "intuitaccountid": "R1",
            "data": {"deletedid": "5"},
        },
    ]
    parsed = parse_delivery(json.dumps(events).encode())
    assert [(n.realm_id, n.entity, n.entity_id, n.operation) for n in parsed] == [
        ("R1", "Invoice", "5", "Create"),
        ("R2", "SalesReceipt", "6", "Void"),
        ("R1", "CreditMemo", "7", "Void"),
        ("R1", "Item", "1", "Merge"),
    ]
    assert parsed[3].deleted_id == "5" and parsed[0].dedupe_key == "ce:e1"
    assert parsed[0].occurred_at.microsecond == 123456


def test_classic_delivery_dedupe_key_is_stable_and_lenient_about_time_formats():
    body = {
        "eventNotifications": [
            {
                "realmId": "R1",
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Invoice", "id": "9", "operation": "update", "lastUpdated": "2015-10-05T14:42:19-0700"}
                    ]
                },
            }
        ]
    }
    first, again = parse_delivery(json.dumps(body).encode()), parse_delivery(json.dumps(body).encode())
    assert first == again and first[0].operation == "Update"
    assert first[0].occurred_at.utcoffset().total_seconds() == -7 * 3600


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"other": 1}',
        b'[{"id": "x"}]',
        b'[{"specversion": "1.0", "type": "nope"}]',
        b'{"eventNotifications": [{"dataChangeEvent": {}}]}',
    ],
)
def test_unreadable_deliveries_raise(body):
    with pytest.raises(DeliveryError):
        parse_delivery(body)


SECRET = b"s" * 40


def test_oauth_state_round_trip_binds_tenant_nonce_and_browser():
    tenant, nonce, browser = uuid.uuid4(), new_secret(), new_secret()
    state = read_state(make_state(tenant, nonce, digest(browser), SECRET), SECRET)
    assert (state.tenant_id, state.nonce, state.browser_hash) == (tenant, nonce, digest(browser))
    assert browser_matches(state, browser)
    assert not browser_matches(state, new_secret())
    assert not browser_matches(state, None) and not browser_matches(state, "")


def reason(state, secret=SECRET, now=None) -> str:
    with pytest.raises(StateError) as raised:
        read_state(state, secret, now)
    return raised.value.reason


def test_oauth_state_forged_malformed_or_expired_is_refused():
    import base64
    import time

    state = make_state(uuid.uuid4(), new_secret(), digest(new_secret()), SECRET)
    payload, mac = state.split(".")
    assert reason(state, b"o" * 40) == "bad_signature"
    assert reason(payload + "." + "0" * len(mac)) == "bad_signature"
    # the payload edited (another tenant), the old signature kept
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["t"] = str(uuid.uuid4())
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert reason(f"{edited}.{mac}") == "bad_signature"
    assert reason("garbage") == "malformed_state"
    assert reason("a.b.c") == "malformed_state"
    assert reason("x" * 5000 + ".y") == "malformed_state"
    assert reason("") == "missing_state" and reason(None) == "missing_state"
    assert reason(state, now=time.time() + 11 * 60) == "expired_state"  # valid at most 10 minutes
    past = make_state(uuid.uuid4(), new_secret(), digest(new_secret()), SECRET, expires_at=int(time.time()) - 1)
    assert reason(past) == "expired_state"


def test_oauth_state_needs_a_secret():
    with pytest.raises(TypeError):
        make_state(uuid.uuid4(), new_secret(), digest(new_secret()), None)
    with pytest.raises(TypeError):
        read_state("a.b", "text secret")


def test_item_mapping_precedence():
    assert MAPPER.map("4").sku == "X-9"  # explicit qbo_item_id beats the item's own Sku
    assert MAPPER.map("1").sku == "W-1"  # by Sku
    assert MAPPER.map("2").sku == "GADGET"  # by name, case-insensitive
    assert MAPPER.map("5").sku == "W-1"  # merged into item 1
    assert MAPPER.map("3").kind == "service"
    assert MAPPER.map("SHIPPING_ITEM_ID").kind == "shipping"
    assert MAPPER.map("99").kind == "unmapped"  # unknown item
    assert ItemMapper([], ITEMS).map("4").kind == "unmapped" and ItemMapper([], ITEMS).map("4").sku == "S-4"
    assert ItemMapper([], ITEMS).map("2").kind == "non_inventory"


def test_discount_spread_in_proportion_and_foreign_currency():
    body = invoice(
        [
            line("1", 2, 10, 20),
            line("3", 1, 30, 30),
            {"DetailType": "SubTotalLineDetail", "Amount": Decimal(50), "SubTotalLineDetail": {}},
            {"DetailType": "DiscountLineDetail", "Amount": Decimal(5), "DiscountLineDetail": {"PercentBased": False}},
        ],
        CurrencyRef={"value": "EUR"},
        ExchangeRate=Decimal("1.1"),
    )
    event = normalize.to_event(TENANT, "Invoice", body, MAPPER)
    assert isinstance(event, SaleUpserted)
    # discount 5 over 20 and 30: 2 and 3; net 18 and 27; × 1.1 = 19.8 and 29.7
    assert [(sale_line.sku, sale_line.kind, sale_line.quantity, sale_line.revenue) for sale_line in event.lines] == [
        ("W-1", "inventory", Decimal(2), Decimal("19.8")),
        (None, "service", Decimal(1), Decimal("29.7")),
    ]
    assert event.version == 2_000_000 and event.txn_date.isoformat() == "2026-02-23"
    assert event.source_created_at.utcoffset().total_seconds() == -8 * 3600
    assert (event.currency, event.exchange_rate, event.customer) == ("EUR", Decimal("1.1"), "Geeta")


def test_percent_discount_without_amount_and_remainder_on_last_line():
    body = invoice(
        [
            line("1", 1, 10, 10),
            line("1", 1, 10, 10),
            line("1", 1, 10, 10),
            {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}},
        ]
    )
    revenue = [sale_line.revenue for sale_line in normalize.to_event(TENANT, "Invoice", body, MAPPER).lines]
    # 10% of 30 = 3 spread 1/1/1; exact shares, sums to 27
    assert revenue == [Decimal(9), Decimal(9), Decimal(9)]
    body = invoice(
        [line("1", 1, 10, 10)] * 3
        + [{"DetailType": "DiscountLineDetail", "Amount": Decimal(1), "DiscountLineDetail": {}}]
    )
    revenue = [sale_line.revenue for sale_line in normalize.to_event(TENANT, "Invoice", body, MAPPER).lines]
    # 1/3 = 0.333333 (6 places) twice, the remainder 0.333334 on the last line
    assert revenue == [Decimal("9.666667"), Decimal("9.666667"), Decimal("9.666666")]
    assert sum(revenue) == Decimal(29)


def test_bundle_lines_are_unrolled_and_text_lines_ignored():
    group = {
        "DetailType": "GroupLineDetail",
        "Amount": Decimal(0),
        "GroupLineDetail": {
            "GroupItemRef": {"value": "19"},
            "Quantity": 2,
            "Line": [line("1", 4, 5, 20), line("2", 2, 5, 10)],
        },
    }
    body = invoice(
        [
            line("1", 1, 275, 275),
            group,
            {"DetailType": "DescriptionOnly", "Description": "Thanks!", "DescriptionLineDetail": {}},
        ]
    )
    event = normalize.to_event(TENANT, "Invoice", body, MAPPER)
    assert [(sale_line.line_no, sale_line.sku, sale_line.quantity, sale_line.revenue) for sale_line in event.lines] == [
        (1, "W-1", Decimal(1), Decimal(275)),
        (2, "W-1", Decimal(4), Decimal(20)),
        (3, "GADGET", Decimal(2), Decimal(10)),
    ]
    assert normalize.item_ids(body) == ["1", "2"]


def test_tax_inclusive_uses_the_net_amount():
    taxed = line("1", 2, 10, 20)
    taxed["SalesItemLineDetail"]["TaxInclusiveAmt"] = Decimal(22)
    event = normalize.to_event(TENANT, "Invoice", invoice([taxed], GlobalTaxCalculation="TaxInclusive"), MAPPER)
    assert event.lines[0].revenue == Decimal(20)


def test_missing_quantity_and_price():
    lines = [
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": Decimal(30),
            "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "UnitPrice": Decimal(10)},
        },
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": Decimal(15),
            "SalesItemLineDetail": {"ItemRef": {"value": "3"}},
        },
    ]
    event = normalize.to_event(TENANT, "Invoice", invoice(lines), MAPPER)
    assert [sale_line.quantity for sale_line in event.lines] == [Decimal(3), Decimal(1)]


def test_void_is_a_removal_by_operation_or_by_read_back():
    voided = invoice(
        [{"DetailType": "SalesItemLineDetail", "Amount": 0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}],
        TotalAmt=0,
        PrivateNote="Voided - wrong customer",
        SyncToken="3",
    )
    event = normalize.to_event(TENANT, "Invoice", voided, MAPPER)
    assert isinstance(event, SaleRemoved) and event.reason == "voided" and event.version == 3_000_000
    assert isinstance(
        normalize.to_event(TENANT, "Invoice", invoice([line("1", 1, 1, 1)]), MAPPER, 0, "Void"), SaleRemoved
    )
    noted = invoice([line("1", 1, 1, 1)], PrivateNote="Void later?")  # a note alone is no void
    assert isinstance(normalize.to_event(TENANT, "Invoice", noted, MAPPER), SaleUpserted)


def test_remap_sequence_makes_a_newer_version_below_the_next_sync_token():
    assert normalize.version_of("2", 1) > normalize.version_of("2", 0)
    assert normalize.version_of("3", 0) > normalize.version_of("2", 999)


# --- Issue 16 -------------------------------------------------------------------------------


def shipping(amount) -> dict:
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": Decimal(amount),
        "SalesItemLineDetail": {"ItemRef": {"value": "SHIPPING_ITEM_ID"}},
    }


def test_issue16_1_discount_applies_to_the_items_above_it_never_to_shipping():
    body = invoice(
        [
            line("1", 3, 100, 300),
            line("3", 1, 45, 45),
            {"DetailType": "SubTotalLineDetail", "Amount": Decimal(345), "SubTotalLineDetail": {}},
            {
                "DetailType": "DiscountLineDetail",
                "Amount": Decimal("34.50"),
                "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
            },
            shipping("5.00"),
        ]
    )
    lines = normalize.to_event(TENANT, "Invoice", body, MAPPER).lines
    # 34.50 over 300 and 45 only: 30.00 and 4.50; shipping untouched
    assert [(sale_line.kind, sale_line.revenue) for sale_line in lines] == [
        ("inventory", Decimal("270.00")),
        ("service", Decimal("40.50")),
        ("shipping", Decimal("5.00")),
    ]
    assert sum(sale_line.revenue for sale_line in lines[:2]) == Decimal("310.50")
    # A percent discount without an Amount is a percentage of the lines above it, not of shipping.
    del body["Line"][3]["Amount"]
    assert [sale_line.revenue for sale_line in normalize.to_event(TENANT, "Invoice", body, MAPPER).lines] == [
        Decimal("270.00"),
        Decimal("40.50"),
        Decimal("5.00"),
    ]
    # Lines below a discount are not discounted by it (only the ones above).
    body = invoice(
        [
            line("1", 1, 10, 10),
            {"DetailType": "DiscountLineDetail", "Amount": Decimal(1), "DiscountLineDetail": {}},
            line("3", 1, 10, 10),
        ]
    )
    assert [sale_line.revenue for sale_line in normalize.to_event(TENANT, "Invoice", body, MAPPER).lines] == [
        Decimal(9),
        Decimal(10),
    ]


def test_issue16_4_quantities_beyond_six_places_are_rounded_half_even_not_rejected():
    lines = [
        line("1", "1.23456789", "8.1000003", "10.00"),
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": Decimal("10.00"),
            "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "UnitPrice": Decimal(3)},
        },  # 3.333…
        line("1", "0.0000025", "1", "0.01"),
    ]  # a tie: half-even rounds to 0.000002
    event = normalize.to_event(TENANT, "Invoice", invoice(lines), MAPPER)
    assert [sale_line.quantity for sale_line in event.lines] == [
        Decimal("1.234568"),
        Decimal("3.333333"),
        Decimal("0.000002"),
    ]
    assert [sale_line.revenue for sale_line in event.lines] == [
        Decimal("10.00"),
        Decimal("10.00"),
        Decimal("0.01"),
    ]  # from Amount


def test_issue16_5_void_operation_or_marker_is_a_void_even_with_amounts():
    body = invoice([line("1", 2, 10, 20)], TotalAmt=Decimal(20), SyncToken="4")
    assert isinstance(normalize.to_event(TENANT, "Invoice", body, MAPPER, 0, "Void"), SaleRemoved)
    marked = dict(body, status="Voided")  # CDC / XSD marker (docs/quickbooks-api.md §2.1, §2.5)
    assert normalize.is_voided(marked) and isinstance(
        normalize.to_event(TENANT, "Invoice", marked, MAPPER), SaleRemoved
    )
    assert not normalize.is_voided(body)


def test_issue16_6_sub_item_names_match_by_leaf_or_full_name_and_shipping_reads_shipping():
    items = {
        "7": Item("7", "Bolt", None, "Inventory", fully_qualified_name="Hardware:Bolt"),
        "8": Item("8", "Nut", None, "Inventory", fully_qualified_name="Hardware:Nut"),
    }
    mapper = ItemMapper([Product("B-1", "Bolt", None), Product("N-1", "hardware:nut", None)], items)
    assert mapper.map("7", "Hardware:Bolt").sku == "B-1"  # leaf name
    assert mapper.map("8", "Hardware:Nut").sku == "N-1"  # full name
    assert mapper.map("7").sku == "B-1" and mapper.map("8").sku == "N-1"  # the same without the line's name
    # An item not (yet) cached: the line's ItemRef.name is the full path; its leaf matches too.
    bare = ItemMapper([Product("B-1", "Bolt", None)], {})
    assert bare.map("70", "Hardware:Bolt").sku == "B-1"
    event = normalize.to_event(TENANT, "Invoice", invoice([line("1", 1, 10, 10), shipping("4.00")]), MAPPER)
    assert (event.lines[1].kind, event.lines[1].description) == ("shipping", "Shipping")


def test_issue16_3_one_unreadable_element_does_not_reject_the_delivery():
    from services.ingest.qbo.deliveries import read_delivery

    events = [
        {
            "specversion": "1.0",
            "id": "e1",
            "type": "qbo.invoice.created.v1",
            "intuitentityid": "5",
            "intuitaccountid": "R1",
        },
        {"id": "x"},
        {"specversion": "1.0", "id": "e3", "type": "qbo.invoice", "intuitentityid": "6", "intuitaccountid": "R1"},
        {
            "specversion": "1.0",
            "id": "e4",
            "type": "qbo.invoice.updated.v1",
            "intuitentityid": "7",
            "intuitaccountid": "R1",
        },
    ]
    delivery = read_delivery(json.dumps(events).encode())
    assert [n.entity_id for n in delivery.notifications] == ["5", "7"]
    assert [r.element for r in delivery.rejected] == ["1", "2"] and all(r.reason for r in delivery.rejected)
    classic = {
        "eventNotifications": [
            {"dataChangeEvent": {"entities": [{"name": "Invoice", "id": "1", "operation": "Create"}]}},
            {
                "realmId": "R1",
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Invoice", "id": "2", "operation": "Create"},
                        {"name": "Invoice"},
                        {"name": "Invoice", "id": "3", "operation": "Void"},
                    ]
                },
            },
        ]
    }
    delivery = read_delivery(json.dumps(classic).encode())
    assert [n.entity_id for n in delivery.notifications] == ["2", "3"]
    assert [r.element for r in delivery.rejected] == ["0", "1.entities.1"]
    stored = json.loads(delivery.parse_error())
    assert [r["element"] for r in stored] == ["0", "1.entities.1"]
    whole = read_delivery(b"not json")
    assert whole.notifications == [] and whole.rejected[0].element is None


def test_issue16_2_a_cdc_answer_with_a_fault_is_recognised():
    from services.ingest.qbo.client import cdc_fault

    ok = {"CDCResponse": [{"QueryResponse": [{"Invoice": []}]}], "time": "2026-01-01T00:00:00Z"}
    assert cdc_fault(ok) is None
    envelope = {
        "Fault": {"Error": [{"Message": "m", "Detail": "d", "code": "10000"}], "type": "SystemFault"},
        "time": "2026-01-01T00:00:00Z",
    }
    inside = {
        "CDCResponse": [
            {"QueryResponse": [{"Invoice": []}]},
            {"Fault": {"Error": [{"code": "3001", "Message": "x"}], "type": "SERVICE"}},
        ],
        "time": "2026-01-01T00:00:00Z",
    }
    assert "10000" in cdc_fault(envelope) and "3001" in cdc_fault(inside)
    assert cdc_fault({"fault": {"error": [{"code": "3200"}]}, "cdcresponse": []})

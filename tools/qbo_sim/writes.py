"""The QBO write API: request bodies as Intuit's SDKs send them -> simulator specs (docs/quickbooks-api.md §2.5, §2.6).

``POST /v3/company/{realm}/{entity}`` creates (no ``Id``) or updates (``Id`` + current ``SyncToken``;
``"sparse": true`` changes only the fields sent, otherwise the sale is rebuilt from the body);
``?operation=delete`` and ``?operation=void`` (Invoice; SalesReceipt uses
``?operation=update&include=void``) take ``{"Id", "SyncToken"}``. Sales go through the same
spec -> entity path as the control API, so QBO computes every amount: the client's ``TotalAmt``,
``Balance``, group-line ``Amount`` and the like are ignored. The python-quickbooks defaults for
unset fields (``""``, ``Qty: 0`` with ``UnitPrice: 0``, ``TaxInclusiveAmt: 0``) mean "not given".
Items: create/update (Type ``Group`` is refused: bundles are made in the QBO UI, §6); an item is
"deleted" by ``Active: false``. Customers: create/update (``DisplayName`` unique).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from tools.qbo_sim.specs import CustomerSpec, ItemPatch, ItemSpec, LineSpec, LinkedTxnSpec
from tools.qbo_sim.store import Company


class WriteError(Exception):
    """A request body QBO would refuse: Fault ``code`` / ``message`` / ``detail``."""

    def __init__(self, code: str, message: str, detail: str, element: str = ""):
        super().__init__(detail)
        self.code, self.message, self.detail, self.element = code, message, detail, element


def missing(field: str) -> WriteError:
    return WriteError(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {field} is missing in the request",
        field,
    )


def _given(value: Any) -> bool:
    return value not in (None, "", [], {})


def _dec(value: Any, field: str) -> Decimal | None:
    if not _given(value):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise WriteError(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{field} has an invalid value {value!r}",
            field,
        ) from exc
    if not number.is_finite():
        raise WriteError("2010", "Request has invalid or unsupported property", f"{field} must be finite", field)
    return number


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and _given(value.get("value")):
        return str(value["value"])
    return None


def line_spec(line: dict[str, Any], tax_inclusive: bool, rate: Decimal) -> LineSpec:
    if not isinstance(line, dict):
        raise WriteError("2010", "Request has invalid or unsupported property", "Line must be an object", "Line")
    kind = line.get("DetailType")
    amount = _dec(line.get("Amount"), "Amount")
    description = line.get("Description") or None
    if kind == "SalesItemLineDetail":
        detail = line.get("SalesItemLineDetail") or {}
        item = _ref(detail.get("ItemRef"))
        if item is None:
            raise missing("ItemRef")
        qty, price = _dec(detail.get("Qty"), "Qty"), _dec(detail.get("UnitPrice"), "UnitPrice")
        if not qty and not price:  # python-quickbooks sends Qty 0 / UnitPrice 0 for "not set"
            qty = price = None
        inclusive = _dec(detail.get("TaxInclusiveAmt"), "TaxInclusiveAmt")
        if tax_inclusive and inclusive:
            amount = inclusive
            price = price * (1 + rate) if price is not None else None
        return LineSpec(item_id=item, qty=qty, unit_price=price, amount=amount, description=description)
    if kind == "GroupLineDetail":
        detail = line.get("GroupLineDetail") or {}
        group = _ref(detail.get("GroupItemRef"))
        if group is None:
            raise missing("GroupItemRef")
        inner = [line_spec(member, tax_inclusive, rate) for member in detail.get("Line") or []]
        return LineSpec(
            group_item_id=group,
            qty=_dec(detail.get("Quantity"), "Quantity"),
            lines=inner or None,
            description=description,
        )
    if kind == "DiscountLineDetail":
        detail = line.get("DiscountLineDetail") or {}
        percent = _dec(detail.get("DiscountPercent"), "DiscountPercent")
        if detail.get("PercentBased") and percent is not None:
            return LineSpec(discount_percent=percent)
        return LineSpec(discount_amount=amount or Decimal(0))
    if kind == "SubTotalLineDetail":
        return LineSpec(subtotal=True)
    if kind == "DescriptionOnly":
        return LineSpec(description=description or "")
    raise WriteError(
        "2170", "Invalid Enumeration", f"Invalid Enumeration : {kind} for Line.DetailType", "Line.DetailType"
    )


def txn_fields(entity: str, body: dict[str, Any], company: Company, creating: bool) -> dict[str, Any]:
    """The TxnSpec fields a sales-form body gives (only those present)."""
    fields: dict[str, Any] = {}
    customer = _ref(body.get("CustomerRef"))
    if customer is not None:
        fields["customer"] = company.customer_state(customer).display_name
    elif creating and entity in ("Invoice", "CreditMemo"):
        raise missing("CustomerRef")
    for key, name in (("TxnDate", "txn_date"), ("DocNumber", "doc_number")):
        if _given(body.get(key)):
            fields[name] = body[key]
    if "PrivateNote" in body and (body["PrivateNote"] or not creating):
        fields["private_note"] = body["PrivateNote"] or None
    currency = _ref(body.get("CurrencyRef"))
    if currency is not None:
        fields["currency"] = currency
        rate = _dec(body.get("ExchangeRate"), "ExchangeRate")
        if rate is not None:
            fields["exchange_rate"] = rate
    if _given(body.get("GlobalTaxCalculation")):
        if body["GlobalTaxCalculation"] not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
            raise WriteError(
                "2170",
                "Invalid Enumeration",
                f"Invalid Enumeration : {body['GlobalTaxCalculation']}",
                "GlobalTaxCalculation",
            )
        fields["tax"] = body["GlobalTaxCalculation"]
    tax_detail = body.get("TxnTaxDetail")
    if isinstance(tax_detail, dict):
        percent = None
        for tax_line in tax_detail.get("TaxLine") or []:
            percent = _dec((tax_line.get("TaxLineDetail") or {}).get("TaxPercent"), "TaxPercent")
            if percent is not None:
                break
        fields["tax_rate"] = (percent or Decimal(0)) / 100
    if "Line" in body:
        if not isinstance(body["Line"], list):
            raise WriteError("2010", "Request has invalid or unsupported property", "Line must be a list", "Line")
        tax_inclusive = fields.get("tax") == "TaxInclusive"
        rate = fields.get("tax_rate", Decimal(0))
        fields["lines"] = [line_spec(line, tax_inclusive, rate) for line in body["Line"]]
    elif creating:
        raise missing("Line")
    if creating and not fields.get("lines"):
        raise missing("Line")
    if "LinkedTxn" in body:
        links = []
        for link in body.get("LinkedTxn") or []:
            if not isinstance(link, dict) or not _given(link.get("TxnId")) or not _given(link.get("TxnType")):
                raise missing("LinkedTxn.TxnId")
            line_id = link.get("TxnLineId")
            links.append(
                LinkedTxnSpec(
                    TxnId=str(link["TxnId"]),
                    TxnType=str(link["TxnType"]),
                    TxnLineId=str(line_id) if _given(line_id) else None,
                )
            )
        fields["linked_txn"] = links
    return fields


_ITEM_FIELDS = (
    ("Sku", "sku"),
    ("UnitPrice", "unit_price"),
    ("PurchaseCost", "purchase_cost"),
    ("Description", "description"),
    ("QtyOnHand", "qty_on_hand"),
)


def item_spec(body: dict[str, Any]) -> ItemSpec:
    if not _given(body.get("Name")):
        raise missing("Name")
    item_type = body.get("Type")
    if not _given(item_type):
        raise missing("Type")
    if item_type == "Group":
        raise WriteError(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: Bundles (Type Group) can only be created in QuickBooks",
            "Type",
        )
    if item_type not in ("Inventory", "NonInventory", "Service"):
        raise WriteError("2170", "Invalid Enumeration", f"Invalid Enumeration : {item_type}", "Type")
    values = {name: body[key] for key, name in _ITEM_FIELDS if _given(body.get(key))}
    return ItemSpec(name=str(body["Name"]), type=item_type, **values)


def item_patch(body: dict[str, Any], current_name: str) -> ItemPatch:
    values: dict[str, Any] = {name: body[key] for key, name in _ITEM_FIELDS if key in body}
    for key in ("Sku", "Description"):
        if key in values and values[key] == "":
            values[key] = None
    if _given(body.get("Name")) and body["Name"] != current_name:
        values["name"] = body["Name"]
    if isinstance(body.get("Active"), bool):
        values["active"] = body["Active"]
    return ItemPatch(**values)


def _display_name(body: dict[str, Any]) -> str | None:
    if _given(body.get("DisplayName")):
        return str(body["DisplayName"])
    names = " ".join(str(body[k]) for k in ("GivenName", "FamilyName") if _given(body.get(k)))
    return names or (str(body["CompanyName"]) if _given(body.get("CompanyName")) else None)


def customer_spec(body: dict[str, Any]) -> CustomerSpec:
    name = _display_name(body)
    if name is None:
        raise missing("DisplayName")
    return CustomerSpec(display_name=name, **customer_changes(body))


def customer_changes(body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, name in (("GivenName", "given_name"), ("FamilyName", "family_name"), ("CompanyName", "company_name")):
        if key in body:
            changes[name] = body[key] or None
    if "PrimaryEmailAddr" in body:
        changes["email"] = (body["PrimaryEmailAddr"] or {}).get("Address") or None
    if isinstance(body.get("Active"), bool):
        changes["active"] = body["Active"]
    return changes

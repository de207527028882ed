"""QBO JSON shapes (docs/quickbooks-api.md §2, §6) built from control-API specs.

Bodies hold the entity fields *without* ``Id``/``SyncToken``/``MetaData`` (``store.Record``
adds those). Empty fields are omitted, as QBO does. Amounts are ``Decimal``.

Choices where docs/quickbooks-api.md is unsure ([U]/[C3]), made once here:

- **TaxInclusive** (§2.2, §2.4): ``SalesItemLineDetail.TaxInclusiveAmt`` is the line total including
  tax (= qty × entered price); line ``Amount`` is the tax-exclusive figure
  (``TaxInclusiveAmt / (1 + rate)`` rounded to cents) and ``UnitPrice`` is tax-exclusive
  (7 decimal places). ``TotalTax`` = Σ (TaxInclusiveAmt − Amount).
- **TaxExcluded**: ``TotalTax`` = rate × Σ line Amount, rounded to cents; tax is computed before the
  discount (``ApplyTaxAfterDiscount: false``). Discount amounts are tax-exclusive in both modes.
  ``TotalAmt`` = Σ item Amount − discount + TotalTax.
- Tax codes are the US style ``TAX``/``NON``; ``GlobalTaxCalculation`` is always present.
- **Bundles**: the ``GroupLineDetail`` line's ``Amount`` is the sum of its inner lines (as in the
  §2.3 example), whatever amount a client sends for it (python-quickbooks sends ``0``); inner ``Qty``
  is the quantity on the invoice (component × bundle quantity); without inner lines the bundle's
  components are unrolled at their prices.
- **Shipping** (§2.4a): a ``SalesItemLineDetail`` line with ``ItemRef`` ``SHIPPING_ITEM_ID`` (no
  ``ItemAccountRef``, ``TaxCodeRef`` ``NON``, no ``Id``/``LineNum``), always after the subtotal and
  discount lines; not discounted, not taxed, added to ``TotalAmt``.
- ``LinkedTxn`` is always present on sales forms (``[]`` when unlinked), as QBO renders it.
- Every sales form ends with QBO's automatic ``SubTotalLineDetail`` line unless the spec placed one;
  subtotal and discount lines carry no ``Id``/``LineNum`` (§2.3 example).
- **Void** (§2.5): every ``Amount`` (and ``TaxInclusiveAmt``) becomes 0, ``Qty``/``UnitPrice`` and the
  bundle ``Quantity`` are dropped, totals/balances/tax are 0 (``TaxLine`` dropped), ``PrivateNote``
  becomes ``"Voided"`` or ``"Voided - <old note>"``; ``ItemRef``/``TaxCodeRef``/``TxnDate``/
  ``DocNumber``/``ExchangeRate`` are kept.
- Multicurrency companies (made so by the first foreign-currency sale, or at creation) carry
  ``ExchangeRate`` and ``HomeTotalAmt`` on every sale from then on; others carry neither.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tools.qbo_sim.specs import SHIPPING_ITEM_ID, LineSpec, TxnSpec

CENT = Decimal("0.01")
ZERO = Decimal(0)
PRICE_PLACES = Decimal("1e-7")

#: URL segment -> entity name.
ENTITY_NAMES = {
    "invoice": "Invoice",
    "salesreceipt": "SalesReceipt",
    "creditmemo": "CreditMemo",
    "item": "Item",
    "customer": "Customer",
}
SALES_ENTITIES = ("Invoice", "SalesReceipt", "CreditMemo")

_CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
    "JPY": "Japanese Yen",
    "CHF": "Swiss Franc",
    "MXN": "Mexican Peso",
    "NZD": "New Zealand Dollar",
    "INR": "Indian Rupee",
    "SEK": "Swedish Krona",
    "DKK": "Danish Krone",
}
_INCOME = {
    "Inventory": ("79", "Sales of Product Income"),
    "NonInventory": ("79", "Sales of Product Income"),
    "Service": ("1", "Services"),
    "Group": ("79", "Sales of Product Income"),
}
_DISCOUNT_ACCOUNT = {"value": "86", "name": "Discounts given"}


class SpecError(ValueError):
    """A control-API body that cannot become an entity (unknown item, missing rate…)."""


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def currency_name(code: str) -> str:
    if code in _CURRENCY_NAMES:
        return _CURRENCY_NAMES[code]
    try:
        import pycountry

        found = pycountry.currencies.get(alpha_3=code)
    except (ImportError, LookupError):
        found = None
    return found.name if found else code


def _number(value: Decimal) -> Decimal:
    """Quantities and rates as written (``2`` not ``2.000``)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


@dataclass
class ItemState:
    id: str
    name: str
    type: str
    sku: str | None = None
    unit_price: Decimal | None = None
    purchase_cost: Decimal | None = None
    description: str | None = None
    qty_on_hand: Decimal | None = None
    active: bool = True
    inv_start_date: date | None = None
    components: list[tuple[str, Decimal]] = field(default_factory=list)
    deleted_suffix: bool = False

    @property
    def display_name(self) -> str:
        return f"{self.name} (deleted)" if self.deleted_suffix else self.name

    def ref(self) -> dict[str, Any]:
        return {"value": self.id, "name": self.display_name}


def item_body(item: ItemState, lookup: Callable[[str], ItemState]) -> dict[str, Any]:
    body: dict[str, Any] = {"Name": item.display_name}
    if item.description:
        body["Description"] = item.description
    body["Active"] = item.active
    body["FullyQualifiedName"] = item.display_name
    if item.type != "Group":
        body["Taxable"] = True
        body["UnitPrice"] = item.unit_price if item.unit_price is not None else ZERO
    body["Type"] = item.type
    if item.sku:
        body["Sku"] = item.sku
    account_id, account_name = _INCOME[item.type]
    if item.type != "Group":
        body["IncomeAccountRef"] = {"value": account_id, "name": account_name}
    if item.purchase_cost is not None:
        body["PurchaseCost"] = item.purchase_cost
    if item.type == "Inventory":
        body["ExpenseAccountRef"] = {"value": "80", "name": "Cost of Goods Sold"}
        body["AssetAccountRef"] = {"value": "81", "name": "Inventory Asset"}
        body["TrackQtyOnHand"] = True
        body["QtyOnHand"] = item.qty_on_hand if item.qty_on_hand is not None else ZERO
        if item.inv_start_date:
            body["InvStartDate"] = item.inv_start_date.isoformat()
    elif item.type in ("NonInventory", "Service"):
        body["TrackQtyOnHand"] = False
    if item.type == "Group":
        body["PrintGroupedItems"] = False
        body["ItemGroupDetail"] = {
            "ItemGroupLine": [
                {"ItemRef": {**lookup(member).ref(), "type": "Item"}, "Qty": _number(qty)}
                for member, qty in item.components
            ]
        }
    return body


@dataclass
class Context:
    """What a sale needs from its company."""

    item: Callable[[str | None, str | None], ItemState]  # (item_id, sku) -> item, SpecError if unknown
    customer_ref: dict[str, Any]
    doc_number: str
    home_currency: str
    multicurrency: bool
    today: date


class _Lines:
    def __init__(self, spec: TxnSpec, ctx: Context):
        self.ctx = ctx
        self.mode = spec.tax
        self.rate = spec.tax_rate if spec.tax != "NotApplicable" else ZERO
        self.next_id = 1
        self.net = ZERO
        self.tax_inclusive_tax = ZERO
        self.discount = ZERO
        self.shipping = ZERO
        self.shipping_lines: list[dict[str, Any]] = []
        self.saw_subtotal = False

    def _ids(self, line: dict[str, Any]) -> dict[str, Any]:
        line_id = self.next_id
        self.next_id += 1
        return {"Id": str(line_id), "LineNum": line_id, **line}

    def item_line(self, spec: LineSpec) -> dict[str, Any]:
        item = self.ctx.item(spec.item_id, spec.sku)
        if item.type == "Group":
            raise SpecError(f"item {item.id} is a bundle; use group_item_id")
        detail: dict[str, Any] = {"ItemRef": item.ref()}
        # Priced (Qty and UnitPrice on the line) unless only an amount is given.
        qty: Decimal | None = None
        price: Decimal | None = None
        if spec.amount is None or spec.qty is not None or spec.unit_price is not None:
            qty = spec.qty if spec.qty is not None else Decimal(1)
            price = spec.unit_price if spec.unit_price is not None else (item.unit_price or ZERO)
            entered = money(qty * price) if spec.amount is None else money(spec.amount)
        else:
            entered = money(spec.amount)
        if self.mode == "TaxInclusive":
            amount = money(entered / (1 + self.rate))
            detail["TaxInclusiveAmt"] = entered
            self.tax_inclusive_tax += entered - amount
            if price is not None:
                price = (price / (1 + self.rate)).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
        else:
            amount = entered
        if qty is not None and price is not None:
            detail["UnitPrice"] = _number(price)
            detail["Qty"] = _number(qty)
        account_id, account_name = _INCOME[item.type]
        detail["ItemAccountRef"] = {"value": account_id, "name": account_name}
        detail["TaxCodeRef"] = {"value": "TAX" if self.rate > 0 else "NON"}
        self.net += amount
        line = {
            "Description": spec.description or item.description or item.name,
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": detail,
        }
        return line

    def group_line(self, spec: LineSpec) -> dict[str, Any]:
        group = self.ctx.item(spec.group_item_id, None)
        if group.type != "Group":
            raise SpecError(f"item {group.id} is not a bundle (Type {group.type})")
        quantity = spec.qty if spec.qty is not None else Decimal(1)
        members = spec.lines
        if members is None:
            members = [LineSpec(item_id=member, qty=qty * quantity) for member, qty in group.components]
        head = self._ids({})
        start = self.net
        inner = [self._ids(self.item_line(member)) for member in members]
        detail = {"GroupItemRef": group.ref(), "Quantity": _number(quantity), "Line": inner}
        return {
            **head,
            "Description": spec.description or group.description or group.name,
            "Amount": self.net - start,
            "DetailType": "GroupLineDetail",
            "GroupLineDetail": detail,
        }

    def shipping_line(self, spec: LineSpec) -> dict[str, Any]:
        detail: dict[str, Any] = {"ItemRef": {"value": SHIPPING_ITEM_ID}}
        if spec.amount is not None:
            amount = money(spec.amount)
        else:
            qty = spec.qty if spec.qty is not None else Decimal(1)
            amount = money(qty * (spec.unit_price or ZERO))
        if spec.qty is not None and spec.unit_price is not None:
            detail["UnitPrice"] = _number(spec.unit_price)
            detail["Qty"] = _number(spec.qty)
        detail["TaxCodeRef"] = {"value": "NON"}
        self.shipping += amount
        line = {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
        if spec.description:
            line = {"Description": spec.description, **line}
        return line

    def discount_line(self, spec: LineSpec) -> dict[str, Any]:
        if spec.discount_percent is not None:
            amount = money(self.net * spec.discount_percent / 100)
            detail = {"PercentBased": True, "DiscountPercent": _number(spec.discount_percent)}
        elif spec.discount_amount is not None:
            amount = money(spec.discount_amount)
            detail = {"PercentBased": False}
        else:
            raise SpecError("a discount line needs discount_percent or discount_amount")
        self.discount += amount
        return {
            "Amount": amount,
            "DetailType": "DiscountLineDetail",
            "DiscountLineDetail": {**detail, "DiscountAccountRef": dict(_DISCOUNT_ACCOUNT)},
        }

    def build(self, specs: list[LineSpec]) -> list[dict[str, Any]]:
        lines = []
        for spec in specs:
            kind = spec.kind
            if kind == "item":
                lines.append(self._ids(self.item_line(spec)))
            elif kind == "group":
                lines.append(self.group_line(spec))
            elif kind == "shipping":
                self.shipping_lines.append(self.shipping_line(spec))
            elif kind == "discount":
                lines.append(self.discount_line(spec))
            elif kind == "subtotal":
                self.saw_subtotal = True
                lines.append({"Amount": self.net, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
            else:
                lines.append(
                    self._ids(
                        {"Description": spec.description, "DetailType": "DescriptionOnly", "DescriptionLineDetail": {}}
                    )
                )
        if not self.saw_subtotal:
            lines.append({"Amount": self.net, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return lines + self.shipping_lines

    def total_tax(self) -> Decimal:
        if self.mode == "TaxInclusive":
            return self.tax_inclusive_tax
        return money(self.net * self.rate)


def build_transaction(entity: str, spec: TxnSpec, ctx: Context) -> tuple[dict[str, Any], bool]:
    """The body of a sale and whether it is in a foreign currency."""
    currency = (spec.currency or ctx.home_currency).upper()
    foreign = currency != ctx.home_currency
    rate = Decimal(1)
    if foreign:
        if spec.exchange_rate is None:
            raise SpecError(f"exchange_rate is required for {currency} in a {ctx.home_currency} company")
        rate = spec.exchange_rate
    if spec.tax == "TaxInclusive" and spec.tax_rate <= -1:
        raise SpecError("tax_rate must be greater than -1")
    builder = _Lines(spec, ctx)
    lines = builder.build(spec.lines)
    tax = builder.total_tax()
    total = builder.net - builder.discount + tax + builder.shipping
    txn_date = spec.txn_date or ctx.today

    body: dict[str, Any] = {
        "DocNumber": ctx.doc_number,
        "TxnDate": txn_date.isoformat(),
        "CurrencyRef": {"value": currency, "name": currency_name(currency)},
    }
    if ctx.multicurrency or foreign:
        body["ExchangeRate"] = _number(rate)
    if spec.private_note:
        body["PrivateNote"] = spec.private_note
    body["LinkedTxn"] = [link.model_dump(exclude_none=True) for link in spec.linked_txn]
    body["Line"] = lines
    tax_detail: dict[str, Any] = {"TotalTax": tax}
    if tax:
        tax_detail["TaxLine"] = [
            {
                "Amount": tax,
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "1"},
                    "PercentBased": True,
                    "TaxPercent": _number(spec.tax_rate * 100),
                    "NetAmountTaxable": builder.net,
                },
            }
        ]
    body["TxnTaxDetail"] = tax_detail
    body["CustomerRef"] = dict(ctx.customer_ref)
    body["GlobalTaxCalculation"] = spec.tax
    body["TotalAmt"] = total
    if ctx.multicurrency or foreign:
        body["HomeTotalAmt"] = money(total * rate)
    body["ApplyTaxAfterDiscount"] = False
    if entity == "Invoice":
        body["DueDate"] = (txn_date + timedelta(days=30)).isoformat()
        body["Balance"] = total
        if ctx.multicurrency or foreign:
            body["HomeBalance"] = money(total * rate)
        body["EmailStatus"] = "NotSet"
        body["PrintStatus"] = "NotSet"
    elif entity == "SalesReceipt":
        body["Balance"] = ZERO
        body["EmailStatus"] = "NotSet"
        body["PrintStatus"] = "NotSet"
    else:
        body["Balance"] = total
        body["RemainingCredit"] = total
    return body, foreign


@dataclass
class CustomerState:
    id: str
    display_name: str
    given_name: str | None = None
    family_name: str | None = None
    company_name: str | None = None
    email: str | None = None
    active: bool = True

    def ref(self) -> dict[str, Any]:
        return {"value": self.id, "name": self.display_name}


def customer_body(customer: CustomerState, currency: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in (
        ("GivenName", customer.given_name),
        ("FamilyName", customer.family_name),
        ("CompanyName", customer.company_name),
    ):
        if value:
            body[key] = value
    body.update(
        {
            "DisplayName": customer.display_name,
            "PrintOnCheckName": customer.display_name,
            "FullyQualifiedName": customer.display_name,
            "Active": customer.active,
            "Taxable": True,
            "Job": False,
            "BillWithParent": False,
            "Balance": ZERO,
            "BalanceWithJobs": ZERO,
            "CurrencyRef": {"value": currency, "name": currency_name(currency)},
            "PreferredDeliveryMethod": "Print",
        }
    )
    if customer.email:
        body["PrimaryEmailAddr"] = {"Address": customer.email}
    return body


def _void_line(line: dict[str, Any]) -> None:
    if "Amount" in line:
        line["Amount"] = ZERO
    detail = line.get("SalesItemLineDetail")
    if detail is not None:
        detail.pop("Qty", None)
        detail.pop("UnitPrice", None)
        if "TaxInclusiveAmt" in detail:
            detail["TaxInclusiveAmt"] = ZERO
    group = line.get("GroupLineDetail")
    if group is not None:
        group.pop("Quantity", None)
        for inner in group.get("Line", []):
            _void_line(inner)


def void_body(body: dict[str, Any]) -> dict[str, Any]:
    voided = copy.deepcopy(body)
    for line in voided.get("Line", []):
        _void_line(line)
    for key in ("TotalAmt", "HomeTotalAmt", "Balance", "HomeBalance", "RemainingCredit"):
        if key in voided:
            voided[key] = ZERO
    voided["TxnTaxDetail"] = {"TotalTax": ZERO}
    note = body.get("PrivateNote")
    voided["PrivateNote"] = f"Voided - {note}" if note else "Voided"
    return voided

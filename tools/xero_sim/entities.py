"""Xero's JSON shapes and line arithmetic (docs/xero.md §3–§6, §9).

Per line: ``LineAmount`` = Quantity × UnitAmount, less ``DiscountRate`` percent or ``DiscountAmount``, rounded to
2 dp half-up (Xero's observed rounding); ``TaxAmount`` per line to 2 dp: on top of ``LineAmount`` for
``Exclusive``, inside it for ``Inclusive`` (LineAmount × rate / (100 + rate)), zero for ``NoTax``.
``SubTotal`` is tax-exclusive (the sum of LineAmount, less the tax for ``Inclusive``), ``Total`` =
SubTotal + TotalTax. ``UnitAmount`` shows 2 dp unless the request says ``unitdp=4``; ``Quantity`` 4 dp.
``CurrencyRate`` is kept as given (6 dp), 1.000000 for base-currency documents; what it means is in docs/xero.md §9.1.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tools.xero_sim import timefmt
from tools.xero_sim.specs import DocSpec, ItemSpec, LineSpec

CENT = Decimal("0.01")
KINDS = {"Invoice": "Invoices", "CreditNote": "CreditNotes", "BankTransaction": "BankTransactions"}
ID_FIELD = {"Invoice": "InvoiceID", "CreditNote": "CreditNoteID", "BankTransaction": "BankTransactionID"}
NUMBER_FIELD = {"Invoice": "InvoiceNumber", "CreditNote": "CreditNoteNumber"}
DEFAULT_TYPE = {"Invoice": "ACCREC", "CreditNote": "ACCRECCREDIT", "BankTransaction": "RECEIVE"}
TYPES = {
    "Invoice": ("ACCREC", "ACCPAY"),
    "CreditNote": ("ACCRECCREDIT", "ACCPAYCREDIT"),
    "BankTransaction": ("RECEIVE", "SPEND"),
}


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def places(value: Decimal, dp: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP)


@dataclass
class Line:
    spec: LineSpec
    line_id: str
    line_amount: Decimal
    tax_amount: Decimal
    discount: Decimal  # gross − LineAmount (what TotalDiscount sums)


def compute_line(spec: LineSpec, amount_types: str) -> Line:
    qty = spec.quantity if spec.quantity is not None else Decimal(1)
    unit = spec.unit_amount if spec.unit_amount is not None else Decimal(0)
    gross = qty * unit
    if spec.discount_rate is not None:
        line_amount = money(gross * (Decimal(100) - spec.discount_rate) / Decimal(100))
    elif spec.discount_amount is not None:
        line_amount = money(gross - spec.discount_amount)
    else:
        line_amount = money(gross)
    if amount_types == "NoTax" or not spec.tax_rate:
        tax = Decimal("0.00")
    elif amount_types == "Inclusive":
        tax = money(line_amount * spec.tax_rate / (Decimal(100) + spec.tax_rate))
    else:
        tax = money(line_amount * spec.tax_rate / Decimal(100))
    return Line(spec, str(uuid.uuid4()), line_amount, tax, money(gross) - line_amount)


@dataclass
class Totals:
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    total_discount: Decimal


def totals(lines: list[Line], amount_types: str) -> Totals:
    tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
    amounts = sum((line.line_amount for line in lines), Decimal("0.00"))
    sub = amounts - tax if amount_types == "Inclusive" else amounts
    return Totals(sub, tax, sub + tax, sum((line.discount for line in lines), Decimal("0.00")))


def tax_type(spec: LineSpec, amount_types: str) -> str:
    if spec.tax_type:
        return spec.tax_type
    return "NONE" if amount_types == "NoTax" or not spec.tax_rate else "OUTPUT2"


@dataclass
class Item:
    item_id: str
    spec: ItemSpec
    updated: datetime

    def render(self, unitdp: int) -> dict[str, Any]:
        spec = self.spec
        body: dict[str, Any] = {
            "ItemID": self.item_id,
            "Code": spec.code,
            "Name": spec.name or spec.code,
            "Description": spec.description or spec.name or spec.code,
            "IsSold": True,
            "IsPurchased": True,
            "IsTrackedAsInventory": spec.tracked,
            "UpdatedDateUTC": timefmt.ms_json(self.updated),
        }
        if spec.sale_price is not None:
            body["SalesDetails"] = {"UnitPrice": places(spec.sale_price, unitdp), "AccountCode": "200"}
        if spec.purchase_price is not None:
            body["PurchaseDetails"] = {"UnitPrice": places(spec.purchase_price, unitdp), "AccountCode": "300"}
            if spec.tracked:
                body["PurchaseDetails"]["COGSAccountCode"] = "310"
        if spec.tracked:
            body["InventoryAssetAccountCode"] = "630"
            body["QuantityOnHand"] = places(spec.quantity_on_hand, 4)
        return body


@dataclass
class Document:
    kind: str  # Invoice | CreditNote | BankTransaction
    doc_id: str
    spec: DocSpec
    type: str
    status: str
    number: str | None
    contact_id: str
    currency_code: str
    currency_rate: Decimal
    created: datetime
    updated: datetime
    lines: list[Line] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)  # ItemCode -> Item, for the line's Item reference

    @property
    def day(self) -> date:
        return self.spec.date or self.created.date()

    def field(self, name: str) -> Any:
        """A top-level value for ``where`` filters."""
        values: dict[str, Any] = {
            ID_FIELD[self.kind]: self.doc_id,
            "Type": self.type,
            "Status": self.status,
            "Reference": self.spec.reference or "",
            "CurrencyCode": self.currency_code,
            "Contact.ContactID": self.contact_id,
            "Contact.Name": self.spec.contact,
            "Date": self.day,
            "UpdatedDateUTC": self.updated,
        }
        if self.kind in NUMBER_FIELD:
            values[NUMBER_FIELD[self.kind]] = self.number or ""
        return values.get(name)

    def render(self, *, with_lines: bool, unitdp: int) -> dict[str, Any]:
        amount_types = self.spec.line_amount_types
        t = totals(self.lines, amount_types)
        body: dict[str, Any] = {ID_FIELD[self.kind]: self.doc_id, "Type": self.type}
        if self.kind in NUMBER_FIELD:
            body[NUMBER_FIELD[self.kind]] = self.number
        if self.spec.reference is not None and self.type in ("ACCREC", "ACCRECCREDIT", "RECEIVE", "SPEND"):
            body["Reference"] = self.spec.reference
        body["Contact"] = {"ContactID": self.contact_id, "Name": self.spec.contact}
        body["Date"] = timefmt.date_json(self.day)
        body["DateString"] = timefmt.date_string(self.day)
        if self.kind == "BankTransaction":
            body["BankAccount"] = {"AccountID": "13918178-849a-4823-9a31-57b7eac713d7", "Code": "090", "Name": "Bank"}
            body["IsReconciled"] = False
        else:
            body["DueDate"] = timefmt.date_json(self.day)
            body["DueDateString"] = timefmt.date_string(self.day)
        body["Status"] = self.status
        body["LineAmountTypes"] = amount_types
        if with_lines:
            body["LineItems"] = [self._line(line, unitdp) for line in self.lines]
        body["SubTotal"] = t.sub_total
        body["TotalTax"] = t.total_tax
        body["Total"] = t.total
        if self.kind == "Invoice" and self.type == "ACCREC":
            body["TotalDiscount"] = t.total_discount
            body["IsDiscounted"] = bool(t.total_discount)
        body["CurrencyCode"] = self.currency_code
        body["CurrencyRate"] = places(self.currency_rate, 6)
        if self.kind == "Invoice":
            paid = t.total if self.status == "PAID" else Decimal("0.00")
            body["AmountDue"] = t.total - paid if self.status not in ("VOIDED", "DELETED") else Decimal("0.00")
            body["AmountPaid"] = paid
            body["AmountCredited"] = Decimal("0.00")
        elif self.kind == "CreditNote":
            body["RemainingCredit"] = Decimal("0.00") if self.status == "PAID" else t.total
            body["Allocations"] = []
        body["UpdatedDateUTC"] = timefmt.ms_json(self.updated)
        body["HasAttachments"] = False
        return body

    def _line(self, line: Line, unitdp: int) -> dict[str, Any]:
        spec = line.spec
        out: dict[str, Any] = {"LineItemID": line.line_id}
        if spec.description is not None or spec.item_code is None:
            out["Description"] = spec.description or ""
        if spec.item_code is not None:
            out["ItemCode"] = spec.item_code
            item = self.items.get(spec.item_code)
            if item is not None:
                out["Item"] = {"ItemID": item.item_id, "Code": item.spec.code, "Name": item.spec.name or item.spec.code}
        if spec.unit_amount is not None:
            out["UnitAmount"] = places(spec.unit_amount, unitdp)
        if spec.quantity is not None:
            out["Quantity"] = places(spec.quantity, 4)
        if spec.discount_rate is not None:
            out["DiscountRate"] = places(spec.discount_rate, 2)
        if spec.discount_amount is not None:
            out["DiscountAmount"] = money(spec.discount_amount)
        out["TaxType"] = tax_type(spec, self.spec.line_amount_types)
        out["TaxAmount"] = line.tax_amount
        out["LineAmount"] = line.line_amount
        out["AccountCode"] = spec.account_code
        out["Tracking"] = []
        return out

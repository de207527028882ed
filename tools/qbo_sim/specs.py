"""Bodies of the control API (``/sim/...``): the simple description of a sale or an item
that the simulator turns into QBO-shaped entities (see ``entities.py``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaxMode = Literal["TaxExcluded", "TaxInclusive", "NotApplicable"]
ItemType = Literal["Inventory", "NonInventory", "Service", "Group"]


SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineSpec(_Body):
    """One of: an item line (``item_id`` or ``sku``), a bundle (``group_item_id``), a discount
    (``discount_percent`` / ``discount_amount``), a ``description``-only line or a ``subtotal``.

    Item lines: ``qty`` defaults to 1 and ``unit_price`` to the item's price; ``amount`` alone
    (no qty/price) gives a line without ``Qty``/``UnitPrice`` as QBO has for service lines.
    ``item_id`` ``"SHIPPING_ITEM_ID"`` is the sales form's shipping charge (docs/quickbooks-api.md §2.4a): no Item
    exists for it; it is placed after the subtotal and discount lines, is never discounted nor taxed,
    and its ``amount`` (or qty × unit_price) adds to ``TotalAmt``.
    Bundle lines: inner ``lines`` carry the quantities as they appear on the invoice (QBO's inner
    ``Qty`` is already component × bundle quantity); without ``lines`` the bundle's components are
    unrolled (component qty × bundle ``qty``) at the components' prices.
    """

    item_id: str | None = None
    sku: str | None = None
    qty: Decimal | None = None
    unit_price: Decimal | None = None
    amount: Decimal | None = None
    description: str | None = None
    group_item_id: str | None = None
    lines: list[LineSpec] | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    subtotal: bool = False

    @property
    def kind(self) -> str:
        if self.item_id == SHIPPING_ITEM_ID:
            return "shipping"
        if self.group_item_id is not None:
            return "group"
        if self.item_id is not None or self.sku is not None:
            return "item"
        if self.discount_percent is not None or self.discount_amount is not None:
            return "discount"
        if self.subtotal:
            return "subtotal"
        if self.description is not None:
            return "description"
        raise ValueError("a line needs item_id/sku, group_item_id, discount_*, subtotal or description")

    @model_validator(mode="after")
    def _one_kind(self) -> LineSpec:
        kind = self.kind
        if kind == "discount" and self.discount_percent is not None and self.discount_amount is not None:
            raise ValueError("give discount_percent or discount_amount, not both")
        if kind != "group" and self.lines is not None:
            raise ValueError("nested lines only on a group_item_id line")
        if self.lines and any(line.kind != "item" for line in self.lines):
            raise ValueError("bundle lines must be item lines")
        for value in (self.qty, self.unit_price, self.amount, self.discount_amount, self.discount_percent):
            if value is not None and not value.is_finite():
                raise ValueError("numbers must be finite")
        return self


class LinkedTxnSpec(_Body):
    """``LinkedTxn`` entries (Estimate, Payment, Invoice, ... the sale is linked to), kept as given."""

    TxnId: str
    TxnType: str
    TxnLineId: str | None = None


class TxnSpec(_Body):
    customer: str = "Cash Customer"
    txn_date: date | None = None
    doc_number: str | None = None
    currency: str | None = None
    exchange_rate: Decimal | None = None
    tax: TaxMode = "TaxExcluded"
    tax_rate: Decimal = Decimal(0)
    private_note: str | None = None
    lines: list[LineSpec] = Field(default_factory=list)
    linked_txn: list[LinkedTxnSpec] = Field(default_factory=list)


class ComponentSpec(_Body):
    item_id: str
    qty: Decimal = Decimal(1)


class ItemSpec(_Body):
    name: str
    sku: str | None = None
    type: ItemType = "Inventory"
    unit_price: Decimal | None = None
    purchase_cost: Decimal | None = None
    description: str | None = None
    qty_on_hand: Decimal | None = None
    #: Bundle members (Type Group only).
    components: list[ComponentSpec] | None = None


class ItemPatch(_Body):
    name: str | None = None
    sku: str | None = None
    unit_price: Decimal | None = None
    purchase_cost: Decimal | None = None
    description: str | None = None
    qty_on_hand: Decimal | None = None
    active: bool | None = None
    components: list[ComponentSpec] | None = None


class CustomerSpec(_Body):
    display_name: str
    given_name: str | None = None
    family_name: str | None = None
    company_name: str | None = None
    email: str | None = None
    active: bool = True


class CompanySpec(_Body):
    realm_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,40}$")
    demo: bool = False
    home_currency: str = "USD"
    multicurrency: bool = False


class BulkSpec(_Body):
    count: int = Field(ge=1, le=100_000)
    item_id: str | None = None
    sku: str | None = None
    qty: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    customer: str = "Bulk Customer"
    txn_date: date | None = None
    #: Spread TxnDate backwards over this many days (0: all on txn_date).
    spread_days: int = 0
    lines: list[LineSpec] | None = None

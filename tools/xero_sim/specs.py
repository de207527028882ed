"""Bodies of the control API (``/sim/...``): what a test says it wants, in our words; ``entities`` turns them
into Xero's shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"]
LineAmountTypes = Literal["Exclusive", "Inclusive", "NoTax"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineSpec(_Spec):
    item_code: str | None = None
    description: str | None = None
    quantity: Decimal | None = Decimal(1)
    unit_amount: Decimal | None = None
    discount_rate: Decimal | None = None
    discount_amount: Decimal | None = None
    #: Tax rate in percent; ignored when the document is ``NoTax``.
    tax_rate: Decimal = Decimal(0)
    tax_type: str | None = None
    account_code: str = "200"

    @model_validator(mode="after")
    def _one_discount(self) -> LineSpec:
        if self.discount_rate is not None and self.discount_amount is not None:
            raise ValueError("give discount_rate or discount_amount, not both")
        return self


class DocSpec(_Spec):
    """An invoice, credit note or bank transaction."""

    type: str | None = None  # ACCREC/ACCPAY, ACCRECCREDIT/ACCPAYCREDIT, RECEIVE/SPEND; default per kind
    contact: str = "Walk-in customer"
    date: dt.date | None = None
    status: Status | None = None
    line_amount_types: LineAmountTypes = "Exclusive"
    currency_code: str | None = None
    currency_rate: Decimal | None = None
    number: str | None = None
    reference: str | None = None
    lines: list[LineSpec] = Field(default_factory=list)


class DocPatch(_Spec):
    contact: str | None = None
    date: dt.date | None = None
    status: Status | None = None
    line_amount_types: LineAmountTypes | None = None
    currency_code: str | None = None
    currency_rate: Decimal | None = None
    reference: str | None = None
    lines: list[LineSpec] | None = None


class ItemSpec(_Spec):
    code: str
    name: str | None = None
    description: str | None = None
    sale_price: Decimal | None = None
    purchase_price: Decimal | None = None
    tracked: bool = False
    quantity_on_hand: Decimal = Decimal(0)


class OrgSpec(_Spec):
    tenant_id: str | None = None
    name: str = "Sim Company"
    base_currency: str = "NZD"
    country_code: str = "NZ"
    demo: bool = False

"""Request bodies of the ingest API (pydantic). Amounts are decimal strings or
JSON numbers (read exactly, never as floats). Every decimal field (quantities,
prices, discounts, exchange rates, unit and standard costs) is an ``Amount``
(shared.events / shared.money.input_decimal): finite, at most 6 decimal places,
below 10**12 in absolute value; anything else is a 422 naming the field. Costing
validates events with the same check, so an accepted write is never dead-lettered
for its numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.events import Amount, NonNegative
from shared.money import wide


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


Positive = Annotated[Amount, Field(gt=0)]
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
LongText = Annotated[str, Field(max_length=1000), AfterValidator(_no_nul)]
#: The manual sale form's Notes (its textarea's maxlength).
NOTES_MAX = 2000
Notes = Annotated[str, Field(max_length=NOTES_MAX), AfterValidator(_no_nul)]
RETURN_LOT_PREFIX = "RET-"


def _currency(code: str) -> str:
    code = code.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"unknown currency {code!r} (ISO 4217 code expected)")
    return code


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc


Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ProductBody(_Body):
    sku: Text | None = None
    name: Text
    qbo_item_id: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)] | None = None
    standard_cost: NonNegative | None = None


class LotBody(_Body):
    sku: Text
    lot_number: Text
    quantity: Positive
    unit_cost: NonNegative
    received_at: Timestamp

    @model_validator(mode="after")
    def _not_a_return_lot(self) -> Self:
        if self.lot_number.upper().startswith(RETURN_LOT_PREFIX):
            raise ValueError(f"lot numbers starting with {RETURN_LOT_PREFIX!r} are reserved for credit memo returns")
        return self


class LotPatchBody(_Body):
    quantity: NonNegative | None = None
    unit_cost: NonNegative | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.quantity is None and self.unit_cost is None:
            raise ValueError("give quantity and/or unit_cost")
        return self


class SaleLineBody(_Body):
    sku: Text | None = None
    description: LongText | None = None
    quantity: Positive
    unit_price: NonNegative
    discount: NonNegative | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.sku is None and not self.description:
            raise ValueError("a line needs a sku or a description")
        if self.discount is not None:
            with wide():  # exact: inputs have at most 18 significant digits each
                exceeds = self.discount > self.quantity * self.unit_price
        if self.discount is not None and exceeds:
            raise ValueError("discount exceeds quantity × unit_price")
        return self


class SaleBody(_Body):
    reference: Text | None = None
    type: Literal["invoice", "sales_receipt", "credit_memo"]
    date: date
    customer: LongText | None = None
    currency: Currency | None = None
    exchange_rate: Positive | None = None
    lines: Annotated[list[SaleLineBody], Field(min_length=1, max_length=500)]
    #: Free text kept with the sale (manual_sales.body), shown in the sale's detail; not costed.
    notes: Notes | None = None

    def home_rate(self, home_currency: str) -> Decimal:
        """Home-currency units per unit of the sale's currency (QuickBooks' ExchangeRate)."""
        if self.currency is None or self.currency == home_currency:
            if self.exchange_rate not in (None, Decimal(1)):
                raise ValueError(f"exchange_rate must be 1 or omitted for the home currency {home_currency}")
            return Decimal(1)
        if self.exchange_rate is None:
            raise ValueError(f"exchange_rate is required for a sale in {self.currency} (home currency {home_currency})")
        return self.exchange_rate

"""Events exchanged between services: past-tense, immutable, versioned pydantic models.

Every event has ``event_id``, ``tenant_id``, ``occurred_at`` and ``schema_version``.
The routing key of an event is its ``event_type`` (dotted, past tense).
Readers are tolerant: unknown fields are ignored.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from shared.money import input_decimal

SCHEMA_VERSION: Final = 1

Source = Literal["quickbooks", "xero", "manual"]
SaleType = Literal["invoice", "sales_receipt", "credit_memo"]
LineKind = Literal["inventory", "non_inventory", "service", "shipping", "unmapped"]


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


def _input_places(value: Decimal) -> Decimal:
    # The same check as the ingest API's (shared.money.input_decimal): whatever ingest
    # accepts, costing accepts.
    return input_decimal(value)


#: A computed amount: any finite decimal, kept exact.
Exact = Annotated[Decimal, AfterValidator(_finite)]
#: An amount as entered: finite, at most INPUT_PLACES decimal places.
Amount = Annotated[Decimal, AfterValidator(_finite), AfterValidator(_input_places)]
NonNegative = Annotated[Amount, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class EventBase(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    tenant_id: uuid.UUID
    occurred_at: datetime
    correlation_id: str | None = None
    if TYPE_CHECKING:
        # Each event type declares its own (a Literal field); typed here for routing_key.
        event_type: str

    @property
    def routing_key(self) -> str:
        return self.event_type


class SaleLine(_Model):
    line_no: int = Field(ge=1)
    sku: str | None = None
    description: str | None = None
    quantity: NonNegative
    #: Home-currency net revenue of the line, tax excluded, after discounts,
    #: positive as printed on the document (a credit memo's is made negative
    #: by the costing engine).
    revenue: Exact
    kind: LineKind = "inventory"


class SaleUpserted(EventBase):
    """The full current version of a sales transaction (create or edit)."""

    event_type: Literal["sale.upserted"] = "sale.upserted"
    source: Source
    sale_type: SaleType
    external_id: str = Field(min_length=1)
    version: int = Field(ge=0)
    doc_number: str | None = None
    txn_date: date
    source_created_at: datetime
    customer: str | None = None
    currency: str | None = None
    exchange_rate: Exact | None = None
    lines: list[SaleLine]


class SaleRemoved(EventBase):
    """A sales transaction was voided or deleted. Terminal."""

    event_type: Literal["sale.removed"] = "sale.removed"
    source: Source
    sale_type: SaleType
    external_id: str = Field(min_length=1)
    reason: Literal["voided", "deleted"]
    version: int | None = None


class ProductUpserted(EventBase):
    event_type: Literal["product.upserted"] = "product.upserted"
    sku: str = Field(min_length=1)
    name: str
    qbo_item_id: str | None = None
    standard_cost: NonNegative | None = None
    version: int = Field(ge=0)


class LotReceived(EventBase):
    """A finished-good lot was received (version 1 of the lot)."""

    event_type: Literal["lot.received"] = "lot.received"
    sku: str = Field(min_length=1)
    lot_number: str = Field(min_length=1)
    quantity: NonNegative
    unit_cost: NonNegative
    received_at: datetime
    version: int = Field(default=1, ge=0)


class LotCorrected(LotReceived):
    """A lot's quantity and/or unit cost was corrected: the lot's full new state."""

    event_type: Literal["lot.corrected"] = "lot.corrected"  # type: ignore[assignment]  # its own discriminator value


Event = Annotated[
    SaleUpserted | SaleRemoved | ProductUpserted | LotReceived | LotCorrected,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES = ("sale.upserted", "sale.removed", "product.upserted", "lot.received", "lot.corrected")


def parse_event(raw: bytes | str) -> Event:
    """Validate a JSON event; raises pydantic.ValidationError on bad input."""
    return EVENT_ADAPTER.validate_json(raw)


def dump_event(event: EventBase) -> bytes:
    return event.model_dump_json().encode()

"""A Xero document (invoice, credit note, bank transaction) as a normalized sales event
(docs/xero.md §3–§6; the rules the fixtures of tests/fixtures/xero were computed by).

* A sale is an ``ACCREC`` invoice, an ``ACCRECCREDIT`` credit note (a return) or a
  ``RECEIVE`` bank transaction (a cash sale, our ``sales_receipt``) whose ``Status`` is
  ``AUTHORISED`` or ``PAID``. ``DRAFT``/``SUBMITTED`` documents, bills (``ACCPAY``,
  ``ACCPAYCREDIT``) and ``SPEND``/other bank transactions are not sales: nothing is emitted.
  ``VOIDED`` → removed ``voided``; ``DELETED`` → removed ``deleted`` (the amounts a voided
  document keeps are ignored).
* Lines: a line with an ``ItemCode`` is an item line (the mapper says which product;
  by default the product whose sku is the code); a line without one (freight, labour) is
  ``service`` revenue with nothing to cost.
* Revenue is the line's tax-exclusive amount: ``LineAmount`` (already after
  ``DiscountRate``/``DiscountAmount`` and Xero's rounding, never re-derived) for
  ``Exclusive``/``NoTax``, ``LineAmount − TaxAmount`` for ``Inclusive``; then in the base
  currency: **÷ ``CurrencyRate``** (units of the document's currency per unit of the base
  currency, §5), rounded half-even to 6 places only when the quotient does not terminate.
* Quantity: ``Quantity`` (1 when absent on a line with an amount), 6 places half-even;
  a negative one moves no stock.
* Version: ``UpdatedDateUTC`` in milliseconds × 1,000,000 + the re-map sequence, so an edit
  (which moves ``UpdatedDateUTC``) is a newer version and a re-mapping of the same edit too.
* ``Date`` (the org-local document date) is the FIFO date.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext
from typing import Any, Final

from services.ingest.channels.mapping import Item, ItemMapper, Mapped, Product
from shared.events import SaleLine, SaleRemoved, SaleType, SaleUpserted
from shared.money import ZERO, wide

SOURCE: Final = "xero"
SALE_TYPES: dict[str, SaleType] = {
    "Invoice": "invoice",
    "CreditNote": "credit_memo",
    "BankTransaction": "sales_receipt",
}
ID_FIELDS = {"Invoice": "InvoiceID", "CreditNote": "CreditNoteID", "BankTransaction": "BankTransactionID"}
NUMBER_FIELDS = {"Invoice": "InvoiceNumber", "CreditNote": "CreditNoteNumber", "BankTransaction": "Reference"}
#: The document types that are sales, per entity.
SALE_DOC_TYPES = {"Invoice": "ACCREC", "CreditNote": "ACCRECCREDIT", "BankTransaction": "RECEIVE"}
POSTED = ("AUTHORISED", "PAID")
VERSION_STRIDE = 1_000_000
PLACES = Decimal("0.000001")
_MS_JSON = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


class CodeMapper(ItemMapper):
    """``ItemCode`` → product: a product's explicit Xero item code (``catalog_products.xero_item_code``),
    else the product whose sku is the code (the default: Xero item code = sku); a code naming
    no product is an inventory line of that sku (the costing engine holds it ``unmapped``
    until such a product exists). Items are keyed by their ``Code``."""

    def __init__(self, products: list[Product] | None = None, items: dict[str, Item] | None = None):
        super().__init__(list(products or []), dict(items or {}))

    def map(self, item_id: str | None, item_name: str | None = None) -> Mapped:
        if not item_id:
            return Mapped(None, "service")
        return Mapped(self._by_item_id.get(item_id, item_id), "inventory")


def ms_json(value: object) -> datetime | None:
    """``/Date(1539993600000+0000)/`` (ms since the epoch, UTC) → datetime."""
    if not isinstance(value, str):
        return None
    match = _MS_JSON.fullmatch(value.strip())
    if match is None:
        return None
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)


def doc_date(body: Mapping[str, Any]) -> date | None:
    text = body.get("DateString")
    if isinstance(text, str) and re.match(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text[:10])
    moment = ms_json(body.get("Date"))
    return moment.date() if moment else None


def dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def entity_id(entity: str, body: Mapping[str, Any]) -> str:
    return str(body[ID_FIELDS[entity]])


def entity_of(body: Mapping[str, Any]) -> str:
    """Which entity a body is (by its id field)."""
    for entity, field in ID_FIELDS.items():
        if field in body:
            return entity
    raise KeyError("not a Xero invoice, credit note or bank transaction")


def status(body: Mapping[str, Any]) -> str:
    return str(body.get("Status") or "").upper()


def is_sales_type(entity: str, body: Mapping[str, Any]) -> bool:
    """An ``ACCREC`` invoice, ``ACCRECCREDIT`` credit note or ``RECEIVE`` bank transaction."""
    return str(body.get("Type") or "").upper() == SALE_DOC_TYPES[entity]


def is_sale(entity: str, body: Mapping[str, Any]) -> bool:
    """A document that is (or was) a sale: a sales type, approved, voided or deleted
    (DRAFT and SUBMITTED documents are not sales yet)."""
    return is_sales_type(entity, body) and status(body) in (*POSTED, "VOIDED", "DELETED")


def is_voided(body: Mapping[str, Any], operation: str | None = None) -> bool:
    return operation == "Void" or status(body) == "VOIDED"


def is_deleted(body: Mapping[str, Any]) -> bool:
    return status(body) == "DELETED"


def version_of(body: Mapping[str, Any], remap_seq: int = 0) -> int:
    updated = ms_json(body.get("UpdatedDateUTC"))
    millis = int(updated.timestamp() * 1000) if updated else 0
    return millis * VERSION_STRIDE + remap_seq


def item_codes(body: Mapping[str, Any]) -> list[str]:
    return sorted({str(line["ItemCode"]) for line in body.get("LineItems") or [] if line.get("ItemCode")})


def to_event(
    tenant_id: uuid.UUID,
    entity: str,
    body: Mapping[str, Any],
    mapper: ItemMapper,
    remap_seq: int = 0,
    operation: str | None = None,
) -> SaleUpserted | SaleRemoved:
    """The event of one version of a sale (call only for ``is_sale`` documents)."""
    if is_deleted(body):
        return removed(tenant_id, entity, entity_id(entity, body), version_of(body, remap_seq))
    if is_voided(body, operation):
        return SaleRemoved(
            tenant_id=tenant_id,
            occurred_at=datetime.now(UTC),
            source=SOURCE,
            sale_type=SALE_TYPES[entity],
            external_id=entity_id(entity, body),
            reason="voided",
            version=version_of(body, remap_seq),
        )
    return upserted(tenant_id, entity, body, mapper, remap_seq)


def _revenue(line: Mapping[str, Any], amount_types: str, rate: Decimal) -> Decimal:
    amount = dec(line.get("LineAmount")) or ZERO
    if amount_types == "inclusive":
        amount -= dec(line.get("TaxAmount")) or ZERO
    if rate == 1:
        return amount
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.clear_flags()
        exact = amount / rate
        inexact = ctx.flags[Inexact]
    # A terminating quotient is kept as it is; a non-terminating one is rounded to 6 places.
    return exact.quantize(PLACES, ROUND_HALF_EVEN) if inexact else exact


def _quantity(line: Mapping[str, Any]) -> Decimal:
    qty = dec(line.get("Quantity"))
    if qty is None:
        qty = Decimal(1) if dec(line.get("LineAmount")) else ZERO
    qty = qty.quantize(PLACES, rounding=ROUND_HALF_EVEN)
    return qty if qty > 0 else ZERO


def upserted(
    tenant_id: uuid.UUID, entity: str, body: Mapping[str, Any], mapper: ItemMapper, remap_seq: int = 0
) -> SaleUpserted:
    """The document's content as a new version (also for a voided one: its date, number and contact stay)."""
    now = datetime.now(UTC)
    rate = dec(body.get("CurrencyRate")) or Decimal(1)
    if rate <= 0:
        rate = Decimal(1)
    amount_types = str(body.get("LineAmountTypes") or "Exclusive").casefold()
    lines = []
    with wide():
        for n, line in enumerate(body.get("LineItems") or [], start=1):
            code = line.get("ItemCode") or None
            mapped = mapper.map(code)
            item = line.get("Item") or {}
            lines.append(
                SaleLine(
                    line_no=n,
                    sku=mapped.sku,
                    kind=mapped.kind,
                    description=line.get("Description") or item.get("Name") or code,
                    quantity=_quantity(line),
                    revenue=_revenue(line, amount_types, rate),
                )
            )
        home_per_foreign = None if rate == 1 else Decimal(1) / rate
    updated = ms_json(body.get("UpdatedDateUTC")) or now
    return SaleUpserted(
        tenant_id=tenant_id,
        occurred_at=now,
        source=SOURCE,
        sale_type=SALE_TYPES[entity],
        external_id=entity_id(entity, body),
        version=version_of(body, remap_seq),
        doc_number=body.get(NUMBER_FIELDS[entity]) or None,
        txn_date=doc_date(body) or updated.date(),
        source_created_at=updated,
        customer=(body.get("Contact") or {}).get("Name"),
        currency=body.get("CurrencyCode"),
        exchange_rate=home_per_foreign,
        lines=lines,
    )


def removed(tenant_id: uuid.UUID, entity: str, external_id: str, version: int | None = None) -> SaleRemoved:
    return SaleRemoved(
        tenant_id=tenant_id,
        occurred_at=datetime.now(UTC),
        source=SOURCE,
        sale_type=SALE_TYPES[entity],
        external_id=external_id,
        reason="deleted",
        version=version,
    )

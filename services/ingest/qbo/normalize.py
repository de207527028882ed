"""A QuickBooks sales entity (Invoice, SalesReceipt, CreditMemo) as a normalized
sales event of the costing engine.

* Lines: ``SalesItemLineDetail`` at the top level and inside ``GroupLineDetail``
  bundles, numbered in document order; ``SubTotalLineDetail`` and
  ``DescriptionOnly`` carry no money.
* ``DiscountLineDetail`` amounts are spread over the item lines in proportion
  to their amounts (rounded to 6 places, the remainder on the last line).
* Tax is excluded: the line ``Amount`` is the net amount in all three
  ``GlobalTaxCalculation`` modes (``TaxInclusiveAmt`` carries the gross).
* Revenue is converted to the home currency with ``ExchangeRate``.
* ``TxnDate`` is the FIFO date, ``MetaData.CreateTime`` the tie-breaker.
* Version = SyncToken × 1,000,000 + remap sequence, so a re-mapping of the same
  SyncToken is a newer version and a new SyncToken is newer still.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

from services.ingest.qbo.deliveries import parse_time
from services.ingest.qbo.mapping import ItemMapper
from shared.events import SaleLine, SaleRemoved, SaleUpserted
from shared.money import ZERO, wide

SALE_TYPES = {"Invoice": "invoice", "SalesReceipt": "sales_receipt", "CreditMemo": "credit_memo"}
VERSION_STRIDE = 1_000_000
_SHARE = Decimal("0.000001")


def version_of(sync_token, remap_seq: int = 0) -> int:
    return int(sync_token) * VERSION_STRIDE + remap_seq


def dec(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def is_voided(body: dict, operation: str | None = None) -> bool:
    """Void: the webhook says so, or the read-back has a 'Void…' note and zero amounts."""
    if operation == "Void":
        return True
    note = str(body.get("PrivateNote") or "").lstrip().lower()
    zero = (dec(body.get("TotalAmt")) or ZERO) == 0 and all(
        (dec(line.get("Amount")) or ZERO) == 0 for line in body.get("Line") or [])
    return note.startswith("void") and zero


def item_ids(body: dict) -> list[str]:
    return sorted({detail["ItemRef"]["value"] for detail, _ in _item_lines(body)
                   if isinstance(detail.get("ItemRef"), dict) and detail["ItemRef"].get("value")})


def _item_lines(body: dict):
    """(SalesItemLineDetail, line) pairs, bundles unrolled, in document order."""
    for line in body.get("Line") or []:
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            yield line.get("SalesItemLineDetail") or {}, line
        elif kind == "GroupLineDetail":
            for inner in (line.get("GroupLineDetail") or {}).get("Line") or []:
                if inner.get("DetailType") == "SalesItemLineDetail":
                    yield inner.get("SalesItemLineDetail") or {}, inner


def _discount(body: dict, gross: Decimal) -> Decimal:
    total = ZERO
    for line in body.get("Line") or []:
        if line.get("DetailType") != "DiscountLineDetail":
            continue
        detail = line.get("DiscountLineDetail") or {}
        amount = dec(line.get("Amount"))
        if amount is None and detail.get("PercentBased") and detail.get("DiscountPercent") is not None:
            amount = gross * dec(detail["DiscountPercent"]) / 100
        total += abs(amount or ZERO)
    return total


def _quantity(detail: dict, amount: Decimal) -> Decimal:
    qty, price = dec(detail.get("Qty")), dec(detail.get("UnitPrice"))
    if qty is None:
        if price:
            qty = amount / price
        else:
            qty = Decimal(1) if amount else ZERO
    # A negative quantity (a return keyed on an invoice) moves no stock here; its revenue still counts.
    return qty if qty > 0 else ZERO


def to_event(tenant_id: uuid.UUID, entity: str, body: dict, mapper: ItemMapper, remap_seq: int = 0,
             operation: str | None = None) -> SaleUpserted | SaleRemoved:
    if is_voided(body, operation):
        return SaleRemoved(tenant_id=tenant_id, occurred_at=datetime.now(timezone.utc), source="quickbooks",
                           sale_type=SALE_TYPES[entity], external_id=str(body["Id"]), reason="voided",
                           version=version_of(body.get("SyncToken", 0), remap_seq))
    return upserted(tenant_id, entity, body, mapper, remap_seq)


def upserted(tenant_id: uuid.UUID, entity: str, body: dict, mapper: ItemMapper, remap_seq: int = 0) -> SaleUpserted:
    """The entity's content as a new version (also for a voided one: its date, number and customer stay)."""
    sale_type = SALE_TYPES[entity]
    version = version_of(body.get("SyncToken", 0), remap_seq)
    now = datetime.now(timezone.utc)
    rate = dec(body.get("ExchangeRate")) or Decimal(1)
    items = list(_item_lines(body))
    amounts = [dec(line.get("Amount")) or ZERO for _, line in items]
    with wide():
        gross = sum(amounts, ZERO)
        discount = _discount(body, gross)
        shares = _spread(discount, amounts, gross)
        lines = []
        for n, ((detail, line), amount, share) in enumerate(zip(items, amounts, shares), start=1):
            ref = detail.get("ItemRef") or {}
            mapped = mapper.map(ref.get("value"), ref.get("name"))
            lines.append(SaleLine(line_no=n, sku=mapped.sku, kind=mapped.kind,
                                  description=line.get("Description") or ref.get("name"),
                                  quantity=_quantity(detail, amount), revenue=(amount - share) * rate))
    meta = body.get("MetaData") or {}
    created = parse_time(meta.get("CreateTime")) or parse_time(meta.get("LastUpdatedTime")) or now
    return SaleUpserted(
        tenant_id=tenant_id, occurred_at=now, source="quickbooks", sale_type=sale_type, external_id=str(body["Id"]),
        version=version, doc_number=body.get("DocNumber"), txn_date=date.fromisoformat(body["TxnDate"]),
        source_created_at=created, customer=(body.get("CustomerRef") or {}).get("name"),
        currency=(body.get("CurrencyRef") or {}).get("value"), exchange_rate=rate if rate != 1 else None,
        lines=lines)


def removed(tenant_id: uuid.UUID, entity: str, entity_id: str) -> SaleRemoved:
    return SaleRemoved(tenant_id=tenant_id, occurred_at=datetime.now(timezone.utc), source="quickbooks",
                       sale_type=SALE_TYPES[entity], external_id=entity_id, reason="deleted")


def _spread(discount: Decimal, amounts: list[Decimal], gross: Decimal) -> list[Decimal]:
    if not discount or not gross or not amounts:
        return [ZERO] * len(amounts)
    shares = [(discount * a / gross).quantize(_SHARE, rounding=ROUND_HALF_EVEN) for a in amounts[:-1]]
    return shares + [discount - sum(shares, ZERO)]

"""A QuickBooks sales entity (Invoice, SalesReceipt, CreditMemo) as a normalized
sales event of the costing engine.

* Lines: ``SalesItemLineDetail`` at the top level and inside ``GroupLineDetail``
  bundles, numbered in document order; ``SubTotalLineDetail`` and
  ``DescriptionOnly`` carry no money.
* A ``DiscountLineDetail`` applies to the item lines **above it** (docs/quickbooks-api.md §2.4a:
  Subtotal → Discount → tax → Shipping), never to shipping (``ItemRef``
  ``SHIPPING_ITEM_ID``): its amount (or ``DiscountPercent`` of those lines) is
  spread over them in proportion to their amounts, each share rounded
  half-even to 6 places and the remainder on the last of them, so the shares
  add up to the discount exactly. A discount with no item line above it
  applies to every non-shipping item line.
* Quantities: ``Qty`` as sent, or ``Amount / UnitPrice`` when ``Qty`` is
  absent (1 when neither is there and the line has an amount), quantized to the
  engine's 6 decimal places with ROUND_HALF_EVEN (the one rounding rule; more
  places are rounded, never rejected). Revenue always comes from ``Amount``,
  never from quantity × price.
* Void: the operation is ``Void`` (webhook or a re-emission of a sale recorded
  as voided), or the entity carries ``status: "Voided"`` (XSD marker, possible in
  CDC), or the read-back has a "Void…" note and zero amounts.
* Tax is excluded: the line ``Amount`` is the net amount in all three
  ``GlobalTaxCalculation`` modes (``TaxInclusiveAmt`` carries the gross).
* Revenue is converted to the home currency with ``ExchangeRate``.
* ``TxnDate`` is the FIFO date, ``MetaData.CreateTime`` the tie-breaker.
* Version = SyncToken × 1,000,000 + remap sequence, so a re-mapping of the same
  SyncToken is a newer version and a new SyncToken is newer still. This is the
  internal ordering key only: the query API presents it split back into the
  SyncToken and the re-map counter (``split_version``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from services.ingest.qbo.deliveries import parse_time
from services.ingest.qbo.mapping import SHIPPING_ITEM_ID, ItemMapper
from shared.events import SaleLine, SaleRemoved, SaleType, SaleUpserted
from shared.money import ZERO, wide

SALE_TYPES: dict[str, SaleType] = {"Invoice": "invoice", "SalesReceipt": "sales_receipt", "CreditMemo": "credit_memo"}
VERSION_STRIDE = 1_000_000
_SHARE = Decimal("0.000001")
QTY_PLACES = Decimal("0.000001")  # the engine's quantity precision (shared.money.INPUT_PLACES)


def version_of(sync_token: str | int, remap_seq: int = 0) -> int:
    return int(sync_token) * VERSION_STRIDE + remap_seq


def split_version(version: int | None) -> tuple[int | None, int | None]:
    """(SyncToken, re-map counter) of an internal QuickBooks version."""
    if version is None:
        return None, None
    return divmod(int(version), VERSION_STRIDE)


def dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def is_voided(body: dict[str, Any], operation: str | None = None) -> bool:
    """Void: the webhook (or a stored void) says so, the entity carries the ``Voided``
    status marker, or the read-back has a 'Void…' note and zero amounts."""
    if operation == "Void" or str(body.get("status") or "").lower() == "voided":
        return True
    note = str(body.get("PrivateNote") or "").lstrip().lower()
    zero = (dec(body.get("TotalAmt")) or ZERO) == 0 and all(
        (dec(line.get("Amount")) or ZERO) == 0 for line in body.get("Line") or []
    )
    return note.startswith("void") and zero


def item_ids(body: dict[str, Any]) -> list[str]:
    return sorted(
        {
            detail["ItemRef"]["value"]
            for detail, _ in _item_lines(body)
            if isinstance(detail.get("ItemRef"), dict) and detail["ItemRef"].get("value")
        }
    )


def _item_lines(
    body: dict[str, Any], positions: list[int] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(SalesItemLineDetail, line) pairs, bundles unrolled, in document order (``positions``
    receives each one's top-level line index)."""
    for at, line in enumerate(body.get("Line") or []):
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            if positions is not None:
                positions.append(at)
            yield line.get("SalesItemLineDetail") or {}, line
        elif kind == "GroupLineDetail":
            for inner in (line.get("GroupLineDetail") or {}).get("Line") or []:
                if inner.get("DetailType") == "SalesItemLineDetail":
                    if positions is not None:
                        positions.append(at)
                    yield inner.get("SalesItemLineDetail") or {}, inner


def _is_shipping(detail: dict[str, Any]) -> bool:
    return (detail.get("ItemRef") or {}).get("value") == SHIPPING_ITEM_ID


def _discount_shares(
    body: dict[str, Any], amounts: list[Decimal], shipping: list[bool], positions: list[int]
) -> list[Decimal]:
    """Each item line's share of the document's discounts (see the module docstring)."""
    shares = [ZERO] * len(amounts)
    for at, line in enumerate(body.get("Line") or []):
        if line.get("DetailType") != "DiscountLineDetail":
            continue
        detail = line.get("DiscountLineDetail") or {}
        over = [i for i, pos in enumerate(positions) if pos < at and not shipping[i]] or [
            i for i in range(len(amounts)) if not shipping[i]
        ]
        base = sum((amounts[i] for i in over), ZERO)
        amount = dec(line.get("Amount"))
        percent = dec(detail.get("DiscountPercent"))
        if amount is None and detail.get("PercentBased") and percent is not None:
            amount = base * percent / 100
        # _spread returns one share per amount it is given.
        for i, share in zip(over, _spread(abs(amount or ZERO), [amounts[i] for i in over], base), strict=True):
            shares[i] += share
    return shares


def _quantity(detail: dict[str, Any], amount: Decimal) -> Decimal:
    qty, price = dec(detail.get("Qty")), dec(detail.get("UnitPrice"))
    if qty is None:
        qty = amount / price if price else Decimal(1) if amount else ZERO
    qty = qty.quantize(QTY_PLACES, rounding=ROUND_HALF_EVEN)
    # A negative quantity (a return keyed on an invoice) moves no stock here; its revenue still counts.
    return qty if qty > 0 else ZERO


def to_event(
    tenant_id: uuid.UUID,
    entity: str,
    body: dict[str, Any],
    mapper: ItemMapper,
    remap_seq: int = 0,
    operation: str | None = None,
) -> SaleUpserted | SaleRemoved:
    if is_voided(body, operation):
        return SaleRemoved(
            tenant_id=tenant_id,
            occurred_at=datetime.now(UTC),
            source="quickbooks",
            sale_type=SALE_TYPES[entity],
            external_id=str(body["Id"]),
            reason="voided",
            version=version_of(body.get("SyncToken", 0), remap_seq),
        )
    return upserted(tenant_id, entity, body, mapper, remap_seq)


def upserted(
    tenant_id: uuid.UUID, entity: str, body: dict[str, Any], mapper: ItemMapper, remap_seq: int = 0
) -> SaleUpserted:
    """The entity's content as a new version (also for a voided one: its date, number and customer stay)."""
    sale_type = SALE_TYPES[entity]
    version = version_of(body.get("SyncToken", 0), remap_seq)
    now = datetime.now(UTC)
    rate = dec(body.get("ExchangeRate")) or Decimal(1)
    positions: list[int] = []
    items = list(_item_lines(body, positions))
    amounts = [dec(line.get("Amount")) or ZERO for _, line in items]
    with wide():
        shares = _discount_shares(body, amounts, [_is_shipping(d) for d, _ in items], positions)
        lines = []
        for n, ((detail, line), amount, share) in enumerate(zip(items, amounts, shares, strict=True), start=1):
            ref = detail.get("ItemRef") or {}
            mapped = mapper.map(ref.get("value"), ref.get("name"))
            description = line.get("Description") or ("Shipping" if mapped.kind == "shipping" else ref.get("name"))
            lines.append(
                SaleLine(
                    line_no=n,
                    sku=mapped.sku,
                    kind=mapped.kind,
                    description=description,
                    quantity=_quantity(detail, amount),
                    revenue=(amount - share) * rate,
                )
            )
    meta = body.get("MetaData") or {}
    created = parse_time(meta.get("CreateTime")) or parse_time(meta.get("LastUpdatedTime")) or now
    return SaleUpserted(
        tenant_id=tenant_id,
        occurred_at=now,
        source="quickbooks",
        sale_type=sale_type,
        external_id=str(body["Id"]),
        version=version,
        doc_number=body.get("DocNumber"),
        txn_date=date.fromisoformat(body["TxnDate"]),
        source_created_at=created,
        customer=(body.get("CustomerRef") or {}).get("name"),
        currency=(body.get("CurrencyRef") or {}).get("value"),
        exchange_rate=rate if rate != 1 else None,
        lines=lines,
    )


def removed(tenant_id: uuid.UUID, entity: str, entity_id: str) -> SaleRemoved:
    return SaleRemoved(
        tenant_id=tenant_id,
        occurred_at=datetime.now(UTC),
        source="quickbooks",
        sale_type=SALE_TYPES[entity],
        external_id=entity_id,
        reason="deleted",
    )


def _spread(discount: Decimal, amounts: list[Decimal], gross: Decimal) -> list[Decimal]:
    if not discount or not gross or not amounts:
        return [ZERO] * len(amounts)
    shares = [(discount * a / gross).quantize(_SHARE, rounding=ROUND_HALF_EVEN) for a in amounts[:-1]]
    return [*shares, discount - sum(shares, ZERO)]

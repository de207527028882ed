"""A seeded random history of one tenant for broker-level tests (many events on
few products, so consumers contend): lots, sales with backdating, edits, voids,
deletes and credit memos. Hypothesis drives the smaller property tests."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.events import (
    LotCorrected,
    LotReceived,
    ProductUpserted,
    SaleLine,
    SaleRemoved,
    SaleUpserted,
    dump_event,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def history(tenant_id: uuid.UUID, seed: int, sales: int = 60, skus=("A", "B")) -> list:
    rnd = random.Random(seed)
    now = T0
    events: list = [
        ProductUpserted(tenant_id=tenant_id, occurred_at=now, sku=s, name=f"Product {s}", version=1) for s in skus
    ]
    for n in range(sales // 4):
        sku = rnd.choice(skus)
        events.append(
            LotReceived(
                tenant_id=tenant_id,
                occurred_at=now,
                sku=sku,
                lot_number=f"L{n:03d}",
                quantity=Decimal(rnd.randint(1, 8)),
                unit_cost=Decimal(rnd.randint(100, 900)) / 100,
                received_at=T0 + timedelta(days=rnd.randint(0, 60)),
            )
        )
        if rnd.random() < 0.2:
            lot = events[-1]
            events.append(
                LotCorrected(
                    tenant_id=tenant_id,
                    occurred_at=now,
                    sku=lot.sku,
                    lot_number=lot.lot_number,
                    quantity=lot.quantity + 1,
                    unit_cost=lot.unit_cost,
                    received_at=lot.received_at,
                    version=2,
                )
            )
    for n in range(sales):
        sale_type = "credit_memo" if rnd.random() < 0.1 else rnd.choice(["invoice", "sales_receipt"])
        lines = [
            SaleLine(
                line_no=i + 1,
                sku=rnd.choice(skus),
                quantity=Decimal(rnd.randint(1, 30)) / 10,
                revenue=Decimal(rnd.randint(100, 5000)) / 100,
            )
            for i in range(rnd.randint(1, 3))
        ]
        base = dict(tenant_id=tenant_id, occurred_at=now, source="manual", sale_type=sale_type, external_id=f"S{n:03d}")
        txn = date(2026, 1, 1) + timedelta(days=rnd.randint(0, 60))
        created = T0 + timedelta(minutes=n)
        events.append(SaleUpserted(**base, version=1, txn_date=txn, source_created_at=created, lines=lines))
        roll = rnd.random()
        if roll < 0.15:
            edited = [line.model_copy(update={"quantity": line.quantity + 1}) for line in lines]
            events.append(
                SaleUpserted(
                    **base,
                    version=2,
                    txn_date=txn - timedelta(days=rnd.randint(0, 5)),
                    source_created_at=created,
                    lines=edited,
                )
            )
        elif roll < 0.25:
            events.append(SaleRemoved(**base, reason=rnd.choice(["voided", "deleted"]), version=2))
    return events


LOG = """
INSERT INTO event_log (event_id, tenant_id, event_type, source, occurred_at, body)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[])"""


async def log_events(pool, events: list) -> None:
    """Write ``events`` into the event log as ingest would have (the rebuild's input)."""
    await pool.execute(
        LOG,
        [e.event_id for e in events],
        [e.tenant_id for e in events],
        [e.event_type for e in events],
        [getattr(e, "source", "manual") for e in events],
        [e.occurred_at for e in events],
        [dump_event(e) for e in events],
    )

"""The costing consumer on the real broker: outcomes and acknowledgements. Crashes and
parallel consumer processes are fault scenarios: tests/faults/."""

from __future__ import annotations

import asyncio
import random

import aio_pika
import pytest

from services.costing.main import running_consumer
from shared import broker
from tests.conftest import queue_counts, settings_for, wait_for
from tests.histories import history
from tests.invariants import assert_invariants, violations
from tests.projection import project
from tests.reference_model import compute


async def processed(pool, tenant_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM processed_events WHERE tenant_id = $1", tenant_id)


async def publish_all(topology, events) -> None:
    for event in events:
        await broker.publish_event(topology.exchange, event)


async def test_poison_message_is_dead_lettered_with_reason_and_the_next_one_applies(
    pool, database_url, tenant_id, topology, broker_prefix
):
    events = history(tenant_id, seed=1, sales=4)
    async with running_consumer(settings_for(database_url, broker_prefix)):
        poison = aio_pika.Message(
            b'{"event_type": "lot.received", "quantity": "NaN"', message_id="poison", headers={"event_id": "not-a-uuid"}
        )
        await broker.publish_raw(topology.exchange, "lot.received", poison)
        await publish_all(topology, events)
        await wait_for(lambda: _count_is(pool, tenant_id, len(events)))
        parked = await wait_for(lambda: topology.dead_letters.get(fail=False, no_ack=True))
    assert parked.body == poison.body
    assert parked.headers["x-error"].startswith("invalid event:")
    assert parked.headers["x-original-routing-key"] == "lot.received"
    assert await project(pool, tenant_id) == compute(events)
    reason = await pool.fetchval("SELECT reason FROM dead_letters WHERE body = $1", poison.body)
    assert reason.startswith("invalid event")


async def test_event_that_contradicts_the_facts_is_dead_lettered(
    pool, database_url, tenant_id, topology, broker_prefix
):
    from shared.events import LotReceived, SaleLine, SaleUpserted
    from tests.histories import T0

    credit = SaleUpserted(
        tenant_id=tenant_id,
        occurred_at=T0,
        source="manual",
        sale_type="credit_memo",
        external_id="C1",
        version=1,
        txn_date=T0.date(),
        source_created_at=T0,
        lines=[SaleLine(line_no=1, sku="A", quantity=1, revenue=5)],
    )
    clash = LotReceived(
        tenant_id=tenant_id,
        occurred_at=T0,
        sku="A",
        lot_number="RET-manual-C1-1",
        quantity=1,
        unit_cost=1,
        received_at=T0,
    )
    async with running_consumer(settings_for(database_url, broker_prefix)):
        await publish_all(topology, [credit, clash])
        await wait_for(lambda: _count_is(pool, tenant_id, 1))
        parked = await wait_for(lambda: topology.dead_letters.get(fail=False, no_ack=True))
    # Whichever of the two arrives second contradicts the first and is parked; the other applies.
    assert parked.headers["event_id"] in (str(clash.event_id), str(credit.event_id))
    assert "return lot" in parked.headers["x-error"]
    assert await topology.dead_letters.get(fail=False, no_ack=True) is None


async def test_a_contradiction_inside_a_group_parks_only_that_message(
    pool, database_url, tenant_id, topology, broker_prefix, costing
):
    """Messages already queued are applied as one group; when the group fails, it is applied
    again one message at a time, so the culprit alone is dead-lettered."""
    from shared.events import LotReceived, ProductUpserted, SaleLine, SaleUpserted
    from tests.histories import T0

    def sale(external_id: str, sale_type: str = "invoice") -> SaleUpserted:
        return SaleUpserted(
            tenant_id=tenant_id,
            occurred_at=T0,
            source="manual",
            sale_type=sale_type,
            external_id=external_id,
            version=1,
            txn_date=T0.date(),
            source_created_at=T0,
            lines=[SaleLine(line_no=1, sku="A", quantity=1, revenue=5)],
        )

    await costing.apply(ProductUpserted(tenant_id=tenant_id, occurred_at=T0, sku="A", name="A", version=1))
    await costing.apply(
        LotReceived(
            tenant_id=tenant_id,
            occurred_at=T0,
            sku="A",
            lot_number="RET-manual-C1-1",
            quantity=10,
            unit_cost=2,
            received_at=T0,
        )
    )
    first, credit, second = sale("S1"), sale("C1", "credit_memo"), sale("S2")
    await publish_all(topology, [first, credit, second])  # queued before the consumer starts: one batch
    async with running_consumer(settings_for(database_url, broker_prefix)):
        await wait_for(lambda: _count_is(pool, tenant_id, 4))
        parked = await wait_for(lambda: topology.dead_letters.get(fail=False, no_ack=True))
    assert parked.headers["event_id"] == str(credit.event_id)
    assert "clashes with a received lot" in parked.headers["x-error"]
    costs = dict(await pool.fetch("SELECT external_id, cost FROM sales WHERE tenant_id = $1", tenant_id))
    assert costs == {"S1": 2, "S2": 2}


async def test_worker_outlives_a_batch_that_breaks_off(pool, database_url, tenant_id, topology, broker_prefix):
    """A batch that raises past the message outcomes (here: parking a poison message fails
    once) is requeued and the worker carries on: the poison is parked on redelivery and
    the events behind it apply."""
    events = history(tenant_id, seed=3, sales=3)
    async with running_consumer(settings_for(database_url, broker_prefix)) as (consumer, _app, _topology):
        park = consumer.dead_letter
        failures = []

        async def dead_letter_failing_once(message, reason):
            if not failures:
                failures.append(reason)
                raise RuntimeError("broker gone while parking")
            await park(message, reason)

        consumer.dead_letter = dead_letter_failing_once
        poison = aio_pika.Message(b"not json", headers={"event_id": "poison"})
        await broker.publish_raw(topology.exchange, "sale.upserted", poison)
        await publish_all(topology, events)
        await wait_for(lambda: _count_is(pool, tenant_id, len(events)))
        parked = await wait_for(lambda: topology.dead_letters.get(fail=False, no_ack=True))
    assert failures and failures[0].startswith("invalid event")
    assert parked.body == b"not json"
    assert await project(pool, tenant_id) == compute(events)


async def test_a_group_is_acknowledged_in_one_frame_and_nothing_stays_unacknowledged(
    pool, database_url, tenant_id, topology, broker_prefix, monkeypatch
):
    import aiormq.channel

    acks: list[tuple[int, bool]] = []
    basic_ack = aiormq.channel.Channel.basic_ack

    async def counting_ack(self, delivery_tag, multiple=False, **kwargs):
        acks.append((delivery_tag, multiple))
        return await basic_ack(self, delivery_tag, multiple=multiple, **kwargs)

    monkeypatch.setattr(aiormq.channel.Channel, "basic_ack", counting_ack)
    facts = history(tenant_id, seed=5, sales=40)
    events = [e for e in facts if e.event_type == "sale.upserted"]
    setup = [e for e in facts if e.event_type != "sale.upserted"]
    async with running_consumer(settings_for(database_url, broker_prefix)):
        await publish_all(topology, setup)
        await wait_for(lambda: _count_is(pool, tenant_id, len(setup)))
        acks.clear()
        await publish_all(topology, events)
        await wait_for(lambda: _count_is(pool, tenant_id, len(setup) + len(events)))
    # Closing the consumer's connection requeues any message left unacknowledged.
    await asyncio.sleep(0.5)
    assert (await queue_counts(topology)).message_count == 0
    assert all(multiple for _, multiple in acks)
    assert len(acks) < len(events)


async def _count_is(pool, tenant_id, n):
    return await processed(pool, tenant_id) == n


@pytest.mark.usefixtures("tail_recost")
async def test_concurrent_applies_on_one_product_keep_invariants(pool, tenant_id, costing):
    """Many transactions on the same products at once (no broker): row locks serialize them
    (tails re-costed in Python, then in the database)."""
    events = history(tenant_id, seed=5, sales=60)
    products = [e for e in events if e.event_type == "product.upserted"]
    rest = [e for e in events if e.event_type != "product.upserted"]
    for event in products:
        await costing.apply(event)
    random.Random(6).shuffle(rest)
    results = await asyncio.gather(*(costing.apply(e) for e in rest + rest[:10]))
    assert sum(results) == len(rest)  # every event applied once, the duplicates not at all
    assert_invariants(await violations(pool, tenant_id))
    assert await project(pool, tenant_id) == compute(events)

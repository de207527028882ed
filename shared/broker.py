"""RabbitMQ topology and publishing (aio-pika), declared in code.

* ``<prefix>.events``: durable topic exchange; routing key = event type.
* ``<prefix>.costing``: durable quorum queue bound to it with ``#``; an explicit
  delivery limit (RabbitMQ 3.10 sets none, 4.x defaults to 20: ours applies on both), dead-lettering at-least-once to
* ``<prefix>.dlx`` → ``<prefix>.costing.dlq``: where messages the consumer gives
  up on are parked, with the reason in the ``x-error`` header.

Publishing uses publisher confirms, ``mandatory`` (an unroutable message raises)
and a timeout; messages are persistent with a fresh ``message_id`` per attempt
and the business key (event id) in a header.

A broker URL may list every node of a cluster, comma-separated (AMQP_URL): a connection
goes to the first node that answers and, when that node is lost, round the list to the
next (the quorum queues live on every node; tests/integration/test_rabbitmq_cluster.py).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    FieldValue,
    HeadersType,
)
from aio_pika.robust_connection import RobustConnection
from yarl import URL

from shared.events import EventBase, dump_event
from shared.settings import url_list


@dataclass(frozen=True)
class Names:
    prefix: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def costing_queue(self) -> str:
        return f"{self.prefix}.costing"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.costing.dlq"


@dataclass
class Topology:
    names: Names
    exchange: AbstractExchange
    costing: AbstractQueue
    dead_letter_exchange: AbstractExchange
    dead_letters: AbstractQueue


class RoundRobinConnection(RobustConnection):
    """A robust connection to one of several nodes (``URLS``, set on a subclass per list,
    see ``connect``). aio-pika reads ``url`` once per connection attempt (and once in
    ``__init__``); here each read is the next node of the list, so the attempts after a
    node is lost go round the others."""

    URLS: tuple[URL, ...] = ()

    def __init__(self, url: Any, *args: Any, **kwargs: Any):
        self._urls = list(self.URLS) or [URL(str(url))]
        self._turn = itertools.cycle(range(len(self._urls)))
        self._current = self._urls[0]
        super().__init__(url, *args, **kwargs)
        self._turn = itertools.cycle(range(len(self._urls)))  # __init__ read one: the first attempt is the first node

    @property
    def url(self) -> URL:
        self._current = self._urls[next(self._turn)]
        return self._current

    @url.setter
    def url(self, value: URL) -> None:  # aio-pika sets it in __init__ and on update_secret
        if value.password is not None:
            self._urls = [u.with_password(value.password) for u in self._urls]

    def __str__(self) -> str:
        url = self._current
        return str(url.with_password("******") if url.password else url)


async def _answers(url: str) -> bool:
    """True if the node's AMQP port accepts a TCP connection (within 2 s)."""
    parsed = URL(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parsed.host, parsed.port or 5672), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _from_a_live_node(urls: list[str]) -> list[str]:
    """The list turned so that a node that answers comes first (else unchanged)."""
    for n, url in enumerate(urls):
        if await _answers(url):
            return urls[n:] + urls[:n]
    return urls


#: Where a plain connection starts in the list: the next node each time (after a failure).
_plain_turn = itertools.count()


@overload
async def connect(url: str, robust: Literal[True] = True) -> AbstractRobustConnection: ...
@overload
async def connect(url: str, robust: bool) -> AbstractConnection: ...
async def connect(url: str, robust: bool = True) -> AbstractConnection:
    """A robust connection reconnects by itself (consumers); a plain one is for
    callers that handle reconnection themselves (the outbox relay). ``url``: one broker
    URL or several, comma-separated (the nodes of a cluster)."""
    properties: dict[str, FieldValue] = {"connection_name": "partsemble"}
    urls = url_list(url)
    if robust:
        if len(urls) == 1:
            return await aio_pika.connect_robust(urls[0], client_properties=properties, timeout=10)
        urls = await _from_a_live_node(urls)
        nodes = type("RoundRobinConnection", (RoundRobinConnection,), {"URLS": tuple(URL(u) for u in urls)})
        return await aio_pika.connect_robust(urls[0], client_properties=properties, timeout=10, connection_class=nodes)
    error: Exception | None = None
    start = next(_plain_turn) % len(urls)
    for candidate in urls[start:] + urls[:start]:
        try:
            return await aio_pika.connect(candidate, client_properties=properties, timeout=10)
        except Exception as exc:  # the next node
            error = exc
    raise error or ConnectionError("no broker URL")


async def open_channel(connection: AbstractConnection, prefetch: int = 0) -> AbstractChannel:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch:
        await channel.set_qos(prefetch_count=prefetch)
    return channel


async def declare(channel: AbstractChannel, names: Names, delivery_limit: int = 5) -> Topology:
    exchange = await channel.declare_exchange(names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(names.dead_letter_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dlq = await channel.declare_queue(names.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(dlx, "#")
    costing = await channel.declare_queue(
        names.costing_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": names.dead_letter_exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    await costing.bind(exchange, "#")
    return Topology(names, exchange, costing, dlx, dlq)


async def delete(channel: AbstractChannel, names: Names) -> None:
    """Delete the queues and exchanges of ``names`` (tests and benchmarks clean up with it)."""
    for queue in (names.costing_queue, names.dead_letter_queue):
        await channel.queue_delete(queue)
    for exchange in (names.exchange, names.dead_letter_exchange):
        await channel.exchange_delete(exchange)


def event_message(
    body: bytes,
    event_id: str,
    tenant_id: str,
    correlation_id: str | None,
    extra_headers: Mapping[str, FieldValue] | None = None,
) -> aio_pika.Message:
    headers: HeadersType = {"event_id": event_id, "tenant_id": tenant_id}
    if correlation_id:
        headers["correlation_id"] = correlation_id
    headers.update(extra_headers or {})
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        headers=headers,
    )


def republished(message: AbstractIncomingMessage, extra_headers: Mapping[str, FieldValue]) -> aio_pika.Message:
    """A new persistent message with the body, correlation id and headers of a received
    one, without the broker's ``x-`` headers (delivery count, deaths), plus ``extra_headers``."""
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
    headers.update(extra_headers)
    return event_message(
        message.body,
        str(headers.get("event_id", "")),
        str(headers.get("tenant_id", "")),
        message.correlation_id,
        headers,
    )


async def publish_raw(
    exchange: AbstractExchange,
    routing_key: str,
    message: aio_pika.Message,
    timeout: float = 10.0,  # noqa: ASYNC109 - aio-pika's own bound on the broker's confirm
) -> None:
    """Publish and wait for the broker's confirm; raises if unroutable, nacked or timed out."""
    await exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=timeout)


async def publish_event(
    exchange: AbstractExchange,
    event: EventBase,
    timeout: float = 10.0,  # noqa: ASYNC109 - aio-pika's own bound on the broker's confirm
) -> None:
    message = event_message(dump_event(event), str(event.event_id), str(event.tenant_id), event.correlation_id)
    await publish_raw(exchange, event.routing_key, message, timeout)

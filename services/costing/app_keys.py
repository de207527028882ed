"""Typed application keys of the costing service's app."""

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiohttp import web

from services.costing.consumer import CostingConsumer
from shared import broker
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", AbstractRobustConnection)
CHANNEL = web.AppKey("channel", AbstractChannel)
TOPOLOGY = web.AppKey("topology", broker.Topology)
CONSUMER = web.AppKey("consumer", CostingConsumer)
CONSUMER_TAG = web.AppKey("consumer_tag", str)
#: The broker's latest counts per queue name: (consumers, ready messages).
BROKER_STATS = web.AppKey("broker_stats", dict[str, tuple[int, int]])

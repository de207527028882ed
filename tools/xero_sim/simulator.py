"""The simulator's state in one object: organisations, tokens, throttle, webhooks, counters."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tools.sim_common.stats import Stats
from tools.xero_sim.config import SimConfig
from tools.xero_sim.payloads import Event
from tools.xero_sim.store import Change, Org, Store
from tools.xero_sim.throttle import Throttle
from tools.xero_sim.tokens import TokenStore
from tools.xero_sim.webhooks import WebhookSender


@dataclass
class ApiFaults:
    """Knobs of the Accounting API side (``POST /sim/api/config``)."""

    latency: float = 0.0
    fail_next: int = 0
    fail_status: int = 503


class Simulator:
    def __init__(self, config: SimConfig):
        self.config = config
        self.store = Store()
        self.stats = Stats()
        self.tokens = TokenStore(
            config.client_id, config.access_token_lifetime, config.refresh_token_lifetime, config.refresh_grace
        )
        self.throttle = Throttle(
            config.rate_per_minute,
            config.rate_per_day,
            config.max_concurrent,
            config.app_rate_per_minute,
            config.minute_window,
            config.day_window,
        )
        self.webhooks = WebhookSender(config, self.stats)
        self.api_faults = ApiFaults(latency=config.api_latency)

    def publish(self, changes: list[Change], notify: bool = True) -> None:
        if notify and changes:
            category = {"Invoice": "INVOICE", "CreditNote": "CREDITNOTE"}
            self.webhooks.enqueue(
                [Event(c.tenant, category[c.kind], c.doc_id, c.event_type, c.time, c.data) for c in changes]
            )

    def org(self, tenant_id: str) -> Org:
        from tools.xero_sim.demo import DEMO_TENANT_ID, demo_org

        if tenant_id == DEMO_TENANT_ID and tenant_id not in self.store.orgs:
            return demo_org(self.store)
        return self.store.org(tenant_id)


SIM = web.AppKey("xero_sim", Simulator)

"""The simulator's state in one object: companies, tokens, throttle, webhooks, counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from aiohttp import web

from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.payloads import Event
from tools.qbo_sim.store import Change, Company, Store
from tools.qbo_sim.throttle import Throttle
from tools.qbo_sim.tokens import TokenStore
from tools.qbo_sim.webhooks import WebhookSender
from tools.sim_common.stats import Stats


@dataclass
class ApiFaults:
    """Knobs of the QBO API side (``POST /sim/api/config``)."""

    latency: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    #: The next N CDC calls answer HTTP 200 with a Fault body: ``envelope`` (``{"Fault":…}``) or
    #: ``response`` (``{"CDCResponse":[{"Fault":…}]}``).
    cdc_fault_next: int = 0
    cdc_fault_in: str = "envelope"


class Simulator:
    def __init__(self, config: SimConfig):
        self.config = config
        self.store = Store(config.utc_offset)
        self.stats = Stats()
        self.tokens = TokenStore(config.access_token_lifetime, config.refresh_token_lifetime)
        self.throttle = Throttle(config.rate_per_minute, config.max_concurrent)
        self.webhooks = WebhookSender(config, self.stats)
        self.api_faults = ApiFaults(latency=config.api_latency)
        #: (realm, requestid) -> (status, body) of the first answer to a write (idempotent retries).
        self.request_ids: dict[tuple[str, str], tuple[int, str]] = {}

    @property
    def tz(self) -> timezone:
        return self.store.tz

    def publish(self, changes: list[Change], notify: bool = True) -> None:
        if notify and changes:
            self.webhooks.enqueue([Event(c.realm, c.entity, c.id, c.operation, c.time, c.deleted_id) for c in changes])

    def company(self, realm_id: str) -> Company:
        """A known company; the demo realm always exists (created with its data on first use)."""
        from tools.qbo_sim.demo import DEMO_REALM_ID

        if realm_id == DEMO_REALM_ID:
            return self.company_or_demo(realm_id)
        return self.store.company(realm_id)

    def company_or_demo(self, realm_id: str | None) -> Company:
        """The company for an OAuth consent: the given realm (created empty if new) or the demo one."""
        from tools.qbo_sim.demo import DEMO_REALM_ID, populate

        realm_id = realm_id or DEMO_REALM_ID
        company = self.store.companies.get(realm_id)
        if company is None:
            company = self.store.create_company(realm_id)
            if realm_id == DEMO_REALM_ID:
                populate(company)
        return company


SIM = web.AppKey("qbo_sim", Simulator)

"""The QBO webhook sender: CloudEvents or legacy bodies, the ``intuit-signature``, and the QBO-only faults;
batching, delivery and retries are ``tools.sim_common.webhooks``.

A delivery that is not answered with HTTP 200 within ``webhook_timeout`` is retried with the *same body*
(same CloudEvent ids); ``block_on_failure`` holds later deliveries back (Intuit: "you may not receive
subsequent events until you acknowledge the first").

Faults (``POST /sim/webhooks/config``): the shared ``duplicate``, ``reorder``, ``delay_seconds``, ``drop``,
``drop_next``, ``hold``, ``url``, ``seed``; and ``format``, ``void_type``, ``block_on_failure``,
``content_type``, ``bad_signature`` (sign with a wrong key).
"""

from __future__ import annotations

from typing import Any, Literal

from shared.logging import get_logger
from tools.qbo_sim import payloads
from tools.qbo_sim.config import SimConfig
from tools.qbo_sim.payloads import Event
from tools.sim_common.stats import Stats
from tools.sim_common.webhooks import Delivery, DeliveryFaults
from tools.sim_common.webhooks import WebhookSender as _Sender

log = get_logger("qbo_sim.webhooks")


class WebhookFaults(DeliveryFaults):
    format: Literal["cloudevents", "legacy"] = "cloudevents"
    void_type: Literal["voided", "void"] = "voided"
    hold: bool = False
    block_on_failure: bool = False
    content_type: str | None = None
    bad_signature: bool = False
    url: str | None = None
    seed: int | None = None


class WebhookSender(_Sender[Event, WebhookFaults]):
    task_name = "qbo-sim-webhooks"

    def __init__(self, config: SimConfig, stats: Stats):
        super().__init__(config, stats, WebhookFaults(format=config.webhook_format, void_type=config.void_type), log)
        self.config: SimConfig = config
        self._source = payloads.source_for(config.client_id)

    def account_of(self, event: Event) -> str:
        return event.realm

    def _dropped(self, event: Event, reason: str) -> dict[str, Any]:
        return {
            "dropped": event.id,
            "realm": event.realm,
            "entity": event.entity,
            "entity_id": event.entity_id,
            "operation": event.operation,
        }

    def _block_on_failure(self) -> bool:
        return self.faults.block_on_failure

    def _prepare(self, batch: list[Event]) -> Delivery[Event]:
        faults = self.faults
        if faults.reorder:
            batch = list(batch)
            self._random.shuffle(batch)
        body = payloads.encode(batch, faults.format, faults.void_type, self._source)
        key = self.config.verifier_token + ("-wrong" if faults.bad_signature else "")
        content_type = faults.content_type or "application/json"
        headers = {
            "Content-Type": content_type,
            "intuit-signature": payloads.sign(body, key),
            "User-Agent": "Intuit-Webhooks-Simulator/1.0",
        }
        realms = self._accounts(batch)
        summary = {"format": faults.format, "event_ids": [e.id for e in batch], "realms": sorted(realms)}
        return Delivery(batch, body, self.url, headers, realms, summary)

    def _abandoned(self, delivery: Delivery[Event], attempts: int) -> None:
        log.warning("webhook delivery abandoned", attempts=attempts, event_ids=[e.id for e in delivery.events])

    def _failed(self, entry: dict[str, Any], attempt: int) -> None:
        log.info("webhook delivery failed", attempt=attempt, status=entry.get("status"), error=entry.get("error"))

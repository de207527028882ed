"""The Xero webhook sender: app-wide sequence numbers, the ``x-xero-signature``, the "intent to receive"
handshake; batching, delivery, retries and the shared faults are ``tools.sim_common.webhooks``.

Events within ``webhook_batch_window`` seconds go out in one POST (≤ ``webhook_batch_max`` events; several
tenants may share a POST — Xero sends one app-wide stream, docs/xero.md §2.6). Sequence numbers are app-wide and
increase by one per event. A delivery not answered 200 within ``webhook_timeout`` is retried with the same body
after the gaps of ``webhook_retry_schedule`` (the last gap repeats), up to ``webhook_max_attempts``.

Faults (``POST /sim/webhooks/config``): ``duplicate`` (probability a delivered batch is sent again),
``reorder`` (shuffle each batch), ``drop`` (probability an event is never sent), ``drop_next`` (drop the next
N events), ``delay_seconds``, ``hold`` (queue until released), ``bad_signature``, ``url``, ``seed``.

``intent_to_receive()`` sends Xero's handshake: a correctly signed and an incorrectly signed empty-events POST
(in random order); the endpoint passes when it answers 401 to the bad one and 200 with an empty body to the good
one. With ``require_itr`` no events are delivered (they are dropped) until a handshake has passed.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from shared.logging import get_logger
from tools.sim_common.stats import Stats
from tools.sim_common.webhooks import Delivery, DeliveryFaults
from tools.sim_common.webhooks import WebhookSender as _Sender
from tools.xero_sim import payloads
from tools.xero_sim.config import SimConfig
from tools.xero_sim.payloads import Event

log = get_logger("xero_sim.webhooks")


class WebhookFaults(DeliveryFaults):
    hold: bool = False
    bad_signature: bool = False
    url: str | None = None
    seed: int | None = None


class WebhookSender(_Sender[Event, WebhookFaults]):
    task_name = "xero-sim-webhooks"

    def __init__(self, config: SimConfig, stats: Stats):
        super().__init__(config, stats, WebhookFaults(), log)
        self.config: SimConfig = config
        #: ``OK`` after a passed handshake, ``FAILED`` after a failed one, else ``UNVERIFIED`` (portal status).
        self.status = "UNVERIFIED"
        self._sequence = 0

    def account_of(self, event: Event) -> str:
        return event.tenant

    def _drop_reason(self, event: Event) -> str | None:
        if self.config.require_itr and self.status != "OK":
            return "webhook not verified (intent to receive)"
        return super()._drop_reason(event)

    def _dropped(self, event: Event, reason: str) -> dict[str, Any]:
        return {
            "dropped": event.id,
            "reason": reason,
            "tenant": event.tenant,
            "category": event.category,
            "resource_id": event.resource_id,
            "event_type": event.event_type,
        }

    def _headers(self, body: bytes, bad: bool) -> dict[str, str]:
        key = self.config.webhook_key + ("-wrong" if bad else "")
        return {
            "Content-Type": "application/json; charset=utf-8",
            "x-xero-signature": payloads.sign(body, key),
            "User-Agent": "Xero-Webhooks-Simulator/1.0",
        }

    def _prepare(self, batch: list[Event]) -> Delivery[Event]:
        first = self._sequence + 1
        self._sequence += len(batch)
        if self.faults.reorder:
            batch = list(batch)
            self._random.shuffle(batch)
        body = payloads.encode(batch, first, self._sequence, self._random)
        tenants = self._accounts(batch)
        summary = {
            "event_ids": [e.id for e in batch],
            "resource_ids": [e.resource_id for e in batch],
            "tenants": sorted(tenants),
        }
        return Delivery(batch, body, self.url, self._headers(body, self.faults.bad_signature), tenants, summary)

    # --- intent to receive --------------------------------------------------------------
    async def intent_to_receive(self, url: str | None = None, rounds: int = 1) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        target = url or self.url
        plan = [good for _ in range(rounds) for good in (True, False)]
        self._random.shuffle(plan)
        results = []
        for good in plan:
            body = payloads.intent_to_receive(self._random)
            result: dict[str, Any] = {"signature": "good" if good else "bad"}
            try:
                async with self._session.post(target, data=body, headers=self._headers(body, not good)) as response:
                    text = await response.read()
                    result["status"] = response.status
                    result["body_empty"] = not text
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            expected = 200 if good else 401
            result["passed"] = result.get("status") == expected and (not good or result.get("body_empty", False))
            results.append(result)
        passed = all(r["passed"] for r in results)
        self.status = "OK" if passed else "FAILED"
        self.log.append({"intent_to_receive": results, "passed": passed, "at": time.time()})
        return {"passed": passed, "status": self.status, "results": results}

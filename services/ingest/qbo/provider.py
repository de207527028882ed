"""QuickBooks Online as a ``SalesChannelProvider`` (services/ingest/channels/provider.py):
Intuit's webhook signature and formats, entity reads, CDC (completed by the query endpoint
when full, replaced by it beyond 30 days), the normalization rules of ``normalize.py``,
Intuit's OAuth and its limits (500 requests/minute, 10 concurrent per realm)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ingest.channels.mapping import Item, ItemMapper, Product
from services.ingest.channels.provider import ChangeFeed, ItemVersion, OAuthApi, ParsedDelivery, RateLimits
from services.ingest.qbo import normalize
from services.ingest.qbo.client import QboClient
from services.ingest.qbo.deliveries import parse_time, read_delivery
from services.ingest.qbo.signature import verify
from shared.events import EventBase, SaleRemoved, SaleUpserted
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("qbo.sync")
SALES_ENTITIES = ("Invoice", "SalesReceipt", "CreditMemo")
CDC_ENTITIES = ["Item", *SALES_ENTITIES]
CDC_LIMIT = 1000
CDC_REACH = timedelta(days=30)


class QuickBooksProvider:
    name = "quickbooks"
    label = "QuickBooks"
    account_noun = "company"
    key = "qbo"
    sales_entities: tuple[str, ...] = SALES_ENTITIES
    item_entity = "Item"
    feed_entities: tuple[str, ...] = tuple(CDC_ENTITIES)
    webhook_path = "/webhooks/quickbooks"
    max_since_days = 30

    def __init__(
        self, settings: Settings | None = None, client: QboClient | None = None, oauth: OAuthApi | None = None
    ):
        """``settings``/``client``/``oauth`` None: the rules only (normalization, mapping),
        e.g. for the catalog listener; reading or connecting then fails."""
        self.settings = settings or Settings.model_construct()
        self._client = client
        self._oauth = oauth
        self.rate_limits = RateLimits(self.settings.qbo_rate_per_minute, self.settings.qbo_max_concurrent)
        self.initial_import_days = self.settings.qbo_initial_import_days

    @property
    def client(self) -> QboClient:
        if self._client is None:
            raise RuntimeError("this QuickBooksProvider has no API client")
        return self._client

    @property
    def oauth(self) -> OAuthApi:
        if self._oauth is None:
            raise RuntimeError("this QuickBooksProvider has no OAuth client")
        return self._oauth

    # --- webhooks -----------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify(body, headers.get("intuit-signature"), self.settings.qbo_webhook_verifier_token)

    def parse_webhook(self, body: bytes) -> ParsedDelivery:
        return read_delivery(body)

    # --- reading --------------------------------------------------------------------------
    async def read(self, account: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        return await self.client.read(account, entity, entity_id)

    async def changes_since(self, account: str, since: datetime) -> ChangeFeed:
        """CDC (≤ 30 days, ≤ 1000 objects: when full, the query endpoint completes it);
        beyond CDC's reach the query endpoint (which does not report deletions)."""
        now = datetime.now(UTC)
        server_time = now
        if now - since < CDC_REACH:
            changed, time_text = await self.client.cdc(account, CDC_ENTITIES, since)
            server_time = parse_time(time_text) or now
            if sum(len(v) for v in changed.values()) >= CDC_LIMIT:  # full: complete it with the query endpoint
                log.info("qbo.cdc.full", realm=account, since=since.isoformat())
                for entity in CDC_ENTITIES:
                    changed[entity] = _newest(changed[entity] + await self.client.query_changed(account, entity, since))
        else:
            changed = {e: await self.client.query_changed(account, e, since) for e in CDC_ENTITIES}
        return ChangeFeed(changed, server_time)

    def entity_id(self, body: Mapping[str, Any]) -> str:
        return str(body["Id"])

    def is_deletion(self, body: Mapping[str, Any]) -> bool:
        return str(body.get("status", "")).lower() == "deleted"

    # --- normalization ----------------------------------------------------------------------
    def version(self, body: Mapping[str, Any]) -> int:
        return int(body.get("SyncToken", 0))

    def last_updated(self, body: Mapping[str, Any]) -> datetime | None:
        return parse_time((body.get("MetaData") or {}).get("LastUpdatedTime"))

    def is_voided(self, body: Mapping[str, Any], operation: str | None) -> bool:
        return normalize.is_voided(dict(body), operation)

    def is_sale(self, entity: str, body: Mapping[str, Any]) -> bool:
        return True  # every Invoice, SalesReceipt and CreditMemo is a sale

    def item_ids(self, body: Mapping[str, Any]) -> list[str]:
        return normalize.item_ids(dict(body))

    def to_event(
        self,
        tenant_id: uuid.UUID,
        entity: str,
        body: Mapping[str, Any],
        mapper: ItemMapper,
        remap_seq: int,
        operation: str | None,
    ) -> SaleUpserted | SaleRemoved:
        return normalize.to_event(tenant_id, entity, dict(body), mapper, remap_seq, operation)

    def upserted(self, tenant_id: uuid.UUID, entity: str, body: Mapping[str, Any], mapper: ItemMapper) -> EventBase:
        return normalize.upserted(tenant_id, entity, dict(body), mapper)

    def removed(self, tenant_id: uuid.UUID, entity: str, entity_id: str) -> EventBase:
        return normalize.removed(tenant_id, entity, entity_id)

    def sale_type(self, entity: str) -> str:
        return normalize.SALE_TYPES[entity]

    # --- items --------------------------------------------------------------------------------
    def item(self, body: Mapping[str, Any]) -> ItemVersion:
        return ItemVersion(
            Item(
                str(body["Id"]),
                body.get("Name"),
                body.get("Sku"),
                body.get("Type"),
                None,
                body.get("FullyQualifiedName"),
            ),
            bool(body.get("Active", True)),
            int(body.get("SyncToken", 0)),
        )

    def mapper(self, products: Sequence[Product], items: dict[str, Item]) -> ItemMapper:
        return ItemMapper(list(products), items)

    # --- status -----------------------------------------------------------------------------------
    def plain_error(self, error: str) -> str | None:
        if error.startswith("QboFault"):
            return "QuickBooks refused to list the latest changes; the sync is retried automatically."
        if error.startswith("QboError"):
            return "QuickBooks answered with an error; the sync is retried automatically."
        return None


def _newest(bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for body in bodies:
        current = by_id.get(str(body["Id"]))
        if current is None or int(body.get("SyncToken", -1)) > int(current.get("SyncToken", -1)):
            by_id[str(body["Id"])] = body
    return list(by_id.values())

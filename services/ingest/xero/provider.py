"""Xero as a ``SalesChannelProvider`` (services/ingest/channels/provider.py, docs/xero.md):
its webhook signature and body (``webhooks.py``), documents read by id and the
``If-Modified-Since`` catch-up of invoices, credit notes and bank transactions (which have no
webhooks: receipts arrive by catch-up only) and of items, the normalization rules of
``normalize.py``, Xero's OAuth with ``GET /connections``, and its limits per organisation
(60 calls a minute, 5 in flight, a daily cap)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.ingest.channels.mapping import Item, ItemMapper, Product
from services.ingest.channels.provider import ChangeFeed, ItemVersion, OAuthApi, ParsedDelivery, RateLimits
from services.ingest.xero import normalize, webhooks
from services.ingest.xero.client import XeroClient
from shared.events import EventBase, SaleRemoved, SaleUpserted
from shared.settings import Settings

SALES_ENTITIES = ("Invoice", "CreditNote", "BankTransaction")
FEED_ENTITIES = ("Item", *SALES_ENTITIES)
#: What the catch-up lists: the sales types, in every status a sale can be in (DRAFT and
#: SUBMITTED are no sales; VOIDED and DELETED are removals), named explicitly because whether an
#: unfiltered list includes DELETED documents is unconfirmed (docs/xero.md §3).
FEED_STATUSES = ("AUTHORISED", "PAID", "VOIDED", "DELETED")


def feed_filter(entity: str) -> str:
    doc_type = normalize.SALE_DOC_TYPES[entity]
    return " OR ".join(f'Type=="{doc_type}" AND Status=="{status}"' for status in FEED_STATUSES)


class XeroProvider:
    name = "xero"
    label = "Xero"
    account_noun = "organisation"
    key = "xero"
    sales_entities: tuple[str, ...] = SALES_ENTITIES
    item_entity = "Item"
    feed_entities: tuple[str, ...] = FEED_ENTITIES
    webhook_path = "/webhooks/xero"

    def __init__(
        self, settings: Settings | None = None, client: XeroClient | None = None, oauth: OAuthApi | None = None
    ):
        """``settings``/``client``/``oauth`` None: the rules only (normalization, mapping)."""
        self.settings = settings or Settings.model_construct()
        self._client = client
        self._oauth = oauth
        self.rate_limits = RateLimits(self.settings.xero_rate_per_minute, self.settings.xero_max_concurrent)
        self.initial_import_days = self.settings.xero_initial_import_days
        self.max_since_days = max(self.settings.xero_initial_import_days, 30)

    @property
    def client(self) -> XeroClient:
        if self._client is None:
            raise RuntimeError("this XeroProvider has no API client")
        return self._client

    @property
    def oauth(self) -> OAuthApi:
        if self._oauth is None:
            raise RuntimeError("this XeroProvider has no OAuth client")
        return self._oauth

    # --- webhooks -----------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return webhooks.verify(body, headers.get("x-xero-signature"), self.settings.xero_webhook_key)

    def parse_webhook(self, body: bytes) -> ParsedDelivery:
        return webhooks.read_delivery(body)

    # --- reading --------------------------------------------------------------------------
    async def read(self, account: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The document now; None when it is deleted (a DELETED sale, or unknown to Xero)."""
        body = await self.client.read(account, entity, entity_id)
        if body is not None and entity in SALES_ENTITIES and self.is_deletion(body):
            return None
        return body

    async def changes_since(self, account: str, since: datetime) -> ChangeFeed:
        started = datetime.now(UTC)
        changed: dict[str, list[dict[str, Any]]] = {"Item": await self.client.items(account, since)}
        for entity in SALES_ENTITIES:
            changed[entity] = await self.client.changed(account, entity, since, where=feed_filter(entity))
        return ChangeFeed(changed, started)

    def entity_id(self, body: Mapping[str, Any]) -> str:
        if "ItemID" in body and "Code" in body:
            return str(body["Code"])
        return normalize.entity_id(normalize.entity_of(body), body)

    def is_deletion(self, body: Mapping[str, Any]) -> bool:
        return "Type" in body and normalize.is_deleted(body)

    # --- normalization ----------------------------------------------------------------------
    def version(self, body: Mapping[str, Any]) -> int:
        """``UpdatedDateUTC`` in milliseconds (an edit moves it)."""
        return normalize.version_of(body) // normalize.VERSION_STRIDE

    def last_updated(self, body: Mapping[str, Any]) -> datetime | None:
        return normalize.ms_json(body.get("UpdatedDateUTC"))

    def is_voided(self, body: Mapping[str, Any], operation: str | None) -> bool:
        return normalize.is_voided(body, operation)

    def is_sale(self, entity: str, body: Mapping[str, Any]) -> bool:
        return normalize.is_sale(entity, body)

    def item_ids(self, body: Mapping[str, Any]) -> list[str]:
        return normalize.item_codes(body)

    def to_event(
        self,
        tenant_id: uuid.UUID,
        entity: str,
        body: Mapping[str, Any],
        mapper: ItemMapper,
        remap_seq: int,
        operation: str | None,
    ) -> SaleUpserted | SaleRemoved:
        return normalize.to_event(tenant_id, entity, body, mapper, remap_seq, operation)

    def upserted(self, tenant_id: uuid.UUID, entity: str, body: Mapping[str, Any], mapper: ItemMapper) -> EventBase:
        return normalize.upserted(tenant_id, entity, body, mapper)

    def removed(self, tenant_id: uuid.UUID, entity: str, entity_id: str) -> EventBase:
        return normalize.removed(tenant_id, entity, entity_id)

    def sale_type(self, entity: str) -> str:
        return normalize.SALE_TYPES[entity]

    # --- items --------------------------------------------------------------------------------
    def item(self, body: Mapping[str, Any]) -> ItemVersion:
        """An item, keyed by its ``Code`` (what lines carry as ``ItemCode``)."""
        code = str(body["Code"])
        tracked = bool(body.get("IsTrackedAsInventory"))
        return ItemVersion(
            Item(code, body.get("Name"), code, "Inventory" if tracked else "NonInventory", None, body.get("Name")),
            True,
            self.version(body),
        )

    def mapper(self, products: Sequence[Product], items: dict[str, Item]) -> ItemMapper:
        return normalize.CodeMapper(list(products), items)

    # --- status -----------------------------------------------------------------------------------
    def plain_error(self, error: str) -> str | None:
        if error.startswith("XeroRateLimited"):
            return "Xero's API limit for this organisation is used up for now; the sync resumes when it resets."
        if error.startswith("XeroError"):
            return "Xero answered with an error; the sync is retried automatically."
        return None

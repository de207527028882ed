"""What a sales-channel provider (QuickBooks Online, Xero, …) supplies to the one pipeline
of ``services.ingest.channels`` (docs/channels.md).

The pipeline owns everything that is the same for every provider: the webhook endpoint's
storage (deliveries once per body, notifications deduplicated per provider), the
notification worker (claims, retries, per-entity serialization, coalescing a pile into one
catch-up), catch-up from a watermark (periodic, on connect, "Sync now", with backoff and the
connection's sync status), the versioned entity store that turns each change into
``SaleUpserted``/``SaleRemoved`` events at most once, re-mapping on item and catalog changes,
token storage (encrypted, one refresh for concurrent callers) and the browser-bound,
single-use connect flow. A provider only speaks its API: it implements
``SalesChannelProvider`` below.

Vocabulary: an *account* is what one OAuth consent links (a QuickBooks realm, a Xero
organisation / tenant id); an *entity* is a provider's object type (``Invoice``, ``Item``);
operations are ``Create``, ``Update``, ``Delete``, ``Void``, ``Merge`` (an item merged into
another, ``deleted_id`` names the one merged away) and ``Emailed``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.ingest.channels.mapping import Item, ItemMapper, Product
from shared.events import EventBase, SaleRemoved, SaleUpserted

#: Operations of a change notification, whatever the provider calls them.
OPERATIONS = ("Create", "Update", "Delete", "Void", "Merge", "Emailed")

_FRACTION = re.compile(r"(\.\d{6})\d+")
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_time(value: object) -> datetime | None:
    """Lenient ISO 8601: 'Z', offsets with or without a colon, nanoseconds."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    text = _OFFSET.sub(r"\1:\2", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class ReconnectRequired(Exception):
    """The account's refresh token is no longer accepted: a person must reconnect."""


@dataclass(frozen=True)
class ChangeNotification:
    """One change a webhook announced. ``dedupe_key`` is unique per provider: a retry or a
    duplicate of the same change has the same key and is stored once."""

    dedupe_key: str
    realm_id: str  # the account
    entity: str
    entity_id: str
    operation: str  # one of OPERATIONS (or the provider's word for one we ignore)
    occurred_at: datetime | None
    deleted_id: str | None = None


@dataclass(frozen=True)
class Rejected:
    """An unreadable element of a signed delivery: where (None: the whole body) and why."""

    element: str | None
    reason: str


@dataclass(frozen=True)
class ParsedDelivery:
    """A webhook body read per element: the readable notifications and each rejected element."""

    format: str  # the provider's name of the body's format (a metric label), or "unreadable"
    notifications: list[ChangeNotification]
    rejected: list[Rejected]
    #: A signed handshake carrying no changes (Xero's intent to receive): answered, not stored.
    handshake: bool = False

    def parse_error(self) -> str | None:
        if not self.rejected:
            return None
        return json.dumps([{"element": r.element, "reason": r.reason} for r in self.rejected])


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ItemVersion:
    """An item entity as the pipeline caches it."""

    item: Item
    active: bool
    version: int


@dataclass(frozen=True)
class RateLimits:
    """The provider's API limits per account; the client backs off on 429 (``Retry-After``)."""

    per_minute: int
    concurrent: int


@dataclass(frozen=True)
class ChangeFeed:
    """A catch-up's answer: every changed entity since the watermark, by entity name (the
    feed entities, items first), and the provider's clock (the next watermark)."""

    changed: dict[str, list[dict[str, Any]]]
    server_time: datetime


class OAuthApi(Protocol):
    """The provider's OAuth 2.0 endpoints (authorization code grant)."""

    def authorize_url(self, state: str) -> str:
        """Where the browser is sent for consent, carrying our signed ``state``."""
        ...

    def validate_callback(self, query: Mapping[str, str]) -> bool:
        """Whether the callback's query names what the provider sends (QuickBooks: a valid
        ``realmId``), checked before the state's nonce and before the code is spent."""
        ...

    async def exchange_code(self, code: str) -> Tokens:
        """The callback's code for tokens; ``ReconnectRequired`` if refused (invalid_grant)."""
        ...

    async def refresh(self, refresh_token: str) -> Tokens:
        """New tokens (the newest refresh token is always stored); ``ReconnectRequired`` if refused."""
        ...

    async def revoke(self, token: str) -> None:
        """Revoke a token at disconnect (best effort)."""
        ...

    async def accounts(self, query: Mapping[str, str], tokens: Tokens) -> list[str]:
        """Tenant/realm discovery: the accounts this consent links (QuickBooks: the
        callback's ``realmId``; Xero: ``GET /connections``). ValueError when unreadable."""
        ...


class SalesChannelProvider(Protocol):
    """One sales channel. The pipeline calls these; nothing else about the provider leaks."""

    #: The sales' ``source``, the ``provider`` column and the URL segment: ``quickbooks``, ``xero``.
    name: str
    #: How people call it ("QuickBooks") and what one account is ("company", "organisation").
    label: str
    account_noun: str
    #: Prefix of log events, metric names, advisory-lock keys and the OAuth state's domain.
    key: str
    #: The provider's sales entities and its item entity; ``feed_entities``: items first.
    sales_entities: tuple[str, ...]
    item_entity: str
    feed_entities: tuple[str, ...]
    rate_limits: RateLimits
    #: ``POST`` path of its webhook (``/webhooks/quickbooks``).
    webhook_path: str
    #: How long a first catch-up reaches back (days), and how far ``?since=`` may.
    initial_import_days: int
    max_since_days: int

    @property
    def oauth(self) -> OAuthApi:
        """Its OAuth endpoints (connect, refresh, revoke, account discovery)."""
        ...

    # --- webhooks ---------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Authenticity of the raw bytes (a signature header), before anything is parsed."""
        ...

    def parse_webhook(self, body: bytes) -> ParsedDelivery:
        """Change notifications of a signed body, per element (one bad element rejects only itself)."""
        ...

    # --- reading ------------------------------------------------------------------------
    async def read(self, account: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The entity as the provider has it now; None when it is deleted."""
        ...

    async def changes_since(self, account: str, since: datetime) -> ChangeFeed:
        """Catch-up feed: everything changed since ``since`` (deletions as stubs,
        ``is_deletion``). Raises on any failure, also one answered with HTTP 200: the
        watermark then stays where it was."""
        ...

    def entity_id(self, body: Mapping[str, Any]) -> str: ...

    def is_deletion(self, body: Mapping[str, Any]) -> bool:
        """A feed entry that only says the entity was deleted."""
        ...

    # --- normalization ------------------------------------------------------------------
    def version(self, body: Mapping[str, Any]) -> int:
        """The entity's version (QuickBooks: SyncToken); a body not newer than the one turned
        into events is skipped."""
        ...

    def last_updated(self, body: Mapping[str, Any]) -> datetime | None: ...

    def is_voided(self, body: Mapping[str, Any], operation: str | None) -> bool: ...

    def is_sale(self, entity: str, body: Mapping[str, Any]) -> bool:
        """Whether a document of a sales entity is a sale at all (Xero: not a DRAFT invoice or
        a bill); one that is not is skipped without being recorded (a later version may be)."""
        ...

    def item_ids(self, body: Mapping[str, Any]) -> list[str]:
        """The items a sale's lines name (a change of their mapping re-emits the sale)."""
        ...

    def to_event(
        self,
        tenant_id: uuid.UUID,
        entity: str,
        body: Mapping[str, Any],
        mapper: ItemMapper,
        remap_seq: int,
        operation: str | None,
    ) -> SaleUpserted | SaleRemoved:
        """The sale event of one version (``remap_seq``: re-mappings of that version)."""
        ...

    def upserted(self, tenant_id: uuid.UUID, entity: str, body: Mapping[str, Any], mapper: ItemMapper) -> EventBase:
        """The sale as recorded (for a sale first seen already voided: recorded, then removed)."""
        ...

    def removed(self, tenant_id: uuid.UUID, entity: str, entity_id: str) -> EventBase: ...

    def sale_type(self, entity: str) -> str:
        """``invoice`` | ``sales_receipt`` | ``credit_memo`` of a sales entity."""
        ...

    # --- items ----------------------------------------------------------------------------
    def item(self, body: Mapping[str, Any]) -> ItemVersion:
        """An item entity as the pipeline caches it (id, name, sku, type, full name)."""
        ...

    def mapper(self, products: Sequence[Product], items: dict[str, Item]) -> ItemMapper:
        """Item → product: the provider's rules (explicit id, then SKU, then name)."""
        ...

    # --- status -----------------------------------------------------------------------------
    def plain_error(self, error: str) -> str | None:
        """A stored catch-up error (``ExceptionName: text``) in plain words, if the provider
        knows it (None: the pipeline's generic wording)."""
        ...

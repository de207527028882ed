"""The pipeline's entity store and catch-up (``services.ingest.channels.sync``) bound to
QuickBooks: the names the QuickBooks code and tests have always used."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.ingest.channels import sync as _sync
from services.ingest.channels.sync import CatchUp, Outcome, SyncReport, lock_mapping
from services.ingest.qbo.provider import CDC_ENTITIES, CDC_LIMIT, SALES_ENTITIES, QuickBooksProvider
from shared.db import Connection

__all__ = [
    "CDC_ENTITIES",
    "CDC_LIMIT",
    "SALES_ENTITIES",
    "CatchUp",
    "RemapOnCatalogChange",
    "SyncReport",
    "apply_item",
    "apply_sale",
    "lock_mapping",
]
T = TypeVar("T")
RULES = QuickBooksProvider()


def _ignore(_outcome: str) -> None:
    pass


async def apply_sale(
    conn: Connection,
    tenant_id: uuid.UUID,
    realm_id: str,
    entity: str,
    entity_id: str,
    body: dict[str, Any] | None,
    operation: str | None = None,
    outcome: Outcome = _ignore,
) -> list[str]:
    return await _sync.apply_sale(conn, RULES, tenant_id, realm_id, entity, entity_id, body, operation, outcome)


async def apply_item(
    conn: Connection,
    tenant_id: uuid.UUID,
    realm_id: str,
    item: dict[str, Any] | None,
    item_id: str,
    merged_into: str | None = None,
) -> list[str]:
    return await _sync.apply_item(conn, RULES, tenant_id, realm_id, item, item_id, merged_into)


async def remap_tenant(conn: Connection, tenant_id: uuid.UUID, change: Callable[[Connection], Awaitable[T]]) -> T:
    return await _sync.remap_tenant(conn, tenant_id, change, [RULES])


class RemapOnCatalogChange(_sync.RemapOnCatalogChange):
    """The catalog listener for QuickBooks alone (the app registers every provider's)."""

    def __init__(self) -> None:
        super().__init__([RULES])

"""Which product an item of a channel is (QuickBooks' rules, every provider's default): by the
product's explicit item id (``qbo_item_id`` for QuickBooks),
else by the item's ``Sku``, else by name (case-insensitive): a product name matches
the item's ``FullyQualifiedName`` (``Parent:Child``) first, else its leaf ``Name``.
A line's ``ItemRef.name`` is the full path, so for an item not cached yet the
path is the full name and its last segment the leaf. An item that is no
product is revenue without cost: service, shipping or non-inventory; an
Inventory item with no product is ``unmapped`` (re-costed once mapped)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import LineKind

SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"  # QuickBooks' built-in shipping line


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str | None
    sku: str | None
    type: str | None
    merged_into: str | None = None
    fully_qualified_name: str | None = None


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    qbo_item_id: str | None


@dataclass(frozen=True)
class Mapped:
    sku: str | None
    kind: LineKind  # inventory | unmapped | non_inventory | service | shipping


class ItemMapper:
    def __init__(self, products: list[Product], items: dict[str, Item]):
        self.items = items
        self._by_item_id = {p.qbo_item_id: p.sku for p in products if p.qbo_item_id}
        self._by_sku = {p.sku: p.sku for p in products}
        self._by_name = {p.name.casefold(): p.sku for p in products}

    def mapped_item_ids(self) -> set[str]:
        return set(self._by_item_id)

    def map(self, item_id: str | None, item_name: str | None = None) -> Mapped:
        item = self.items.get(item_id) if item_id else None
        # A merged item is its survivor now.
        for _ in range(5):
            if item is None or not item.merged_into or item.merged_into not in self.items:
                break
            item_id, item = item.merged_into, self.items[item.merged_into]
        full, leaf = names(item, item_name)
        sku = (
            (item_id and self._by_item_id.get(item_id))
            or (item and item.sku and self._by_sku.get(item.sku))
            or (full and self._by_name.get(full.casefold()))
            or (leaf and self._by_name.get(leaf.casefold()))
        )
        if sku:
            return Mapped(sku, "inventory")
        if item_id == SHIPPING_ITEM_ID or leaf.casefold() in ("shipping", "shipping charges"):
            return Mapped(None, "shipping")
        kind = (item.type if item else None) or ""
        if kind == "Service":
            return Mapped(None, "service")
        if kind == "Inventory" or item is None:
            return Mapped(item.sku if item else None, "unmapped")
        return Mapped(None, "non_inventory")


def names(item: Item | None, ref_name: str | None) -> tuple[str, str]:
    """(full name, leaf name) of an item: the cached Item's when known, else from the
    line's ``ItemRef.name`` (the full path)."""
    if item is not None and (item.name or item.fully_qualified_name):
        full = item.fully_qualified_name or item.name or ""
        return full, item.name or full.rsplit(":", 1)[-1]
    full = (ref_name or "").strip()
    return full, full.rsplit(":", 1)[-1].strip()

"""Moved to ``services.ingest.channels.mapping`` (the item→product rules every provider uses)."""

from services.ingest.channels.mapping import SHIPPING_ITEM_ID, Item, ItemMapper, Mapped, Product, names

__all__ = ["SHIPPING_ITEM_ID", "Item", "ItemMapper", "Mapped", "Product", "names"]

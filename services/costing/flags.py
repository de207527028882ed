"""Which flags a line gets: the rule, written once; no I/O."""

from __future__ import annotations

from decimal import Decimal

NON_INVENTORY = {"non_inventory", "service", "shipping"}


def line_flags(kind: str, shortage: Decimal, has_basis: bool, is_return: bool, posted: bool) -> list[str]:
    if not posted:
        return []
    flags = []
    if kind == "unmapped":
        flags.append("unmapped")
    elif kind in NON_INVENTORY:
        flags.append("non_inventory")
    if shortage > 0:
        flags.append("shortage")
    if not has_basis and kind == "inventory" and (shortage > 0 or is_return):
        flags.append("no_cost_basis")
    return flags

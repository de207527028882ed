"""Which flags a line gets: the rule, written once (``FLAG_RULES``); no I/O.

Both implementations of the tail re-cost apply it: ``line_flags`` (Python) evaluates the
rules, and ``flags_sql`` writes the same rules as the SQL expression that the one-statement
re-cost (``repository.RECOST_TAIL_IN_DB``) computes. A line on a sale that is not posted
has no flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

NON_INVENTORY = frozenset({"non_inventory", "service", "shipping"})


@dataclass(frozen=True)
class LineFacts:
    """What decides a posted line's flags."""

    kind: str
    shortage: Decimal
    has_basis: bool
    is_return: bool


@dataclass(frozen=True)
class Condition:
    """A condition on ``LineFacts``, in Python and as SQL over the columns named in a
    ``dict`` (kind, shortage, has_basis, is_return: SQL expressions)."""

    python: Callable[[LineFacts], bool]
    sql: Callable[[dict[str, str]], str]

    def __and__(self, other: Condition) -> Condition:
        return Condition(lambda f: self.python(f) and other.python(f), lambda c: f"({self.sql(c)} AND {other.sql(c)})")

    def __or__(self, other: Condition) -> Condition:
        return Condition(lambda f: self.python(f) or other.python(f), lambda c: f"({self.sql(c)} OR {other.sql(c)})")


def kind_in(*kinds: str) -> Condition:
    listed = ", ".join(f"'{k}'" for k in sorted(kinds))  # constants of this module, never input
    return Condition(lambda f: f.kind in kinds, lambda c: f"{c['kind']} IN ({listed})")


SHORT = Condition(lambda f: f.shortage > 0, lambda c: f"{c['shortage']} > 0")
NO_BASIS = Condition(lambda f: not f.has_basis, lambda c: f"NOT {c['has_basis']}")
RETURN = Condition(lambda f: f.is_return, lambda c: c["is_return"])

#: The rule: each flag and when a posted line gets it, in the order a line lists them.
FLAG_RULES: tuple[tuple[str, Condition], ...] = (
    ("unmapped", kind_in("unmapped")),
    ("non_inventory", kind_in(*NON_INVENTORY)),
    ("shortage", SHORT),
    # A cost at WAC (a shortage, or a return lot's value) with no lot and no standard cost.
    ("no_cost_basis", NO_BASIS & kind_in("inventory") & (SHORT | RETURN)),
)


def line_flags(kind: str, shortage: Decimal, has_basis: bool, is_return: bool, posted: bool) -> list[str]:
    if not posted:
        return []
    facts = LineFacts(kind, shortage, has_basis, is_return)
    return [flag for flag, condition in FLAG_RULES if condition.python(facts)]


def flags_sql(kind: str, shortage: str, has_basis: str, is_return: str = "false") -> str:
    """The flags of a posted line as a SQL text[] expression over the given SQL expressions."""
    columns = {"kind": kind, "shortage": shortage, "has_basis": has_basis, "is_return": is_return}
    cases = ",\n".join(f"CASE WHEN {condition.sql(columns)} THEN '{flag}' END" for flag, condition in FLAG_RULES)
    return f"array_remove(ARRAY[{cases}], NULL)"

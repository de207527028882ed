"""Decimal helpers. Money and quantities are Decimal end to end, never float.

Arithmetic runs in a wide context so sums and products of stored values are
exact; only division (the weighted average cost) is rounded, once, to
``WAC_PLACES`` decimal places. Presentation rounds half-even to the currency's
minor unit.
"""

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Iterator
import contextlib

WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)
ZERO = Decimal(0)
WAC_PLACES = Decimal("1e-12")  # stored precision of a weighted average cost
#: Most decimal places accepted on input quantities and amounts.
INPUT_PLACES = 6
#: Input quantities and amounts are below this in absolute value.
INPUT_LIMIT = Decimal(10) ** 12


@contextlib.contextmanager
def wide() -> Iterator[Context]:
    with localcontext(WIDE) as ctx:
        yield ctx


def weighted_average(value: Decimal, quantity: Decimal) -> Decimal:
    """value / quantity rounded half-even to WAC_PLACES (quantity must be > 0)."""
    with wide():
        return (value / quantity).quantize(WAC_PLACES, rounding=ROUND_HALF_EVEN)


def overlap(a_start: Decimal, a_end: Decimal, b_start: Decimal, b_end: Decimal) -> Decimal:
    """Length of the intersection of [a_start, a_end) and [b_start, b_end)."""
    lo = a_start if a_start > b_start else b_start
    hi = a_end if a_end < b_end else b_end
    return hi - lo if hi > lo else ZERO


def places(value: Decimal) -> int:
    """Number of decimal places a finite Decimal carries (0 for integers)."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def present(value: Decimal | None, minor_units: int = 2) -> str | None:
    """Round half-even to the minor unit for display: Decimal('12.345') -> '12.34'."""
    if value is None:
        return None
    return str(value.quantize(Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_EVEN))

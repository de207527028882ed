"""Decimal helpers. Money and quantities are Decimal end to end, never float.

Arithmetic runs in a wide context so sums and products of stored values are
exact; only division (the weighted average cost) is rounded, once, to
``WAC_PLACES`` decimal places. Presentation rounds half-even to the currency's
minor unit.
"""

import contextlib
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)
ZERO = Decimal(0)
WAC_PLACES = Decimal("1e-12")  # stored precision of a weighted average cost
#: Most decimal places accepted on input quantities and amounts.
INPUT_PLACES = 6
#: Most integer digits of an input quantity or amount: values are below
#: 10**INPUT_INTEGER_DIGITS in absolute value. With INPUT_PLACES that is at most
#: 18 significant digits, so products of two inputs (quantity × price × rate) stay
#: exact in the WIDE context and every value fits PostgreSQL's numeric.
INPUT_INTEGER_DIGITS = 12
#: Input quantities and amounts are below this in absolute value.
INPUT_LIMIT = Decimal(10) ** INPUT_INTEGER_DIGITS


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
    """Number of decimal places a finite Decimal carries, trailing zeros ignored (0 for
    integers). Context-free: exact for any exponent (normalize() would round to the
    context's precision and overflow or underflow on exponents beyond its range)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing))


def input_decimal(value: Decimal, max_places: int = INPUT_PLACES) -> Decimal:
    """Check a quantity or amount as entered, and return it in a storable form.

    Refused (ValueError, our words): NaN and infinities; more than ``max_places``
    significant decimal places (which also refuses tiny exponents like 1E-999999999);
    an absolute value of 10**INPUT_INTEGER_DIGITS or more (which refuses huge
    exponents like 1E+999999999). Every check is context-free (as_tuple/adjusted),
    so no input can raise decimal.Overflow or round silently. Zero and excess
    trailing zeros are trimmed to at most ``max_places`` places (0E-999999999 -> 0)."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # only NaN and infinities have a letter for exponent
        raise ValueError("must be a finite number")
    if not any(digits):
        return Decimal(0) if not -max_places <= exponent <= 0 else Decimal((0, (0,), exponent))
    # Written with at most max_places places (the usual case), it has at most that many
    # significant ones: places() need not count the trailing zeros.
    if exponent < -max_places and places(value) > max_places:
        raise ValueError(f"at most {max_places} decimal places")
    if value.adjusted() >= INPUT_INTEGER_DIGITS:
        raise ValueError(f"must be less than {INPUT_LIMIT:,} in absolute value")
    if exponent < -max_places:  # only trailing zeros beyond max_places: drop them
        excess = -max_places - exponent
        return Decimal((sign, digits[: len(digits) - excess], -max_places))
    return value


def present(value: Decimal | None, minor_units: int = 2) -> str | None:
    """Round half-even to the minor unit for display: Decimal('12.345') -> '12.34'."""
    if value is None:
        return None
    return str(value.quantize(Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_EVEN))

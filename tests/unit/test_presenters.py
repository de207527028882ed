"""services.query.presenters' margin % against exact fractions (hypothesis)."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from services.query.presenters import margin_pct


def _half_even_hundredths(value: Fraction) -> str:
    """``value`` to 2 places, half to even: the rule as written down, on an exact fraction."""
    scaled = value * 100
    whole = scaled.numerator // scaled.denominator  # floor
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2):
        whole += 1
    sign = "-" if whole < 0 else ""
    return f"{sign}{abs(whole) // 100}.{abs(whole) % 100:02d}"


amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False)


@given(amounts, amounts.filter(lambda d: d != 0))
@example(Decimal("1"), Decimal("8"))  # 12.5 exactly: half to even, 12.50
@example(Decimal("0.00125"), Decimal("1"))  # 0.125: half to even, 0.12
@example(Decimal("-0.00135"), Decimal("1"))  # -0.135: half to even, -0.14
@example(Decimal("-0.00001"), Decimal("3"))  # -0.000333...: rounds to zero, never "-0.00"
@example(Decimal("2"), Decimal("-3"))  # -66.666...
def test_margin_pct_is_100_margin_over_revenue_half_even(margin: Decimal, revenue: Decimal) -> None:
    expected = _half_even_hundredths(Fraction(margin) * 100 / Fraction(revenue))
    assert margin_pct(margin, revenue) == ("0.00" if expected == "-0.00" else expected)


def test_no_margin_pct_without_revenue() -> None:
    assert margin_pct(Decimal("5"), Decimal("0")) is None

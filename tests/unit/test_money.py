"""shared.money.input_decimal against a plain statement of its rule (hypothesis)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import INPUT_INTEGER_DIGITS, INPUT_PLACES, input_decimal


def _significant_places(value: Decimal) -> int:
    """Decimal places after dropping trailing zeros, by text: the rule as a person reads it."""
    text = format(value, "f")
    if "." not in text:
        return 0
    return len(text.split(".", 1)[1].rstrip("0"))


decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(int(d) for d in digits), exponent)),
    st.integers(0, 1),
    st.text("0123456789", min_size=1, max_size=20),
    st.integers(-30, 15),
)


@given(decimals)
def test_input_decimal_follows_its_rule(value: Decimal) -> None:
    too_precise = _significant_places(value) > INPUT_PLACES
    too_large = value != 0 and abs(value) >= Decimal(10) ** INPUT_INTEGER_DIGITS
    if too_precise or too_large:
        with pytest.raises(ValueError):
            input_decimal(value)
        return
    result = input_decimal(value)
    assert result == value
    assert result.as_tuple().exponent >= -INPUT_PLACES  # type: ignore[operator]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_input_decimal_refuses_non_finite(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        input_decimal(Decimal(text))


def test_input_decimal_trims_trailing_zeros_beyond_its_places() -> None:
    assert str(input_decimal(Decimal("1.50000000"))) == "1.500000"
    assert str(input_decimal(Decimal("0E-999999999"))) == "0"
    assert str(input_decimal(Decimal("12.5"))) == "12.5"

"""Money: per-currency precision, half-up rounding, exact parsing and exact JSON numbers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnero_bridge.money import (
    decimals,
    from_minor_units,
    json_number,
    parse_amount,
    quantize,
)

pytestmark = pytest.mark.unit


# --- decimals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
        ("usd", 2),
        ("jpy", 0),
        ("kwd", 3),
        ("Kwd", 3),
    ],
)
def test_decimals(currency: str, expected: int) -> None:
    assert decimals(currency) == expected


# --- quantize ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        pytest.param("10.005", "USD", "10.01", id="usd-half-up"),
        pytest.param("10.015", "USD", "10.02", id="usd-half-up-odd"),
        pytest.param("10.025", "USD", "10.03", id="usd-half-up-not-half-even"),
        pytest.param("10.0049", "USD", "10.00", id="usd-below-half"),
        pytest.param("19.9", "USD", "19.90", id="usd-pads"),
        pytest.param("19", "usd", "19.00", id="usd-lower-case"),
        pytest.param("5000.4", "JPY", "5000", id="jpy-down"),
        pytest.param("5000.5", "JPY", "5001", id="jpy-half-up"),
        pytest.param("910.5", "jpy", "911", id="jpy-lower-case-half-up"),
        pytest.param("1.2345", "KWD", "1.235", id="kwd-half-up"),
        pytest.param("1.2344", "KWD", "1.234", id="kwd-down"),
        pytest.param("0", "USD", "0.00", id="zero"),
    ],
)
def test_quantize_half_up(amount: str, currency: str, expected: str) -> None:
    result = quantize(Decimal(amount), currency)

    assert result == Decimal(expected)
    # Same digits after the point as the currency: what a receipt shows.
    assert str(result) == expected


# --- from_minor_units --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1999, "USD", "19.99"),
        (1, "USD", "0.01"),
        (0, "USD", "0"),
        (100, "eur", "1.00"),
        (5000, "JPY", "5000"),
        (5000, "jpy", "5000"),
        (1234, "KWD", "1.234"),
        (1, "KWD", "0.001"),
    ],
)
def test_from_minor_units(minor: int, currency: str, expected: str) -> None:
    result = from_minor_units(minor, currency)

    assert isinstance(result, Decimal)
    assert result == Decimal(expected)


# --- parse_amount ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(10, Decimal(10), id="int"),
        pytest.param(0, Decimal(0), id="zero"),
        pytest.param(0.1, Decimal("0.1"), id="float-0.1-exact"),
        pytest.param(71.39, Decimal("71.39"), id="float-71.39-exact"),
        pytest.param(19.99, Decimal("19.99"), id="float-19.99-exact"),
        pytest.param("19.99", Decimal("19.99"), id="numeric-string"),
        pytest.param("1999", Decimal(1999), id="integer-string"),
        pytest.param("-5.50", Decimal("-5.50"), id="negative-string"),
        pytest.param(Decimal("3.14"), Decimal("3.14"), id="decimal"),
    ],
)
def test_parse_amount_exact(value: object, expected: Decimal) -> None:
    result = parse_amount(value)

    assert isinstance(result, Decimal)
    assert result == expected


def test_parse_amount_float_does_not_carry_binary_error() -> None:
    # Decimal(0.1) would be 0.1000000000000000055511151231257827...
    assert parse_amount(0.1).as_tuple() == Decimal("0.1").as_tuple()
    assert parse_amount(0.1) != Decimal.from_float(0.1)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(None, id="none"),
        pytest.param("abc", id="text"),
        pytest.param("", id="empty"),
        pytest.param("NaN", id="nan-string"),
        pytest.param("Infinity", id="infinity-string"),
        pytest.param("-Infinity", id="minus-infinity-string"),
        pytest.param(float("nan"), id="nan-float"),
        pytest.param(float("inf"), id="inf-float"),
        pytest.param([19.99], id="list"),
        pytest.param({"amount": 1}, id="dict"),
    ],
)
def test_parse_amount_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount(value)


# --- json_number -------------------------------------------------------------------------

REALISTIC_AMOUNTS = ["19.99", "0.1", "71.39", "1999", "0.001", "123456789.12", "45", "1.235"]


@pytest.mark.parametrize("text", REALISTIC_AMOUNTS)
def test_json_number_writes_the_same_digits(text: str) -> None:
    amount = Decimal(text)

    written = json.dumps(json_number(amount))

    assert written == text
    assert json.loads(written, parse_float=Decimal) == amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1999", "1999"),
        ("10.00", "10"),
        ("5000", "5000"),
        ("1999.0", "1999"),
        ("0", "0"),
        ("0.00", "0"),
        ("12345678901234567890", "12345678901234567890"),
    ],
)
def test_json_number_integers_have_no_fraction(text: str, expected: str) -> None:
    number = json_number(Decimal(text))

    assert isinstance(number, int)
    assert json.dumps(number) == expected


def test_json_number_trailing_zero_keeps_the_value() -> None:
    written = json.dumps(json_number(Decimal("19.90")))

    assert written == "19.9"
    assert Decimal(written) == Decimal("19.90")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0.1000000000000000055511151231257827", id="float-0.1-expansion"),
        pytest.param("1234567890123456.78", id="18-significant-digits"),
        pytest.param("9007199254740993.5", id="beyond-2**53"),
        pytest.param("0.12345678901234567890", id="20-decimal-places"),
    ],
)
def test_json_number_refuses_what_a_float_cannot_carry(text: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent exactly"):
        json_number(Decimal(text))


def test_json_number_refuses_nan() -> None:
    with pytest.raises(ValueError, match="cannot be sent exactly"):
        json_number(Decimal("NaN"))


@pytest.mark.parametrize("text", ["Infinity", "-Infinity"])
def test_json_number_refuses_infinity_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent exactly"):
        json_number(Decimal(text))


@settings(max_examples=300, deadline=None)
@given(
    units=st.integers(min_value=-(10**12), max_value=10**12),
    places=st.sampled_from([0, 2, 3]),
)
def test_json_number_round_trips_every_price(units: int, places: int) -> None:
    # Up to 15 significant digits with 0, 2 or 3 places: every real price.
    amount = Decimal(units).scaleb(-places)

    written = json.dumps(json_number(amount))

    assert json.loads(written, parse_float=Decimal) == amount

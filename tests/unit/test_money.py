"""Money: per-currency precision, half-up rounding, exact parsing and exact JSON numbers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnero_bridge.money import (
    ISO_4217,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    amount_text,
    decimals,
    from_minor_units,
    is_currency,
    json_number,
    money_text,
    parse_amount,
    quantize,
    remaining_share,
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


# --- amount_text / money_text: one way to show an amount ------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "digits", "text"),
    [
        pytest.param("21.2", "USD", "21.20", "21.20 USD", id="usd-pads"),
        pytest.param("69", "USD", "69.00", "69.00 USD", id="usd-whole"),
        pytest.param("62.10", "USD", "62.10", "62.10 USD", id="usd-as-is"),
        pytest.param("2E+1", "USD", "20.00", "20.00 USD", id="usd-no-exponent"),
        pytest.param("0", "EUR", "0.00", "0.00 EUR", id="zero"),
        pytest.param("-5.5", "USD", "-5.50", "-5.50 USD", id="negative"),
        pytest.param("12.005", "USD", "12.005", "12.005 USD", id="sub-cent-never-rounded"),
        pytest.param("1500", "JPY", "1500", "1500 JPY", id="jpy"),
        pytest.param("1500.00", "JPY", "1500", "1500 JPY", id="jpy-drops-zero-decimals"),
        pytest.param("1500.5", "JPY", "1500.5", "1500.5 JPY", id="jpy-fraction-kept"),
        pytest.param("1.2", "KWD", "1.200", "1.200 KWD", id="kwd-three-decimals"),
        pytest.param("3", "kwd", "3.000", "3.000 kwd", id="kwd-lower-case"),
        pytest.param("1.2345", "KWD", "1.2345", "1.2345 KWD", id="kwd-fourth-digit-kept"),
        pytest.param("7.5", "XXX", "7.5", "7.5 XXX", id="unknown-currency-as-is"),
        pytest.param("7.5", "", "7.5", "7.5", id="no-currency"),
    ],
)
def test_amounts_are_shown_with_their_currencys_decimals(
    amount: str, currency: str, digits: str, text: str
) -> None:
    assert amount_text(Decimal(amount), currency) == digits
    assert money_text(Decimal(amount), currency) == text


def test_no_amount_is_shown_as_the_word_given() -> None:
    assert money_text(None, "USD") == "nothing"
    assert money_text(None, "USD", absent="not given") == "not given"


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


# --- remaining_share: basis x (paid - refunded) / paid, rounded once -----------------------


@pytest.mark.parametrize(
    ("basis", "paid", "refunded", "currency", "expected"),
    [
        pytest.param("19.99", "19.99", "7.00", "USD", "12.99", id="19.99-paid-7.00-refunded"),
        pytest.param("45.00", "58.21", "10.00", "USD", "37.27", id="net-share"),
        pytest.param("45.00", "58.21", "0", "USD", "45.00", id="nothing-refunded"),
        pytest.param("45.004", "58.21", "0", "USD", "45.00", id="nothing-refunded-quantized"),
        pytest.param("45", "58.21", "0", "USD", "45.00", id="pads-to-cents"),
        pytest.param("45.00", "58.21", "58.21", "USD", "0.00", id="all-refunded"),
        pytest.param("45.00", "58.21", "70.00", "USD", "0.00", id="more-than-paid-refunded"),
        pytest.param("45.00", "58.21", "-5.00", "USD", "45.00", id="negative-refund-counts-none"),
        pytest.param("10.00", "30.00", "10.00", "USD", "6.67", id="rounded-once-not-the-share"),
        pytest.param("10.00", "40.00", "39.90", "USD", "0.03", id="half-up-tie"),
        pytest.param("0.01", "100.00", "99.99", "USD", "0.00", id="rounds-to-nothing"),
        pytest.param("10000", "11500", "2500", "JPY", "7826", id="jpy"),
        pytest.param("10000", "11500", "2500", "jpy", "7826", id="jpy-lower-case"),
        pytest.param("1", "2", "1", "JPY", "1", id="jpy-half-up"),
        pytest.param("10.000", "12.000", "5.000", "KWD", "5.833", id="kwd"),
        pytest.param("0.005", "2", "1", "KWD", "0.003", id="kwd-half-up"),
        pytest.param("20.00", "24.00", "4.00", "EUR", "16.67", id="stripe-gross-with-tax"),
    ],
)
def test_remaining_share(
    basis: str, paid: str, refunded: str, currency: str, expected: str
) -> None:
    result = remaining_share(Decimal(basis), Decimal(paid), Decimal(refunded), currency)

    assert str(result) == expected


@pytest.mark.parametrize("paid", ["0", "0.00", "-1", "-58.21"])
def test_remaining_share_of_nothing_paid_is_a_value_error(paid: str) -> None:
    with pytest.raises(ValueError, match="not positive"):
        remaining_share(Decimal("10.00"), Decimal(paid), Decimal(0), "USD")


@settings(max_examples=200, deadline=None)
@given(
    basis_units=st.integers(min_value=0, max_value=10**9),
    paid_units=st.integers(min_value=1, max_value=10**9),
    refunds=st.tuples(
        st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**9)
    ),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_remaining_share_properties(
    basis_units: int, paid_units: int, refunds: tuple[int, int], currency: str
) -> None:
    places = decimals(currency)
    basis = Decimal(basis_units).scaleb(-places)
    paid = Decimal(paid_units).scaleb(-places)
    less, more = sorted(Decimal(r).scaleb(-places) for r in refunds)

    share = remaining_share(basis, paid, less, currency)

    # In the currency's minor unit, between nothing and the whole basis, never growing
    # with a larger refund, the whole basis when nothing is refunded.
    assert share.as_tuple().exponent == -places
    assert Decimal(0) <= share <= basis
    assert remaining_share(basis, paid, more, currency) <= share
    assert remaining_share(basis, paid, Decimal(0), currency) == basis
    # Within half a minor unit of the exact share.
    exact = basis * (paid - min(less, paid)) / paid
    assert abs(share - exact) <= Decimal(1).scaleb(-places) / 2


# --- is_currency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("USD", True, id="usd"),
        pytest.param("usd", True, id="lower-case"),
        pytest.param("Eur", True, id="mixed-case"),
        pytest.param("JPY", True, id="zero-decimal"),
        pytest.param("KWD", True, id="three-decimal"),
        pytest.param("XCG", True, id="caribbean-guilder-2025"),
        pytest.param("ZWG", True, id="zimbabwe-gold"),
        pytest.param("XYZ", False, id="unknown"),
        pytest.param("ZWL", False, id="withdrawn"),
        pytest.param("XAU", False, id="gold-not-a-currency"),
        pytest.param("", False, id="empty"),
        pytest.param("US", False, id="two-letters"),
        pytest.param("EURO", False, id="four-letters"),
        pytest.param(" USD", False, id="not-stripped"),
        pytest.param("$", False, id="symbol"),
    ],
)
def test_is_currency(code: str, expected: bool) -> None:
    assert is_currency(code) is expected


def test_every_special_precision_currency_is_a_currency() -> None:
    assert ZERO_DECIMAL <= ISO_4217
    assert THREE_DECIMAL <= ISO_4217
    assert not ZERO_DECIMAL & THREE_DECIMAL

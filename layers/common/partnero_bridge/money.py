"""Money: Decimal amounts in major units, per-currency precision, exact JSON numbers."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not 1/100 (as Stripe and Partnero use them).
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def decimals(currency: str) -> int:
    """Digits after the decimal point in the currency's major unit."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's precision (what a receipt would show)."""
    return amount.quantize(Decimal(1).scaleb(-decimals(currency)), rounding=ROUND_HALF_UP)


def from_minor_units(amount: int, currency: str) -> Decimal:
    """Stripe-style integer minor units -> Decimal major units (1999 USD -> 19.99)."""
    return Decimal(amount).scaleb(-decimals(currency))


def parse_amount(value: object) -> Decimal:
    """A JSON amount (number or numeric string) as an exact Decimal."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        # str() first: Decimal(0.1) would carry the float's binary error.
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def json_number(amount: Decimal) -> int | float:
    """The JSON number for an amount, refusing any that a float cannot carry exactly.

    JSON encoders write floats with the shortest repr that round-trips, so any amount
    with up to 15 significant digits (every real price) is written digit for digit.
    """
    if not amount.is_finite():
        raise ValueError(f"amount {amount} cannot be sent exactly as a JSON number")
    if amount == amount.to_integral_value():
        return int(amount)
    number = float(amount)
    if Decimal(repr(number)) != amount.normalize() and Decimal(repr(number)) != amount:
        raise ValueError(f"amount {amount} cannot be sent exactly as a JSON number")
    return number

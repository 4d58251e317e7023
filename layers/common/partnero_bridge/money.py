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
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
# Active ISO 4217 codes (list one, 2025): an amount in any other "currency" is undecidable.
ISO_4217 = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BOV",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHE",
        "CHF",
        "CHW",
        "CLF",
        "CLP",
        "CNY",
        "COP",
        "COU",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MXV",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "USN",
        "UYI",
        "UYU",
        "UYW",
        "UZS",
        "VED",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)


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


def amount_text(amount: Decimal, currency: str) -> str:
    """``amount`` as digits with its currency's minor unit: 12 USD -> ``12.00``, 1500.00 JPY
    -> ``1500``, 1.2 KWD -> ``1.200``. Never rounds a digit away (12.005 USD stays
    ``12.005``, so a sub-cent difference stays visible) and never uses an exponent; an
    amount in an unknown currency is shown as it is."""
    if is_currency(currency):
        try:
            exact = quantize(amount, currency)
        except InvalidOperation:  # more digits than the context carries: shown as it is
            exact = amount
        if exact == amount:
            return f"{exact:f}"
    return f"{amount:f}"


def money_text(amount: Decimal | None, currency: str, absent: str = "nothing") -> str:
    """``amount`` with its currency for a person (``14.99 USD``, ``1500 JPY``), through
    :func:`amount_text`; ``absent`` when there is no amount."""
    if amount is None:
        return absent
    return f"{amount_text(amount, currency)} {currency}".strip()


def is_currency(code: str) -> bool:
    """True for an active ISO 4217 code, in any case."""
    return code.upper() in ISO_4217


def remaining_share(basis: Decimal, paid: Decimal, refunded: Decimal, currency: str) -> Decimal:
    """The commission basis left after refunds: ``basis x (paid - refunded) / paid``.

    Exact Decimal arithmetic, rounded half-up once, at the end, to the currency's minor
    unit (19.99 paid, 7.00 refunded -> 12.99). A refund returns a share of the whole
    payment, tax and shipping included, so the basis keeps the same share.

    Raises ValueError when ``paid`` is not positive (there is no share of nothing).
    """
    if paid <= 0:
        raise ValueError(f"paid amount {paid} is not positive")
    left = min(max(paid - refunded, Decimal(0)), paid)
    return quantize(basis * left / paid, currency)


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

"""Ecwid orders -> the target Partnero should hold: status, amount, share after refunds,
undecidable orders, customer and partner keys, and the realistic orders in events/ecwid.

Everything goes through ``decide(order, store_id, currency, rules) -> Target``: ``amount``
None means nothing is due, ``reason`` says why, and an order whose money cannot be trusted
raises :class:`UndecidableOrder` (a PermanentError: dead-lettered for a person).
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

from partnero_bridge.decision import Commission, Target, transaction_request
from partnero_bridge.ecwid.mapping import (
    AmountBasis,
    EcwidRules,
    UndecidableOrder,
    basis_amount,
    customer_key,
    decide,
    partner_key,
    refunded_amount,
    transaction_key,
)
from partnero_bridge.ecwid.models import EcwidOrder
from partnero_bridge.errors import PermanentError

pytestmark = pytest.mark.unit

D = Decimal
STORE = 1003
ORDERS = Path(__file__).resolve().parents[2] / "events" / "ecwid" / "orders"
PAID_AND_CUSTOM = frozenset({"PAID", "CUSTOM_PAYMENT_STATUS_1"})
_DROP = object()  # removes a key from the base order

# A US store, tax excluded: 2 x 25.00 = 50.00, coupon -5.00, 8.25 % tax on 45.00 = 3.71,
# shipping 7.50 (not taxed), handling 2.00. total = 45.00 + 3.71 + 7.50 + 2.00 = 58.21.
BASE_ORDER: dict[str, Any] = {
    "id": "XJ12H",
    "internalId": 103878161,
    "paymentStatus": "PAID",
    "total": D("58.21"),
    "subtotal": D("50.00"),
    "tax": D("3.71"),
    "pricesIncludeTax": False,
    "couponDiscount": D("5.00"),
    "discount": D("0"),
    "handlingFee": {"name": "Handling", "value": D("2.00"), "description": "Careful packing"},
    "shippingOption": {"shippingMethodName": "Ground", "shippingRate": D("7.50")},
    "items": [{"productId": 561133, "sku": "MUG-BLUE", "price": D("25.00"), "quantity": 2}],
    "refundedAmount": D("0"),
    "refunds": [],
    "extraFields": {"partnero_partner": "acme"},
    "orderExtraFields": [{"id": "partnero_partner", "value": "acme"}],
    "email": "jane.doe@example.com",
    "customerId": 270919557,
    "billingPerson": {"name": "Jane Doe", "firstName": "Jane", "lastName": "Doe"},
    "createTimestamp": 1725434529,
}

# Only money: no tax, shipping or handling, so every basis is the total unless overridden.
BARE = {"tax": D(0), "shippingOption": _DROP, "handlingFee": _DROP, "couponDiscount": D(0)}


def order_dict(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_ORDER)
    for key, value in overrides.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = copy.deepcopy(value)
    return data


def make(**overrides: Any) -> EcwidOrder:
    return EcwidOrder.model_validate(order_dict(**overrides))


def run(order: EcwidOrder, currency: str = "USD", rules: EcwidRules | None = None) -> Target:
    return decide(order, STORE, currency, rules or EcwidRules())


def due(target: Target) -> Commission:
    """The commission of a target that must have one."""
    commission = target.commission()
    assert commission is not None, target
    return commission


def fixture(name: str) -> EcwidOrder:
    return EcwidOrder.model_validate_json((ORDERS / f"{name}.json").read_text())


def rules_with(**values: Any) -> EcwidRules:
    return EcwidRules(**values)


# --- 1. status: what counts as a sale ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "paid_statuses", "overrides", "amount", "reason"),
    [
        pytest.param("PAID", None, {}, "45.00", "paid", id="paid"),
        pytest.param("PAID", PAID_AND_CUSTOM, {}, "45.00", "paid", id="paid-with-custom-listed"),
        pytest.param(
            "CUSTOM_PAYMENT_STATUS_1", PAID_AND_CUSTOM, {}, "45.00", "paid", id="custom-listed"
        ),
        pytest.param(
            "AWAITING_PAYMENT",
            frozenset({"PAID", "AWAITING_PAYMENT"}),
            {},
            "45.00",
            "paid",
            id="awaiting-listed-counts",
        ),
        pytest.param(
            "PARTIALLY_REFUNDED",
            None,
            {"refundedAmount": D("10.00")},
            "37.27",  # 45.00 x 48.21 / 58.21
            "partially_refunded",
            id="partially-refunded-counts-the-share-left",
        ),
        pytest.param(
            "PARTIALLY_REFUNDED",
            frozenset({"CUSTOM_PAYMENT_STATUS_1"}),
            {"refundedAmount": D("10.00")},
            "37.27",
            "partially_refunded",
            id="partially-refunded-counts-whatever-is-listed",
        ),
        pytest.param("REFUNDED", None, {}, None, "refunded", id="refunded"),
        pytest.param("CANCELLED", None, {}, None, "cancelled", id="cancelled"),
        pytest.param(
            "REFUNDED", frozenset({"PAID", "REFUNDED"}), {}, None, "refunded", id="refunded-listed"
        ),
        pytest.param(
            "CANCELLED",
            frozenset({"PAID", "CANCELLED"}),
            {},
            None,
            "cancelled",
            id="cancelled-listed",
        ),
        pytest.param(
            "REFUNDED",
            None,
            {"refundedAmount": D("58.21")},
            None,
            "refunded",
            id="refunded-with-amount",
        ),
        pytest.param("AWAITING_PAYMENT", None, {}, None, "not_paid", id="awaiting-payment"),
        pytest.param("INCOMPLETE", None, {}, None, "not_paid", id="incomplete"),
        pytest.param("CUSTOM_PAYMENT_STATUS_1", None, {}, None, "not_paid", id="custom-not-listed"),
        pytest.param(
            "CUSTOM_PAYMENT_STATUS_2",
            PAID_AND_CUSTOM,
            {},
            None,
            "not_paid",
            id="other-custom-not-listed",
        ),
        pytest.param(
            "PAID",
            frozenset({"CUSTOM_PAYMENT_STATUS_1"}),
            {},
            None,
            "not_paid",
            id="paid-left-out-of-the-configured-list",
        ),
    ],
)
def test_status(
    status: str,
    paid_statuses: frozenset[str] | None,
    overrides: dict[str, Any],
    amount: str | None,
    reason: str,
) -> None:
    rules = EcwidRules(paid_statuses=paid_statuses) if paid_statuses else EcwidRules()

    target = run(make(paymentStatus=status, **overrides), rules=rules)

    assert target.reason == reason
    assert status in target.detail
    if amount is None:
        assert target.amount is None
        assert target.commission() is None
    else:
        assert str(due(target).amount) == amount


@pytest.mark.parametrize(
    "status", ["AWAITING_PAYMENT", "INCOMPLETE", "CANCELLED", "REFUNDED", "CUSTOM_PAYMENT_STATUS_3"]
)
def test_a_status_that_earns_nothing_is_decided_before_the_money_is_read(status: str) -> None:
    # Broken money fields on an order that earns nothing anyway are not a person's job.
    order = make(paymentStatus=status, total=D("-1.00"), refundedAmount=D("-5"))

    target = run(order)

    assert target.amount is None
    assert target.reason in {"not_paid", "refunded", "cancelled"}


@pytest.mark.parametrize(
    ("currency", "total", "refunded", "status", "detail"),
    [
        pytest.param(
            "USD",
            "80.52",
            "21.2",
            "PARTIALLY_REFUNDED",
            "order is PARTIALLY_REFUNDED, 21.20 of 80.52 USD refunded",
            id="usd-pads-the-refund",
        ),
        pytest.param(
            "USD", "69", "69", "PAID", "order is PAID, 69.00 of 69.00 USD refunded", id="usd-whole"
        ),
        pytest.param(
            "JPY",
            "10502",
            "2000",
            "PARTIALLY_REFUNDED",
            "order is PARTIALLY_REFUNDED, 2000 of 10502 JPY refunded",
            id="jpy-no-decimals",
        ),
        pytest.param(
            "KWD",
            "12.5",
            "2.25",
            "PARTIALLY_REFUNDED",
            "order is PARTIALLY_REFUNDED, 2.250 of 12.500 KWD refunded",
            id="kwd-three-decimals",
        ),
        pytest.param("USD", "19.9", "0", "PAID", "order is PAID", id="paid-says-no-refund"),
    ],
)
def test_the_refund_text_shows_amounts_with_the_currencys_decimals(
    currency: str, total: str, refunded: str, status: str, detail: str
) -> None:
    order = make(**BARE, paymentStatus=status, total=D(total), refundedAmount=D(refunded))

    assert run(order, currency).detail == detail


def test_nothing_due_keeps_the_identity_for_the_reconciler() -> None:
    target = run(make(paymentStatus="REFUNDED"))

    assert (target.transaction_key, target.customer_key, target.partner_key) == (
        "ecwid_1003_XJ12H",
        "jane.doe@example.com",
        "acme",
    )
    assert target.currency == "USD"


# --- 2. amounts: the basis ---------------------------------------------------------------

TAX_INCLUDED = {
    # EU store, 21 % VAT inside the prices: 121.00 - 10 % discount 12.10 = 108.90,
    # of which VAT 18.90; pickup (no shipping), no handling fee.
    "pricesIncludeTax": True,
    "subtotal": D("121.00"),
    "discount": D("12.10"),
    "couponDiscount": D("0"),
    "tax": D("18.90"),
    "total": D("108.90"),
    "shippingOption": {"shippingMethodName": "Pickup", "shippingRate": D("0")},
    "handlingFee": _DROP,
}
# EU store, 21 % VAT on goods and shipping: goods 100.00 + 21.00, shipping 10.00 + 2.10;
# tax 23.10 holds both VATs, so shipping comes off without its tax.
TAXED_SHIPPING = {
    "subtotal": D("121.00"),
    "couponDiscount": D("0"),
    "tax": D("23.10"),
    "total": D("133.10"),
    "shippingOption": {
        "shippingMethodName": "DHL",
        "shippingRate": D("12.10"),
        "shippingRateWithoutTax": D("10.00"),
    },
    "handlingFee": _DROP,
}


@pytest.mark.parametrize(
    ("overrides", "currency", "basis", "expected"),
    [
        # 58.21 - 3.71 tax - 7.50 shipping - 2.00 handling (coupon already inside total)
        pytest.param({}, "USD", "net", "45.00", id="tax-excluded-net"),
        pytest.param({}, "USD", "total", "58.21", id="tax-excluded-total"),
        pytest.param({}, "USD", "subtotal", "50.00", id="tax-excluded-subtotal"),
        pytest.param(TAX_INCLUDED, "EUR", "net", "90.00", id="tax-included-net"),
        pytest.param(TAX_INCLUDED, "EUR", "total", "108.90", id="tax-included-total"),
        pytest.param(TAX_INCLUDED, "EUR", "subtotal", "121.00", id="tax-included-subtotal"),
        # 133.10 - 23.10 - 10.00 (not 12.10: its 2.10 VAT is inside tax already)
        pytest.param(TAXED_SHIPPING, "EUR", "net", "100.00", id="shipping-without-its-tax"),
        pytest.param(
            {**TAXED_SHIPPING, "shippingOption": {"shippingRate": D("12.10")}, "tax": D("21.00")},
            "EUR",
            "net",
            "100.00",
            id="shipping-without-tax-figure-comes-off-whole",
        ),
        pytest.param(
            # handling 2.42 of which 0.42 VAT (inside tax 0.42): net 50.00
            {
                **BARE,
                "total": D("52.42"),
                "tax": D("0.42"),
                "handlingFee": {"value": D("2.42"), "valueWithoutTax": D("2.00")},
            },
            "EUR",
            "net",
            "50.00",
            id="handling-without-its-tax",
        ),
        pytest.param(
            {**BARE, "total": D("52.00"), "handlingFee": {"value": D("2.00")}},
            "USD",
            "net",
            "50.00",
            id="handling-without-tax-figure-comes-off-whole",
        ),
        pytest.param(
            {**BARE, "total": D("52.00"), "handlingFee": 2},
            "USD",
            "net",
            "50.00",
            id="handling-bare-number",
        ),
        pytest.param(
            # tip 3.00 of which 0.50 tax, packaging 1.00 without a tax figure
            {
                **BARE,
                "total": D("54.00"),
                "tax": D("0.50"),
                "customSurcharges": [
                    {"id": "tip", "total": D("3.00"), "totalWithoutTax": D("2.50")},
                    {"id": "packaging", "total": D("1.00")},
                ],
            },
            "USD",
            "net",
            "50.00",
            id="custom-surcharges",
        ),
        pytest.param(
            {**BARE, "total": D("54.00"), "customSurcharges": [{"total": D("4.00")}]},
            "USD",
            "total",
            "54.00",
            id="custom-surcharges-stay-in-total",
        ),
        pytest.param(
            {**BARE, "total": D("50.00"), "customSurcharges": None},
            "USD",
            "net",
            "50.00",
            id="custom-surcharges-null",
        ),
        pytest.param(
            {
                "tax": D(0),
                "shippingOption": _DROP,
                "couponDiscount": D(0),
                "total": D("52.00"),
            },
            "USD",
            "net",
            "50.00",
            id="handling-only",
        ),
        pytest.param(
            {"tax": D(0), "handlingFee": _DROP, "couponDiscount": D(0), "total": D("57.50")},
            "USD",
            "net",
            "50.00",
            id="shipping-only",
        ),
        pytest.param(
            {"handlingFee": None, "shippingOption": None, "tax": D(0), "total": D("45.00")},
            "USD",
            "net",
            "45.00",
            id="shipping-and-handling-null",
        ),
        pytest.param(
            {
                "subtotal": D("100.00"),
                "couponDiscount": D("10.00"),
                "discount": D("5.00"),
                "tax": D("6.80"),
                "shippingOption": {"shippingMethodName": "Ground", "shippingRate": D("4.00")},
                "handlingFee": _DROP,
                "total": D("95.80"),
            },
            "USD",
            "net",
            "85.00",
            id="coupon-and-discount-net",
        ),
        pytest.param(
            {
                "subtotal": D("100.00"),
                "couponDiscount": D("10.00"),
                "discount": D("5.00"),
                "tax": D("6.80"),
                "total": D("95.80"),
            },
            "USD",
            "subtotal",
            "100.00",
            id="subtotal-before-discounts",
        ),
        pytest.param({"total": D("33.345")}, "USD", "total", "33.35", id="usd-half-up"),
        pytest.param({"total": D("33.355")}, "USD", "total", "33.36", id="usd-half-up-odd"),
        pytest.param({"total": D("58.214")}, "USD", "total", "58.21", id="usd-down"),
        pytest.param(
            {"subtotal": D("20.125")}, "USD", "subtotal", "20.13", id="usd-subtotal-half-up"
        ),
        pytest.param(
            {
                "total": D("11500"),
                "subtotal": D("11000"),
                "tax": D("1000"),
                "couponDiscount": D(0),
                "shippingOption": {"shippingMethodName": "Yamato", "shippingRate": D("500")},
                "handlingFee": _DROP,
            },
            "JPY",
            "net",
            "10000",
            id="jpy-net",
        ),
        pytest.param(
            {**BARE, "total": D("10000"), "tax": D("909.09")},
            "JPY",
            "net",
            "9091",
            id="jpy-quantized-to-yen",
        ),
        pytest.param(
            {**BARE, "total": D("1001"), "tax": D("90.5")},
            "jpy",
            "net",
            "911",
            id="jpy-half-up-not-half-even",
        ),
        pytest.param(
            {**BARE, "total": D("12.3455")}, "KWD", "net", "12.346", id="kwd-three-places"
        ),
        pytest.param({**BARE, "total": D("12.3")}, "KWD", "total", "12.300", id="kwd-pads"),
    ],
)
def test_amount(overrides: dict[str, Any], currency: str, basis: str, expected: str) -> None:
    target = run(make(**overrides), currency, rules_with(amount_basis=basis))

    assert target.reason == "paid"
    assert due(target).amount == D(expected)
    assert str(due(target).amount) == expected  # quantized to the currency's places


@pytest.mark.parametrize(
    ("overrides", "basis", "expected"),
    [
        pytest.param({}, "net", "45.00", id="net"),
        pytest.param({}, "total", "58.21", id="total"),
        pytest.param({}, "subtotal", "50.00", id="subtotal"),
        pytest.param({"total": D("58.214")}, "net", "45.004", id="not-quantized"),
    ],
)
def test_basis_amount_is_not_quantized(
    overrides: dict[str, Any], basis: AmountBasis, expected: str
) -> None:
    assert str(basis_amount(make(**overrides), basis)) == expected


# --- 2. amounts: the share left after refunds --------------------------------------------

PARTIAL = "PARTIALLY_REFUNDED"


@pytest.mark.parametrize(
    ("status", "overrides", "currency", "basis", "amount", "reason"),
    [
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("19.99"), "refundedAmount": D("7.00")},
            "USD",
            "total",
            "12.99",
            "partially_refunded",
            id="19.99-paid-7.00-refunded",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("10.00")},
            "USD",
            "net",
            "37.27",  # 45.00 x 48.21 / 58.21 = 37.2693...
            "partially_refunded",
            id="net-keeps-the-share",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("10.00")},
            "USD",
            "subtotal",
            "41.41",  # 50.00 x 48.21 / 58.21 = 41.4104...
            "partially_refunded",
            id="subtotal-keeps-the-share",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("10.00")},
            "USD",
            "total",
            "48.21",
            "partially_refunded",
            id="total-less-the-refund",
        ),
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("30.00"), "tax": D("20.00"), "refundedAmount": D("10.00")},
            "USD",
            "net",
            "6.67",  # 10 x 20/30: rounding the share (0.67) first would give 6.70
            "partially_refunded",
            id="rounded-once-at-the-end",
        ),
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("40.00"), "tax": D("30.00"), "refundedAmount": D("39.90")},
            "USD",
            "net",
            "0.03",  # 10 x 0.10/40 = 0.025: half up, not half even
            "partially_refunded",
            id="half-up-tie",
        ),
        pytest.param(
            PARTIAL,
            {
                "total": D("11500"),
                "tax": D("1000"),
                "shippingOption": {"shippingRate": D("500")},
                "handlingFee": _DROP,
                "refundedAmount": D("2500"),
            },
            "JPY",
            "net",
            "7826",  # 10000 x 9000/11500 = 7826.08...
            "partially_refunded",
            id="jpy-zero-decimals",
        ),
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("12.000"), "tax": D("2.000"), "refundedAmount": D("5.000")},
            "KWD",
            "net",
            "5.833",  # 10 x 7/12 = 5.8333...
            "partially_refunded",
            id="kwd-three-decimals",
        ),
        pytest.param(
            PARTIAL,
            {
                "refundedAmount": D("0"),
                "refunds": [{"amount": D("6.00"), "source": "CP"}, {"amount": D("4.00")}],
            },
            "USD",
            "total",
            "48.21",
            "partially_refunded",
            id="refunded-amount-zero-uses-refunds",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": None, "refunds": [{"amount": D("10.00")}]},
            "USD",
            "total",
            "48.21",
            "partially_refunded",
            id="refunded-amount-null-uses-refunds",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("10.00"), "refunds": [{"amount": D("30.00")}]},
            "USD",
            "total",
            "48.21",
            "partially_refunded",
            id="refunded-amount-wins-over-refunds",
        ),
        pytest.param(
            "PAID",
            {"refundedAmount": D("10.00")},
            "USD",
            "total",
            "48.21",
            "partially_refunded",
            id="paid-with-a-refund",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("58.21")},
            "USD",
            "net",
            None,
            "refunded",
            id="refund-equals-total",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("70.00")},
            "USD",
            "net",
            None,
            "refunded",
            id="refund-above-total",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("0"), "refunds": [{"amount": D("58.21")}]},
            "USD",
            "total",
            None,
            "refunded",
            id="refunds-add-up-to-total",
        ),
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("100.00"), "tax": D("99.99"), "refundedAmount": D("99.99")},
            "USD",
            "net",
            None,  # 0.01 x 0.01/100 rounds to 0.00
            "refunded",
            id="share-left-rounds-to-nothing",
        ),
        pytest.param(
            "PAID",
            {**BARE, "total": D("0"), "subtotal": D("0")},
            "USD",
            "total",
            None,
            "zero_amount",
            id="zero-total",
        ),
        pytest.param(
            "PAID",
            {**BARE, "total": D("7.50"), "shippingOption": {"shippingRate": D("7.50")}},
            "USD",
            "net",
            None,
            "zero_amount",
            id="zero-net-basis",
        ),
        pytest.param(
            "PAID",
            {**BARE, "total": D("10.00"), "subtotal": D("0")},
            "USD",
            "subtotal",
            None,
            "zero_amount",
            id="zero-subtotal-basis",
        ),
        pytest.param(
            PARTIAL,
            {**BARE, "total": D("0"), "refundedAmount": D("5.00")},
            "USD",
            "total",
            None,
            "zero_amount",
            id="zero-total-partially-refunded",
        ),
    ],
)
def test_share_after_refunds(
    status: str,
    overrides: dict[str, Any],
    currency: str,
    basis: str,
    amount: str | None,
    reason: str,
) -> None:
    order = make(paymentStatus=status, **overrides)

    target = run(order, currency, rules_with(amount_basis=basis))

    assert target.reason == reason, target.detail
    if amount is None:
        assert target.amount is None
        assert target.commission() is None
    else:
        assert str(due(target).amount) == amount


def test_a_paid_order_whose_amount_rounds_to_nothing_is_a_zero_amount() -> None:
    # 0.004 USD, nothing refunded: nothing to commission, and nothing was refunded either.
    target = run(make(**BARE, total=D("0.004")), rules=rules_with(amount_basis="total"))

    assert target.amount is None
    assert target.reason == "zero_amount", target.detail


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"refundedAmount": D("21.2")}, "21.2", id="refunded-amount"),
        pytest.param(
            {"refundedAmount": D("0"), "refunds": [{"amount": D("16.2")}, {"amount": D("5")}]},
            "21.2",
            id="sum-of-refunds",
        ),
        pytest.param(
            {"refundedAmount": D("3"), "refunds": [{"amount": D("16.2")}]},
            "3",
            id="refunded-amount-first",
        ),
        pytest.param({"refundedAmount": D("0"), "refunds": None}, "0", id="nothing"),
    ],
)
def test_refunded_amount(overrides: dict[str, Any], expected: str) -> None:
    assert refunded_amount(make(**overrides)) == D(expected)


# --- 3. undecidable orders ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "overrides", "currency", "basis", "message"),
    [
        pytest.param("PAID", {}, "XYZ", "net", "ISO 4217", id="unknown-currency"),
        pytest.param("PAID", {}, "", "net", "ISO 4217", id="empty-currency"),
        pytest.param("PAID", {}, "EURO", "net", "ISO 4217", id="four-letter-currency"),
        pytest.param("PAID", {}, "US", "net", "ISO 4217", id="two-letter-currency"),
        pytest.param(
            PARTIAL, {"refundedAmount": D("5")}, "ZZZ", "net", "ISO 4217", id="currency-first"
        ),
        pytest.param("PAID", {"total": D("-58.21")}, "USD", "total", "negative", id="neg-total"),
        pytest.param(
            "PAID",
            {**BARE, "total": D("5.00"), "shippingOption": {"shippingRate": D("7.50")}},
            "USD",
            "net",
            "negative",
            id="negative-net-basis",
        ),
        pytest.param(
            "PAID", {"subtotal": D("-1.00")}, "USD", "subtotal", "negative", id="neg-subtotal"
        ),
        pytest.param(
            # A negative refundedAmount is not a refund: refunds[] (empty) is read instead.
            PARTIAL,
            {"refundedAmount": D("-5.00")},
            "USD",
            "net",
            "negative|no refunded amount",
            id="negative-refunded-amount",
        ),
        pytest.param(
            PARTIAL,
            {"refunds": [{"amount": D("-5.00")}]},
            "USD",
            "net",
            "negative",
            id="negative-refunds-entry",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("0"), "refunds": []},
            "USD",
            "net",
            "no refunded amount",
            id="partial-refund-without-amount",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": None, "refunds": None},
            "USD",
            "net",
            "no refunded amount",
            id="partial-refund-nulls",
        ),
        pytest.param(
            PARTIAL,
            {"refundedAmount": D("0"), "refunds": [{"amount": D("0")}]},
            "USD",
            "net",
            "no refunded amount",
            id="partial-refund-of-zero",
        ),
        # A negative part of the basis would raise the commission above what was paid.
        pytest.param(
            "PAID",
            {**BARE, "total": D("90"), "customSurcharges": [{"total": D("-10")}]},
            "USD",
            "net",
            r"customSurcharges\[0\]",
            id="negative-surcharge",
        ),
        pytest.param("PAID", {"tax": D("-5")}, "USD", "net", "tax", id="negative-tax"),
        pytest.param(
            "PAID",
            {"shippingOption": {"shippingRate": D("-5")}},
            "USD",
            "net",
            "shippingOption",
            id="negative-shipping",
        ),
        pytest.param(
            # One negative entry would cancel part of a real refund.
            PARTIAL,
            {"refunds": [{"amount": D("50")}, {"amount": D("-10")}]},
            "USD",
            "net",
            r"refunds\[1\]",
            id="negative-refund-among-others",
        ),
        pytest.param(
            "PAID",
            {**BARE, "total": D("12345678901234567.89")},
            "USD",
            "total",
            "cannot be sent exactly",
            id="amount-too-precise-for-json",
        ),
        pytest.param("PAID", {"tax": _DROP}, "USD", "net", "no tax", id="net-without-tax"),
        pytest.param(
            "PAID", {"subtotal": None}, "USD", "subtotal", "no subtotal", id="subtotal-missing"
        ),
    ],
)
def test_undecidable(
    status: str, overrides: dict[str, Any], currency: str, basis: str, message: str
) -> None:
    order = make(paymentStatus=status, **overrides)

    with pytest.raises(UndecidableOrder, match=message) as raised:
        run(order, currency, rules_with(amount_basis=basis))

    assert isinstance(raised.value, PermanentError)
    assert raised.value.kind == "undecidable"


# --- 4. customer key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "mode", "expected"),
    [
        pytest.param({}, "email", "jane.doe@example.com", id="email"),
        pytest.param(
            {"email": "  Jane.Doe@Example.COM \n"}, "email", "jane.doe@example.com", id="email-norm"
        ),
        pytest.param({}, "customerId", "270919557", id="customer-id-int"),
        pytest.param({"customerId": "270919557"}, "customerId", "270919557", id="customer-id-str"),
        pytest.param({"email": "JANE@X.TEST"}, "customerId", "270919557", id="id-before-email"),
        pytest.param(
            {"customerId": _DROP, "email": "Jane@X.Test"},
            "customerId",
            "jane@x.test",
            id="customer-id-missing-falls-back-to-email",
        ),
        pytest.param(
            {"customerId": 0}, "customerId", "jane.doe@example.com", id="guest-id-zero-uses-email"
        ),
        pytest.param(
            {"customerId": ""}, "customerId", "jane.doe@example.com", id="empty-id-uses-email"
        ),
        pytest.param(
            {"email": _DROP},
            "email",
            "ecwid_1003_customer_270919557",
            id="email-missing-namespaced-customer-id",
        ),
        pytest.param({"email": "   "}, "email", "ecwid_1003_customer_270919557", id="email-blank"),
        pytest.param({"email": ""}, "email", "ecwid_1003_customer_270919557", id="email-empty"),
        pytest.param(
            {"email": None, "customerId": "C-77"},
            "email",
            "ecwid_1003_customer_C-77",
            id="email-null-text-customer-id",
        ),
        pytest.param(
            {"email": _DROP, "customerId": _DROP},
            "email",
            "ecwid_1003_order_XJ12H",
            id="neither-but-partner-order-key",
        ),
        pytest.param(
            {"email": "", "customerId": 0},
            "customerId",
            "ecwid_1003_order_XJ12H",
            id="neither-customer-id-mode-order-key",
        ),
        pytest.param(
            {"email": _DROP, "customerId": _DROP, "extraFields": {}, "orderExtraFields": []},
            "email",
            None,
            id="neither-and-no-partner",
        ),
        pytest.param(
            {"email": " ", "customerId": None, "extraFields": None, "orderExtraFields": None},
            "customerId",
            None,
            id="neither-and-no-partner-customer-id-mode",
        ),
    ],
)
def test_customer_key(
    overrides: dict[str, Any], mode: Literal["email", "customerId"], expected: str | None
) -> None:
    order = make(**overrides)
    referred = partner_key(order, "partnero_partner") is not None

    assert customer_key(order, STORE, mode, referred=referred) == expected
    target = run(order, rules=rules_with(customer_key=mode))
    assert target.customer_key == expected
    assert target.amount == D("45.00")  # the money is decided whatever the key
    if expected is None:
        # Nobody to credit: the reconciler records the sale as not referred.
        assert target.commission() is None
    else:
        assert due(target).customer_key == expected


@pytest.mark.parametrize(
    ("referred", "expected"),
    [(True, "ecwid_1003_order_XJ12H"), (False, None)],
    ids=["with-partner", "without-partner"],
)
def test_order_key_only_for_a_referred_sale(referred: bool, expected: str | None) -> None:
    order = make(email=_DROP, customerId=_DROP)

    assert customer_key(order, "1003", "email", referred=referred) == expected


def test_email_is_sent_stripped_and_the_key_lower_cased() -> None:
    commission = due(run(make(email="  Jane.Doe@Example.COM ")))

    assert commission.customer_key == "jane.doe@example.com"
    assert commission.email == "Jane.Doe@Example.COM"


# --- 5. partner key ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        pytest.param({}, "partnero_partner", "acme", id="both-same"),
        pytest.param(
            {"orderExtraFields": _DROP}, "partnero_partner", "acme", id="extra-fields-only"
        ),
        pytest.param(
            {"extraFields": {}, "orderExtraFields": [{"id": "partnero_partner", "value": "acme"}]},
            "partnero_partner",
            "acme",
            id="order-extra-fields-only",
        ),
        pytest.param({"extraFields": None}, "partnero_partner", "acme", id="extra-fields-null"),
        pytest.param(
            {
                "extraFields": {"partnero_partner": "acme"},
                "orderExtraFields": [{"id": "partnero_partner", "value": "other"}],
            },
            "partnero_partner",
            "acme",
            id="extra-fields-win",
        ),
        pytest.param(
            {"extraFields": {}, "orderExtraFields": []}, "partnero_partner", None, id="absent"
        ),
        pytest.param(
            {"extraFields": _DROP, "orderExtraFields": _DROP},
            "partnero_partner",
            None,
            id="absent-keys",
        ),
        pytest.param(
            {
                "extraFields": {"how_did_you_hear": "Instagram"},
                "orderExtraFields": [{"id": "how_did_you_hear", "value": "Instagram"}],
            },
            "partnero_partner",
            None,
            id="other-fields-only",
        ),
        pytest.param(
            {"extraFields": {"partnero_partner": "   "}, "orderExtraFields": []},
            "partnero_partner",
            None,
            id="whitespace-only-ignored",
        ),
        pytest.param(
            {
                "extraFields": {"partnero_partner": "  "},
                "orderExtraFields": [{"id": "partnero_partner", "value": "acme"}],
            },
            "partnero_partner",
            "acme",
            id="whitespace-falls-back-to-order-extra-fields",
        ),
        pytest.param(
            {"extraFields": {"partnero_partner": ""}, "orderExtraFields": []},
            "partnero_partner",
            None,
            id="empty-string",
        ),
        pytest.param(
            {"extraFields": {"partnero_partner": " acme \n"}},
            "partnero_partner",
            "acme",
            id="stripped",
        ),
        pytest.param(
            {"extraFields": {"partnero_partner": None}, "orderExtraFields": []},
            "partnero_partner",
            None,
            id="null-value",
        ),
        pytest.param(
            {
                "extraFields": {"ref_code": "acme", "partnero_partner": "other"},
                "orderExtraFields": [{"id": "ref_code", "value": "acme"}],
            },
            "ref_code",
            "acme",
            id="custom-field-name",
        ),
        pytest.param(
            {"extraFields": {}, "orderExtraFields": [{"id": "ref_code", "value": "acme"}]},
            "ref_code",
            "acme",
            id="custom-field-name-order-extra-fields",
        ),
        pytest.param({}, "ref_code", None, id="custom-field-name-absent"),
    ],
)
def test_partner_key(overrides: dict[str, Any], field: str, expected: str | None) -> None:
    order = make(**overrides)

    assert partner_key(order, field) == expected
    target = run(order, rules=rules_with(partner_field=field))
    # No partner is still a commission: the customer may exist from a sign-up.
    assert due(target).partner_key == expected


# --- names, date, product, keys, currency ------------------------------------------------


@pytest.mark.parametrize(
    ("person", "name", "surname"),
    [
        pytest.param(
            {"name": "Jane Doe", "firstName": "Jane", "lastName": "Doe"}, "Jane", "Doe", id="all"
        ),
        pytest.param(
            {"name": "Ignored Here", "firstName": "Jane", "lastName": "Doe"},
            "Jane",
            "Doe",
            id="first-last-win",
        ),
        pytest.param({"name": "Jane Doe"}, "Jane", "Doe", id="split-name"),
        pytest.param({"name": "Mary Ann Smith"}, "Mary", "Ann Smith", id="split-three-words"),
        pytest.param({"name": "Jane  Doe"}, "Jane", "Doe", id="double-space"),
        pytest.param({"name": " Jane Doe "}, "Jane", "Doe", id="surrounding-spaces"),
        pytest.param({"name": "Cher"}, "Cher", None, id="single-word"),
        pytest.param({"name": ""}, None, None, id="empty-name"),
        pytest.param({}, None, None, id="empty-person"),
        pytest.param(_DROP, None, None, id="no-billing-person"),
        pytest.param(None, None, None, id="billing-person-null"),
    ],
)
def test_name_and_surname(person: Any, name: str | None, surname: str | None) -> None:
    target = run(make(billingPerson=person))

    assert (target.name, target.surname) == (name, surname)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, 1725434529, id="create-timestamp"),
        pytest.param({"createTimestamp": _DROP}, None, id="missing"),
    ],
)
def test_created_at_is_the_order_creation_time(
    overrides: dict[str, Any], expected: int | None
) -> None:
    assert run(make(**overrides)).created_at == expected


@pytest.mark.parametrize(
    ("mode", "items", "expected"),
    [
        pytest.param("", None, None, id="off"),
        pytest.param("productId", None, "561133", id="product-id"),
        pytest.param("sku", None, "MUG-BLUE", id="sku"),
        pytest.param(
            "productId",
            [{"productId": 7, "sku": "A"}, {"productId": 8, "sku": "B"}],
            "7",
            id="first-item",
        ),
        pytest.param("sku", [{"productId": 7}], None, id="sku-missing"),
        pytest.param("sku", [{"productId": 7, "sku": ""}], None, id="sku-empty"),
        pytest.param("productId", [], None, id="no-items"),
    ],
)
def test_product_id(mode: str, items: list[dict[str, Any]] | None, expected: str | None) -> None:
    order = make(items=items) if items is not None else make()

    assert run(order, rules=rules_with(product_id=mode)).product_id == expected


@pytest.mark.parametrize(
    ("store", "order_id", "expected"),
    [
        (1003, "XJ12H", "ecwid_1003_XJ12H"),
        ("1003", "XJ12H", "ecwid_1003_XJ12H"),
        (15695068, "K8XTQ", "ecwid_15695068_K8XTQ"),
    ],
)
def test_transaction_key(store: int | str, order_id: str, expected: str) -> None:
    assert transaction_key(store, order_id) == expected


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [("XJ12H", "ecwid_1003_XJ12H"), (12345, "ecwid_1003_12345")],
)
def test_decide_uses_the_public_order_id(order_id: str | int, expected: str) -> None:
    assert run(make(id=order_id)).transaction_key == expected


@pytest.mark.parametrize(("currency", "expected"), [("usd", "USD"), ("EUR", "EUR"), ("Jpy", "JPY")])
def test_currency_is_upper_cased(currency: str, expected: str) -> None:
    assert run(make(), currency).currency == expected


def test_full_target_for_the_base_order() -> None:
    target = run(make(), "usd", rules_with(product_id="sku"))

    assert target == Target(
        transaction_key="ecwid_1003_XJ12H",
        amount=D("45.00"),
        currency="USD",
        reason="paid",
        detail="order is PAID",
        customer_key="jane.doe@example.com",
        partner_key="acme",
        email="jane.doe@example.com",
        name="Jane",
        surname="Doe",
        created_at=1725434529,
        product_id="MUG-BLUE",
    )
    assert target.commission() == Commission(
        transaction_key="ecwid_1003_XJ12H",
        amount=D("45.00"),
        currency="USD",
        customer_key="jane.doe@example.com",
        partner_key="acme",
        email="jane.doe@example.com",
        name="Jane",
        surname="Doe",
        created_at=1725434529,
        product_id="MUG-BLUE",
    )


def test_amounts_parse_exactly_from_json_text() -> None:
    text = json.dumps({"id": "A", "paymentStatus": "PAID", "email": "a@b.test"})
    text = text[:-1] + ', "total": 71.39, "tax": 0.1, "subtotal": 0.3}'

    order = EcwidOrder.model_validate_json(text)

    assert (order.total, order.tax, order.subtotal) == (D("71.39"), D("0.1"), D("0.3"))
    assert due(run(order)).amount == D("71.29")


# --- the realistic orders in events/ecwid/orders -----------------------------------------

# name, currency, rules, amount (None: nothing due), reason, partner, customer key
FIXTURE_CASES = [
    pytest.param(
        "paid-with-partner",
        "USD",
        EcwidRules(),
        "62.10",  # 71.39 - 2.79 tax - 5 shipping - 1.5 handling
        "paid",
        "demo-partner",
        "jane.doe@example.com",
        id="paid-with-partner",
    ),
    pytest.param(
        "paid-with-partner",
        "USD",
        EcwidRules(amount_basis="total"),
        "71.39",
        "paid",
        "demo-partner",
        "jane.doe@example.com",
        id="paid-with-partner-total",
    ),
    pytest.param(
        "paid-with-partner",
        "USD",
        EcwidRules(amount_basis="subtotal"),
        "69.00",
        "paid",
        "demo-partner",
        "jane.doe@example.com",
        id="paid-with-partner-subtotal",
    ),
    pytest.param(
        "paid-with-partner",
        "USD",
        EcwidRules(customer_key="customerId"),
        "62.10",
        "paid",
        "demo-partner",
        "281734402",
        id="paid-with-partner-customer-id",
    ),
    pytest.param(
        "paid-no-partner",
        "USD",
        EcwidRules(),
        "40.00",  # 47.8 - 2.8 - 5
        "paid",
        None,
        "sam.ortiz@example.net",
        id="paid-no-partner",
    ),
    pytest.param(
        "paid-partner-only-in-order-extra-fields",
        "USD",
        EcwidRules(),
        "46.55",  # 54.34 - 2.79 - 5 (discount already inside total)
        "paid",
        "demo-partner",
        "mei.chen@example.com",
        id="paid-partner-only-in-order-extra-fields",
    ),
    pytest.param(
        "paid-partner-only-in-order-extra-fields",
        "USD",
        EcwidRules(customer_key="customerId"),
        "46.55",
        "paid",
        "demo-partner",
        "mei.chen@example.com",  # a guest: no customer id, so the email
        id="guest-without-customer-id-uses-email",
    ),
    pytest.param(
        "paid-tax-included",
        "EUR",
        EcwidRules(),
        "47.50",  # 57.75 - 4.75 VAT - 5.5 shipping
        "paid",
        "demo-partner",
        "lukas.meyer@example.org",
        id="paid-tax-included",
    ),
    pytest.param(
        "partially-refunded",
        "USD",
        EcwidRules(),
        "50.83",  # (80.52 - 5.52 - 6) x (80.52 - 21.2) / 80.52 = 50.833...
        "partially_refunded",
        "demo-partner",
        "ana.souza@example.com",
        id="partially-refunded",
    ),
    pytest.param(
        "partially-refunded",
        "USD",
        EcwidRules(amount_basis="total"),
        "59.32",  # 80.52 - 21.2
        "partially_refunded",
        "demo-partner",
        "ana.souza@example.com",
        id="partially-refunded-total",
    ),
    pytest.param(
        "zero-decimal-store",
        "JPY",
        EcwidRules(),
        "8820",  # 10502 - 882 - 800
        "paid",
        "demo-partner",
        "haruto.sato@example.jp",
        id="zero-decimal-store",
    ),
    pytest.param(
        "custom-status",
        "USD",
        EcwidRules(),
        None,
        "not_paid",
        "demo-partner",
        "nora.lind@example.com",
        id="custom-status-default",
    ),
    pytest.param(
        "custom-status",
        "USD",
        EcwidRules(paid_statuses=PAID_AND_CUSTOM),
        "110.00",  # 115.5 - 5.5
        "paid",
        "demo-partner",
        "nora.lind@example.com",
        id="custom-status-counted",
    ),
    pytest.param(
        "awaiting-payment",
        "USD",
        EcwidRules(),
        None,
        "not_paid",
        "demo-partner",
        "omar.haddad@example.com",
        id="awaiting",
    ),
    pytest.param(
        "incomplete",
        "USD",
        EcwidRules(),
        None,
        "not_paid",
        "demo-partner",
        "ravi.patel@example.com",
        id="incomplete",
    ),
    pytest.param(
        "cancelled",
        "USD",
        EcwidRules(),
        None,
        "cancelled",
        "demo-partner",
        "lea.martin@example.com",
        id="cancelled",
    ),
    pytest.param(
        "refunded",
        "USD",
        EcwidRules(),
        None,
        "refunded",
        "demo-partner",
        "tom.becker@example.com",
        id="refunded",
    ),
]


@pytest.mark.parametrize(
    ("name", "currency", "rules", "amount", "reason", "partner", "customer"), FIXTURE_CASES
)
def test_fixture_orders(
    name: str,
    currency: str,
    rules: EcwidRules,
    amount: str | None,
    reason: str,
    partner: str | None,
    customer: str | None,
) -> None:
    target = decide(fixture(name), STORE, currency, rules)

    assert target.reason == reason, target.detail
    assert target.partner_key == partner
    assert target.customer_key == customer
    assert target.currency == currency
    if amount is None:
        assert target.amount is None
        assert target.commission() is None
        return
    commission = due(target)
    assert str(commission.amount) == amount
    # The body Partnero gets carries the amount digit for digit.
    body = json.loads(json.dumps(transaction_request(commission)), parse_float=Decimal)
    assert body["amount"] == D(amount)


def test_every_fixture_case_has_its_file() -> None:
    names = {str(case.values[0]) for case in FIXTURE_CASES}

    assert names == {path.stem for path in ORDERS.glob("*.json")}


def test_fixture_identity_fields() -> None:
    order = fixture("paid-with-partner")

    target = run(order, rules=rules_with(product_id="sku"))

    assert target.transaction_key == "ecwid_1003_Q7MXT"
    assert target.email == "Jane.Doe@Example.COM"
    assert (target.name, target.surname) == ("Jane", "Doe")
    assert target.created_at == order.createTimestamp
    assert target.product_id == "TEE-ORG-M"


@pytest.mark.parametrize("path", sorted(ORDERS.glob("*.json")), ids=lambda path: path.stem)
def test_every_fixture_parses_the_same_from_text_and_from_decimal_json(path: Path) -> None:
    text = path.read_text()

    from_text = EcwidOrder.model_validate_json(text)
    from_dict = EcwidOrder.model_validate(json.loads(text, parse_float=Decimal))

    assert from_text == from_dict
    assert isinstance(from_text.total, Decimal)


@pytest.mark.parametrize("customer_id", [0, "0", " 0 ", "", None])
def test_a_zero_or_empty_customer_id_names_nobody(customer_id: Any) -> None:
    # Guest checkouts: all of them sharing "ecwid_1003_customer_0" would merge strangers.
    order = make(email="", customerId=customer_id)
    assert customer_key(order, STORE, "email", referred=True) == "ecwid_1003_order_XJ12H"
    assert customer_key(order, STORE, "email", referred=False) is None

"""The Stripe payment decision from the payment's current state: tables of cases."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge.stripe.attribution import Attribution
from partnero_bridge.stripe.payment import (
    Dispute,
    PaymentRules,
    PaymentState,
    PaymentStatus,
    Refund,
    charge_status,
    decide_payment,
    invoice_payments_split,
    invoice_status,
    invoice_tax,
    payment_intent_status,
    refunds_of,
)

pytestmark = pytest.mark.unit

JANE = Attribution(customer_key="jane@example.com", partner_key="acme", email="jane@example.com")
PAID = PaymentState(
    transaction_key="stripe_pi_1",
    currency="usd",
    status=PaymentStatus.PAID,
    total=1999,
    charged=1999,
    created=1764400000,
    attribution=JANE,
)
TOTAL = PaymentRules(amount_basis="total")
EXCLUDING_TAX = PaymentRules()


@pytest.mark.parametrize(
    ("changes", "rules", "amount", "reason"),
    [
        pytest.param({}, TOTAL, "19.99", "paid", id="paid"),
        # Refunds count by their current status, whatever order their events came in.
        pytest.param(
            {"refunds": (Refund("re_1", 1999, "failed"),)},
            TOTAL,
            "19.99",
            "paid",
            id="refund-failed-after-reported",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 1999, "canceled"),)},
            TOTAL,
            "19.99",
            "paid",
            id="refund-canceled",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 700, "pending"),)},
            TOTAL,
            "12.99",
            "partially_refunded",
            id="refund-pending-counts",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 700, "succeeded"),)},
            TOTAL,
            "12.99",
            "partially_refunded",
            id="share-19.99-less-7.00",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 700, "succeeded"), Refund("re_1", 700, "succeeded"))},
            TOTAL,
            "12.99",
            "partially_refunded",
            id="same-refund-listed-twice-counts-once",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 1000, "succeeded"), Refund("re_2", 999, "pending"))},
            TOTAL,
            None,
            "refunded",
            id="refunded-in-two",
        ),
        pytest.param(
            {"refunds": (Refund("re_1", 1999, "succeeded"),)},
            TOTAL,
            None,
            "refunded",
            id="refund-before-its-sale-decided-together",
        ),
        # Authorisations and captures.
        pytest.param(
            {"status": PaymentStatus.AWAITING_CAPTURE, "charged": 0},
            TOTAL,
            None,
            "awaiting_capture",
            id="authorised-only",
        ),
        pytest.param(
            {"total": 5000, "charged": 3000},
            TOTAL,
            "30.00",
            "paid",
            id="partial-capture",
        ),
        pytest.param(
            {"status": PaymentStatus.CANCELED, "charged": 0},
            TOTAL,
            None,
            "canceled",
            id="expired-or-canceled-authorisation",
        ),
        pytest.param({"status": PaymentStatus.NOT_PAID}, TOTAL, None, "not_paid", id="open"),
        # Disputes: inquiries do not reverse, open and lost do, won restores.
        pytest.param(
            {"disputes": (Dispute("dp_1", "warning_needs_response"),)},
            TOTAL,
            "19.99",
            "paid",
            id="inquiry",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "needs_response"),)},
            TOTAL,
            None,
            "disputed",
            id="open-dispute",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "lost"),)},
            TOTAL,
            None,
            "disputed",
            id="lost",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "won"),)},
            TOTAL,
            "19.99",
            "paid",
            id="won-restores",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "needs_response", 500),)},
            TOTAL,
            "14.99",
            "partially_disputed",
            id="partial-dispute-keeps-the-rest",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "lost", 1999),)},
            TOTAL,
            None,
            "disputed",
            id="dispute-of-the-whole",
        ),
        pytest.param(
            {
                "refunds": (Refund("re_1", 500, "succeeded"),),
                "disputes": (Dispute("dp_1", "lost", 1499),),
            },
            TOTAL,
            None,
            "disputed",
            id="refund-then-dispute-of-the-rest",
        ),
        pytest.param(
            {"disputes": (Dispute("dp_1", "lost", 500), Dispute("dp_1", "lost", 500))},
            TOTAL,
            "14.99",
            "partially_disputed",
            id="one-dispute-listed-twice-counts-once",
        ),
        # Money that did not move through Stripe.
        pytest.param(
            {"charged": 0, "out_of_band": 4500, "total": 4500},
            TOTAL,
            None,
            "out_of_band",
            id="paid-out-of-band",
        ),
        pytest.param(
            {"charged": 0, "out_of_band": 4500, "total": 4500},
            PaymentRules(amount_basis="total", count_out_of_band=True),
            "45.00",
            "paid",
            id="out-of-band-counted-when-asked",
        ),
        pytest.param({"charged": 0, "total": 0}, TOTAL, None, "zero_amount", id="zero-invoice"),
        # Tax applies to what was actually charged.
        pytest.param(
            {"total": 12000, "tax": 2000, "charged": 12000},
            EXCLUDING_TAX,
            "100.00",
            "paid",
            id="tax-excluded",
        ),
        pytest.param(
            {"total": 12000, "tax": 2000, "charged": 6000},
            EXCLUDING_TAX,
            "50.00",
            "paid",
            id="tax-share-of-a-partly-paid-invoice",
        ),
        pytest.param(
            {
                "total": 12000,
                "tax": 2000,
                "charged": 12000,
                "refunds": (Refund("re_1", 3000, "succeeded"),),
            },
            EXCLUDING_TAX,
            "75.00",
            "partially_refunded",
            id="tax-excluded-partial-refund",
        ),
        pytest.param(
            {
                "currency": "jpy",
                "total": 5000,
                "charged": 5000,
                "refunds": (Refund("re_1", 1250, "succeeded"),),
            },
            TOTAL,
            "3750",
            "partially_refunded",
            id="jpy",
        ),
        pytest.param(
            {"attribution": replace(JANE, opted_out=True)},
            TOTAL,
            None,
            "opted_out",
            id="opted-out",
        ),
    ],
)
def test_decide_payment(
    changes: dict[str, Any], rules: PaymentRules, amount: str | None, reason: str
) -> None:
    target = decide_payment(replace(PAID, **changes), rules)
    assert (target.amount, target.reason) == (
        Decimal(amount) if amount is not None else None,
        reason,
    )
    if amount is not None:
        assert str(target.amount) == amount  # rounded once, to the currency's minor unit
    assert (target.transaction_key, target.customer_key, target.partner_key) == (
        "stripe_pi_1",
        "jane@example.com",
        "acme",
    )
    assert target.currency == target.currency.upper()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", PaymentStatus.PAID),
        ("requires_capture", PaymentStatus.AWAITING_CAPTURE),
        ("canceled", PaymentStatus.CANCELED),
        ("processing", PaymentStatus.NOT_PAID),
        ("requires_payment_method", PaymentStatus.NOT_PAID),
        ("requires_action", PaymentStatus.NOT_PAID),
    ],
)
def test_payment_intent_status(status: str, expected: PaymentStatus) -> None:
    assert payment_intent_status(status) is expected


@pytest.mark.parametrize(
    ("charge", "expected"),
    [
        ({"status": "succeeded", "captured": True}, PaymentStatus.PAID),
        ({"status": "succeeded", "captured": False}, PaymentStatus.AWAITING_CAPTURE),
        (
            {"status": "succeeded", "captured": False, "refunded": True},
            PaymentStatus.CANCELED,
        ),
        ({"status": "pending", "captured": True}, PaymentStatus.NOT_PAID),
        ({"status": "failed", "captured": False}, PaymentStatus.NOT_PAID),
    ],
)
def test_charge_status(charge: dict[str, Any], expected: PaymentStatus) -> None:
    assert charge_status(charge) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("paid", PaymentStatus.PAID),
        ("open", PaymentStatus.NOT_PAID),
        ("draft", PaymentStatus.NOT_PAID),
        ("void", PaymentStatus.CANCELED),
        ("uncollectible", PaymentStatus.CANCELED),
    ],
)
def test_invoice_status(status: str, expected: PaymentStatus) -> None:
    assert invoice_status(status) is expected


def _payment(kind: str, amount: int, status: str = "paid") -> dict[str, Any]:
    return {"amount_paid": amount, "status": status, "payment": {"type": kind}}


@pytest.mark.parametrize(
    ("amount_paid", "payments", "expected"),
    [
        pytest.param(4500, [_payment("payment_intent", 4500)], (4500, 0), id="card"),
        pytest.param(4500, [_payment("charge", 4500)], (4500, 0), id="legacy-charge"),
        pytest.param(4500, [_payment("out_of_band_payment", 4500)], (0, 4500), id="oob"),
        pytest.param(4500, [], (0, 4500), id="paid-but-no-stripe-payment-listed"),
        pytest.param(
            4500,
            [_payment("payment_intent", 4500, "canceled"), _payment("payment_intent", 4500)],
            (4500, 0),
            id="a-canceled-attempt-does-not-count",
        ),
        pytest.param(
            6000,
            [_payment("payment_intent", 2000), _payment("payment_intent", 4000)],
            (6000, 0),
            id="two-partial-payments",
        ),
        pytest.param(0, [], (0, 0), id="zero-invoice"),
    ],
)
def test_invoice_payments_split(
    amount_paid: int, payments: list[dict[str, Any]], expected: tuple[int, int]
) -> None:
    assert invoice_payments_split({"amount_paid": amount_paid}, payments) == expected


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        ({"total": 12000, "total_excluding_tax": 10000}, 2000),
        ({"total": 12000, "total_excluding_tax": 12000}, 0),
        ({"total": 12000, "total_excluding_tax": None}, 0),
        ({"total": 12000}, 0),
    ],
)
def test_invoice_tax(invoice: dict[str, Any], expected: int) -> None:
    assert invoice_tax(invoice) == expected


def test_refunds_of_reads_refund_objects() -> None:
    refunds = refunds_of(
        [
            {"id": "re_1", "object": "refund", "amount": 700, "status": "succeeded"},
            {"id": "re_2", "object": "refund", "amount": 300, "status": "failed"},
            {"object": "refund", "amount": 5},  # no id: not a refund Stripe served
        ]
    )
    assert refunds == (Refund("re_1", 700, "succeeded"), Refund("re_2", 300, "failed"))
    assert [r.counts for r in refunds] == [True, False]

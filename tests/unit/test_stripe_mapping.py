"""Pure Stripe decisions (``partnero_bridge.stripe.mapping``) over the real-shaped fixtures in
events/stripe and hand-modified copies of them: which payment (ledger key, aliases), how much
(Decimal in the currency's precision, tax excluded by default), for whom (attribution and
opt-out), what a refund or dispute says, and what a payment's facts leave to commission.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.stripe.facts import PaymentFacts
from partnero_bridge.stripe.mapping import (
    CHARGE_SALES,
    CHECKOUT_SALES,
    IDENTITY,
    LINKS,
    REVERSALS,
    Attribution,
    NotASale,
    Reversal,
    Sale,
    StripeRules,
    attribution_from,
    reversal_from_event,
    sale_from_event,
)
from tests.support.stripe import EVENTS, load

pytestmark = pytest.mark.unit

DEFAULT = StripeRules()
TOTAL = StripeRules(amount_basis="total")
CHARGES = StripeRules(sale_events="charges")

Mutation = Callable[[dict[str, Any]], None]

# -- ids of the fixture stories (events/stripe/README.md) ---------------------------------

ADA_CS = "cs_test_a1AdaSubscriptionCheckout0PartneroDemo0000000000000000000"
GRACE_CS = "cs_test_b1GraceOneOffCheckout0PartneroDemo00000000000000000000000"
KENJI_CS = "cs_test_c1KenjiJpyCheckout0PartneroDemo000000000000000000000000000"
LIN_CS = "cs_test_d1LinDelayedAchCheckout0PartneroDemo0000000000000000000"
LINUS_CS = "cs_test_f1LinusFreeCouponCheckout0PartneroDemo00000000000000000000"
NOOR_CS = "cs_test_g1OptOutCheckout0PartneroDemo0000000000000000000000000000"
FATIMA_CS = "cs_test_h1FatimaKwdCheckout0PartneroDemo000000000000000000000000000"
FIRST_INVOICE = "stripe#invoice:in_FIRSTAdaPartneroDemo"
PI_FIRST = "stripe#pi:pi_FIRSTAdaPartneroDemo"
CH_FIRST = "stripe#ch:ch_FIRSTAdaPartneroDemo"
PI_GRACE = "stripe#pi:pi_ONEOFFGracePartnero"
CH_GRACE = "stripe#ch:ch_ONEOFFGracePartnero"
GRACE_REFS = (PI_GRACE, CH_GRACE)
PARTNER = "demo-partner"

ADA = Attribution(
    customer_key="ada@example.com",
    partner_key=PARTNER,
    stripe_customer="cus_SAda0PartneroDemo",
    email="ada@example.com",
    name="Ada Lovelace",
)
GRACE = Attribution(partner_key=PARTNER, email="grace@example.com", name="Grace Hopper")


# -- helpers -------------------------------------------------------------------------------


def put(*path: str, value: Any) -> Mutation:
    """Set ``data.object[path...] = value``."""

    def mutate(obj: dict[str, Any]) -> None:
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def drop(*keys: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for key in keys:
            del obj[key]

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(obj)

    return mutate


def event(name: str, mutate: Mutation | None = None) -> dict[str, Any]:
    """A fixture (a fresh copy each time), its ``data.object`` changed by ``mutate``."""
    loaded = load(name)
    if mutate is not None:
        mutate(loaded["data"]["object"])
    return loaded


def sale_of(name: str, mutate: Mutation | None = None, rules: StripeRules = DEFAULT) -> Sale:
    result = sale_from_event(event(name, mutate), rules)
    assert isinstance(result, Sale), result
    return result


def reversal_of(name: str, mutate: Mutation | None = None) -> Reversal:
    result = reversal_from_event(event(name, mutate))
    assert isinstance(result, Reversal), result
    return result


def expected_sale(
    ledger_key: str,
    transaction_key: str,
    amount: str,
    gross_minor: int,
    currency: str,
    source: Any,
    attribution: Attribution,
    aliases: tuple[str, ...],
) -> Sale:
    return Sale(
        ledger_key=ledger_key,
        transaction_key=transaction_key,
        amount=Decimal(amount),
        gross_minor=gross_minor,
        currency=currency,
        created_at=None,  # the event's ``created``, filled in by the test
        source=source,
        attribution=attribution,
        aliases=aliases,
    )


# -- sales: every sale fixture -------------------------------------------------------------

SALES = [
    pytest.param(
        "checkout.session.completed.subscription",
        DEFAULT,
        expected_sale(
            FIRST_INVOICE,
            "stripe_in_FIRSTAdaPartneroDemo",
            "20.00",  # 2400 - 400 tax
            2400,
            "USD",
            "checkout",
            ADA,
            (f"stripe#cs:{ADA_CS}",),
        ),
        id="checkout-subscription",
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        DEFAULT,
        expected_sale(
            FIRST_INVOICE,
            "stripe_in_FIRSTAdaPartneroDemo",
            "20.00",  # total_excluding_tax
            2400,
            "USD",
            "invoice",
            ADA,  # from parent.subscription_details.metadata
            (PI_FIRST,),  # from payments.data[].payment.payment_intent
        ),
        id="invoice-create-basil",
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20",
        DEFAULT,
        expected_sale(
            FIRST_INVOICE,
            "stripe_in_FIRSTAdaPartneroDemo",
            "20.00",
            2400,
            "USD",
            "invoice",
            ADA,  # from subscription_details.metadata
            (PI_FIRST, CH_FIRST),  # from payment_intent and charge
        ),
        id="invoice-create-2024-06-20",
    ),
    pytest.param(
        "invoice.paid.subscription_cycle",
        DEFAULT,
        expected_sale(
            "stripe#invoice:in_CYCLE1AdaPartneroDemo",
            "stripe_in_CYCLE1AdaPartneroDemo",
            "20.00",
            2400,
            "USD",
            "invoice",
            ADA,
            ("stripe#pi:pi_CYCLE1AdaPartneroDemo",),
        ),
        id="invoice-cycle-1",
    ),
    pytest.param(
        "invoice.paid.subscription_cycle.2",
        DEFAULT,
        expected_sale(
            "stripe#invoice:in_CYCLE2AdaPartneroDemo",
            "stripe_in_CYCLE2AdaPartneroDemo",
            "20.00",
            2400,
            "USD",
            "invoice",
            ADA,
            ("stripe#pi:pi_CYCLE2AdaPartneroDemo",),
        ),
        id="invoice-cycle-2",
    ),
    pytest.param(
        "invoice.paid.livemode",
        DEFAULT,
        expected_sale(
            "stripe#invoice:in_LIVEMayaPartneroDemo",
            "stripe_in_LIVEMayaPartneroDemo",
            "20.00",
            2400,
            "USD",
            "invoice",
            Attribution(
                partner_key=PARTNER,
                stripe_customer="cus_SMaya0PartneroLive",
                email="maya@example.com",
                name="Maya Patel",
            ),
            ("stripe#pi:pi_LIVEMayaPartneroDemo",),
        ),
        id="invoice-livemode",
    ),
    pytest.param(
        "checkout.session.completed.payment",
        DEFAULT,
        expected_sale(
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            "19.99",
            1999,
            "USD",
            "checkout",
            GRACE,
            (f"stripe#cs:{GRACE_CS}",),
        ),
        id="checkout-payment",
    ),
    pytest.param(
        "checkout.session.completed.jpy",
        DEFAULT,
        expected_sale(
            "stripe#pi:pi_JPYKenjiPartneroDemo",
            "stripe_pi_JPYKenjiPartneroDemo",
            "5000",
            5000,
            "JPY",
            "checkout",
            Attribution(partner_key=PARTNER, email="kenji@example.com", name="Kenji Sato"),
            (f"stripe#cs:{KENJI_CS}",),
        ),
        id="checkout-jpy",
    ),
    pytest.param(
        "checkout.session.completed.kwd",
        DEFAULT,
        expected_sale(
            "stripe#pi:pi_KWDFatimaPartnero",
            "stripe_pi_KWDFatimaPartnero",
            "12.340",
            12340,
            "KWD",
            "checkout",
            Attribution(partner_key=PARTNER, email="fatima@example.com", name="Fatima Al-Sabah"),
            (f"stripe#cs:{FATIMA_CS}",),
        ),
        id="checkout-kwd",
    ),
    pytest.param(
        "checkout.session.async_payment_succeeded",
        DEFAULT,
        expected_sale(
            "stripe#pi:pi_DELAYEDLinPartnero",
            "stripe_pi_DELAYEDLinPartnero",
            "49.00",
            4900,
            "USD",
            "checkout",
            Attribution(partner_key=PARTNER, email="lin@example.com", name="Lin Chen"),
            (f"stripe#cs:{LIN_CS}",),
        ),
        id="checkout-async-succeeded",
    ),
    pytest.param(
        "checkout.session.completed.coupon100",
        DEFAULT,
        expected_sale(
            "stripe#invoice:in_FREELinusPartneroDemo",
            "stripe_in_FREELinusPartneroDemo",
            "0.00",
            0,
            "USD",
            "checkout",
            Attribution(
                partner_key=PARTNER,
                stripe_customer="cus_SLinus0PartneroDemo",
                email="linus@example.com",
                name="Linus Torvalds",
            ),
            (f"stripe#cs:{LINUS_CS}",),
        ),
        id="checkout-coupon100",
    ),
    pytest.param(
        "checkout.session.completed.optout",
        DEFAULT,
        expected_sale(
            "stripe#pi:pi_OPTOUTNoorPartnero",
            "stripe_pi_OPTOUTNoorPartnero",
            "15.00",
            1500,
            "USD",
            "checkout",
            Attribution(opted_out=True, email="no.tracking@example.com", name="Noor Haddad"),
            (f"stripe#cs:{NOOR_CS}",),
        ),
        id="checkout-optout",
    ),
    pytest.param(
        "charge.succeeded",
        CHARGES,
        expected_sale(
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            "19.99",
            1999,
            "USD",
            "charge",
            GRACE,  # billing_details
            (CH_GRACE,),
        ),
        id="charge-mode-charge",
    ),
    pytest.param(
        "payment_intent.succeeded",
        CHARGES,
        expected_sale(
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            "19.99",
            1999,
            "USD",
            "charge",
            replace(GRACE, name=None),  # receipt_email only
            (CH_GRACE,),  # latest_charge
        ),
        id="charge-mode-payment-intent",
    ),
]


@pytest.mark.parametrize(("name", "rules", "expected"), SALES)
def test_sale_from_event_for_every_sale_fixture(
    name: str, rules: StripeRules, expected: Sale
) -> None:
    source = load(name)
    sale = sale_of(name, rules=rules)
    assert sale == replace(expected, created_at=source["created"])
    # Same value is not enough: the amount carries the currency's precision.
    assert str(sale.amount) == str(expected.amount)
    assert sale.rank == {"invoice": 3, "checkout": 2, "charge": 1}[expected.source]


NOT_SALES = [
    pytest.param("checkout.session.completed.setup", None, DEFAULT, "setup", id="setup-mode"),
    pytest.param(
        "checkout.session.completed.setup",
        put("payment_status", value="paid"),
        DEFAULT,
        "setup",
        id="setup-mode-even-if-paid",
    ),
    pytest.param("checkout.session.completed.unpaid", None, DEFAULT, "not paid", id="unpaid"),
    pytest.param(
        "checkout.session.completed.subscription",
        put("payment_status", value="unpaid"),
        DEFAULT,
        "not paid",
        id="unpaid-subscription",
    ),
    pytest.param(
        "checkout.session.completed.payment",
        put("currency", value=None),
        DEFAULT,
        "currency",
        id="checkout-no-currency",
    ),
    pytest.param(
        "checkout.session.completed.payment",
        put("currency", value=""),
        DEFAULT,
        "currency",
        id="checkout-empty-currency",
    ),
    pytest.param(
        "invoice.paid.subscription_cycle",
        put("currency", value=None),
        DEFAULT,
        "currency",
        id="invoice-no-currency",
    ),
    pytest.param(
        "invoice.paid.subscription_cycle",
        put("id", value=None),
        DEFAULT,
        "no id",
        id="invoice-no-id",
    ),
    pytest.param(
        "charge.succeeded", put("status", value="pending"), CHARGES, "status", id="charge-pending"
    ),
    pytest.param(
        "charge.succeeded", put("status", value="failed"), CHARGES, "status", id="charge-failed"
    ),
    pytest.param(
        "payment_intent.succeeded",
        put("status", value="processing"),
        CHARGES,
        "status",
        id="intent-processing",
    ),
    pytest.param(
        "charge.succeeded",
        put("currency", value=None),
        CHARGES,
        "currency",
        id="charge-no-currency",
    ),
    pytest.param("product.created", None, DEFAULT, "not a sale", id="product"),
    pytest.param("customer.created", None, DEFAULT, "not a sale", id="customer"),
    pytest.param("customer.updated", None, DEFAULT, "not a sale", id="customer-updated"),
    pytest.param("invoice_payment.paid", None, DEFAULT, "not a sale", id="invoice-payment"),
    pytest.param("charge.refunded.partial", None, CHARGES, "not a sale", id="charge-refunded"),
    pytest.param("refund.created", None, DEFAULT, "not a sale", id="refund"),
]


@pytest.mark.parametrize(("name", "mutate", "rules", "reason"), NOT_SALES)
def test_not_a_sale(name: str, mutate: Mutation | None, rules: StripeRules, reason: str) -> None:
    result = sale_from_event(event(name, mutate), rules)
    assert isinstance(result, NotASale)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("rules", "sales", "not_sales"),
    [
        (DEFAULT, CHECKOUT_SALES, CHARGE_SALES),
        (CHARGES, CHARGE_SALES, CHECKOUT_SALES),
    ],
    ids=["checkout_invoice", "charges"],
)
def test_one_mode_counts_either_checkouts_and_invoices_or_charges_never_both(
    rules: StripeRules, sales: frozenset[str], not_sales: frozenset[str]
) -> None:
    assert rules.sale_types() == sales
    assert rules.handled_types() == sales | REVERSALS | IDENTITY | LINKS
    assert not rules.handled_types() & not_sales


# -- amounts -------------------------------------------------------------------------------

AMOUNTS = [
    # checkout: amount_total - total_details.amount_tax, unless amount_basis="total"
    pytest.param("checkout.session.completed.payment", None, DEFAULT, "19.99", 1999, id="usd"),
    pytest.param("checkout.session.completed.jpy", None, DEFAULT, "5000", 5000, id="jpy"),
    pytest.param("checkout.session.completed.kwd", None, DEFAULT, "12.340", 12340, id="kwd"),
    pytest.param(
        "checkout.session.completed.subscription", None, DEFAULT, "20.00", 2400, id="cs-tax-out"
    ),
    pytest.param(
        "checkout.session.completed.subscription", None, TOTAL, "24.00", 2400, id="cs-total"
    ),
    pytest.param(
        "checkout.session.completed.payment",
        put("total_details", "amount_tax", value=333),
        DEFAULT,
        "16.66",
        1999,
        id="cs-usd-tax",
    ),
    pytest.param(
        "checkout.session.completed.jpy",
        put("total_details", "amount_tax", value=455),
        DEFAULT,
        "4545",
        5000,
        id="cs-jpy-tax",
    ),
    pytest.param(
        "checkout.session.completed.kwd",
        put("total_details", "amount_tax", value=1230),
        DEFAULT,
        "11.110",
        12340,
        id="cs-kwd-tax",
    ),
    pytest.param(
        "checkout.session.completed.kwd",
        put("total_details", "amount_tax", value=1230),
        TOTAL,
        "12.340",
        12340,
        id="cs-kwd-total",
    ),
    pytest.param(
        "checkout.session.completed.payment",
        put("total_details", value=None),
        DEFAULT,
        "19.99",
        1999,
        id="cs-no-total-details",
    ),
    # invoice: total_excluding_tax when amount_paid == total, else amount_paid
    pytest.param("invoice.paid.subscription_create", None, DEFAULT, "20.00", 2400, id="in-basil"),
    pytest.param(
        "invoice.paid.subscription_create", None, TOTAL, "24.00", 2400, id="in-basil-total"
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        put("total_excluding_tax", value=1900),
        DEFAULT,
        "19.00",
        2400,
        id="in-reads-total-excluding-tax",
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        both(put("amount_paid", value=1400), put("amount_due", value=1400)),
        DEFAULT,
        "14.00",
        1400,
        id="in-partly-paid",
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        both(put("amount_paid", value=1400), put("amount_due", value=1400)),
        TOTAL,
        "14.00",
        1400,
        id="in-partly-paid-total",
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20", None, DEFAULT, "20.00", 2400, id="in-old"
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20",
        drop("total_excluding_tax"),
        DEFAULT,
        "20.00",  # total - tax
        2400,
        id="in-old-total-minus-tax",
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20",
        both(drop("total_excluding_tax"), put("tax", value=300)),
        DEFAULT,
        "21.00",
        2400,
        id="in-old-total-minus-other-tax",
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20",
        both(drop("total_excluding_tax"), put("tax", value=None)),
        DEFAULT,
        "24.00",
        2400,
        id="in-old-no-tax",
    ),
    pytest.param(
        "invoice.paid.subscription_create.2024-06-20",
        None,
        TOTAL,
        "24.00",
        2400,
        id="in-old-total",
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        both(
            put("currency", value="jpy"),
            put("amount_paid", value=5000),
            put("total", value=5000),
            put("total_excluding_tax", value=4546),
        ),
        DEFAULT,
        "4546",
        5000,
        id="in-jpy",
    ),
    pytest.param(
        "invoice.paid.subscription_create",
        both(
            put("currency", value="kwd"),
            put("amount_paid", value=12340),
            put("total", value=12340),
            put("total_excluding_tax", value=11110),
        ),
        DEFAULT,
        "11.110",
        12340,
        id="in-kwd",
    ),
    # charge mode: tax is unknown, the amount charged counts, whatever the basis
    pytest.param("charge.succeeded", None, CHARGES, "19.99", 1999, id="charge"),
    pytest.param(
        "charge.succeeded",
        None,
        StripeRules(sale_events="charges", amount_basis="excluding_tax"),
        "19.99",
        1999,
        id="charge-excluding-tax-basis",
    ),
    pytest.param(
        "payment_intent.succeeded",
        put("amount", value=2500),  # amount_received (1999) is what was paid
        CHARGES,
        "19.99",
        1999,
        id="intent-amount-received",
    ),
    pytest.param(
        "charge.succeeded",
        both(put("currency", value="jpy"), put("amount", value=5000)),
        CHARGES,
        "5000",
        5000,
        id="charge-jpy",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "rules", "amount", "gross_minor"), AMOUNTS)
def test_amounts(
    name: str, mutate: Mutation | None, rules: StripeRules, amount: str, gross_minor: int
) -> None:
    sale = sale_of(name, mutate, rules)
    assert isinstance(sale.amount, Decimal)
    assert str(sale.amount) == amount
    assert sale.gross_minor == gross_minor
    assert sale.currency == sale.currency.upper()


# -- one payment, one ledger entry ---------------------------------------------------------


@pytest.mark.parametrize(
    "invoice", ["invoice.paid.subscription_create", "invoice.paid.subscription_create.2024-06-20"]
)
def test_subscription_checkout_and_its_first_invoice_share_one_ledger_entry(invoice: str) -> None:
    checkout = sale_of("checkout.session.completed.subscription")
    paid = sale_of(invoice)
    assert checkout.ledger_key == paid.ledger_key == FIRST_INVOICE
    assert checkout.transaction_key == paid.transaction_key == "stripe_in_FIRSTAdaPartneroDemo"
    assert paid.rank > checkout.rank
    # Both sides name the same money: 20.00 on 2400.
    assert (checkout.amount, checkout.gross_minor) == (paid.amount, paid.gross_minor)


@pytest.mark.parametrize("name", ["charge.succeeded", "payment_intent.succeeded"])
def test_charge_mode_charge_and_intent_share_the_payment_intent_key(name: str) -> None:
    sale = sale_of(name, rules=CHARGES)
    one_off_checkout = sale_of("checkout.session.completed.payment")
    assert sale.ledger_key == one_off_checkout.ledger_key == PI_GRACE
    assert sale.transaction_key == one_off_checkout.transaction_key
    assert sale.aliases == (CH_GRACE,)


@pytest.mark.parametrize(
    ("name", "mutate", "ledger_key", "transaction_key", "aliases"),
    [
        pytest.param(
            "charge.succeeded",
            put("payment_intent", value=None),
            CH_GRACE,
            "stripe_ch_ONEOFFGracePartnero",
            (),
            id="charge-without-intent",
        ),
        pytest.param(
            "charge.succeeded",
            put("payment_intent", value={"id": "pi_ONEOFFGracePartnero"}),
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            (CH_GRACE,),
            id="charge-expanded-intent",
        ),
        pytest.param(
            "payment_intent.succeeded",
            put("latest_charge", value=None),
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            (),
            id="intent-without-charge",
        ),
        pytest.param(
            "payment_intent.succeeded",
            put("latest_charge", value={"id": "ch_ONEOFFGracePartnero", "object": "charge"}),
            PI_GRACE,
            "stripe_pi_ONEOFFGracePartnero",
            (CH_GRACE,),
            id="intent-expanded-charge",
        ),
        pytest.param(
            "checkout.session.completed.payment",
            put("payment_intent", value=None),
            f"stripe#cs:{GRACE_CS}",
            f"stripe_{GRACE_CS}",
            (),
            id="checkout-without-intent",
        ),
        pytest.param(
            "checkout.session.completed.payment",
            put("invoice", value="in_ONEOFFGraceInvoice"),
            "stripe#invoice:in_ONEOFFGraceInvoice",
            "stripe_in_ONEOFFGraceInvoice",
            (PI_GRACE, f"stripe#cs:{GRACE_CS}"),
            id="checkout-with-invoice-creation",
        ),
    ],
)
def test_keys_of_modified_payments(
    name: str,
    mutate: Mutation,
    ledger_key: str,
    transaction_key: str,
    aliases: tuple[str, ...],
) -> None:
    sale = sale_of(name, mutate, CHARGES if "checkout" not in name else DEFAULT)
    assert (sale.ledger_key, sale.transaction_key, sale.aliases) == (
        ledger_key,
        transaction_key,
        aliases,
    )


def _second_payment(obj: dict[str, Any]) -> None:
    entry = json.loads(json.dumps(obj["payments"]["data"][0]))
    entry["id"] = "inpay_SECONDAdaPartneroDemo"
    entry["payment"]["payment_intent"] = "pi_SECONDAdaPartneroDemo"
    obj["payments"]["data"].append(entry)


@pytest.mark.parametrize(
    ("name", "mutate", "aliases"),
    [
        pytest.param("invoice.paid.subscription_create", None, (PI_FIRST,), id="basil"),
        pytest.param(
            "invoice.paid.subscription_create", drop("payments"), (), id="basil-not-expanded"
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            put("payments", "data", value=[]),
            (),
            id="basil-no-payments",
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            _second_payment,
            (PI_FIRST, "stripe#pi:pi_SECONDAdaPartneroDemo"),
            id="basil-two-payments",
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            put(
                "payments",
                "data",
                value=[
                    {
                        "payment": {
                            "type": "payment_intent",
                            "payment_intent": {
                                "id": "pi_FIRSTAdaPartneroDemo",
                                "object": "payment_intent",
                            },
                        }
                    }
                ],
            ),
            (PI_FIRST,),
            id="basil-expanded-intent",
        ),
        pytest.param(
            "invoice.paid.subscription_create.2024-06-20",
            None,
            (PI_FIRST, CH_FIRST),
            id="2024-06-20",
        ),
        pytest.param(
            "invoice.paid.subscription_create.2024-06-20",
            both(
                put("payment_intent", value={"id": "pi_FIRSTAdaPartneroDemo"}),
                put("charge", value={"id": "ch_FIRSTAdaPartneroDemo"}),
            ),
            (PI_FIRST, CH_FIRST),
            id="2024-06-20-expanded",
        ),
        pytest.param(
            "invoice.paid.subscription_create.2024-06-20",
            both(put("payment_intent", value=None), put("charge", value=None)),
            (),
            id="2024-06-20-paid-out-of-band",
        ),
    ],
)
def test_invoice_aliases(name: str, mutate: Mutation | None, aliases: tuple[str, ...]) -> None:
    sale = sale_of(name, mutate)
    assert sale.ledger_key == FIRST_INVOICE
    assert sale.aliases == aliases


# -- attribution ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "client_reference_id", "customer_key", "partner_key"),
    [
        pytest.param(
            [{"partnero_customer_key": "pck", "customer_key": "ck"}],
            "cri",
            "pck",
            None,
            id="partnero_customer_key-first",
        ),
        pytest.param([{"customer_key": "ck"}], "cri", "ck", None, id="customer_key-second"),
        pytest.param([{}], "cri", "cri", None, id="client_reference_id-last"),
        pytest.param(
            [{"partnero_customer_key": "  ", "customer_key": "ck"}],
            None,
            "ck",
            None,
            id="blank-skipped",
        ),
        pytest.param([{"partnero_customer_key": " pck "}], None, "pck", None, id="stripped"),
        pytest.param([{}], "   ", None, None, id="blank-client-reference-id"),
        pytest.param([], None, None, None, id="nothing"),
        pytest.param(
            [{"customer_key": "obj"}, {"partnero_customer_key": "sub"}],
            None,
            "obj",
            None,
            id="object-before-subscription",
        ),
        pytest.param(
            [{}, {"partnero_customer_key": "sub"}], None, "sub", None, id="subscription-fallback"
        ),
        pytest.param(
            [{}, {"customer_key": "sub"}],
            "cri",
            "sub",
            None,
            id="subscription-metadata-before-client-reference-id",
        ),
        pytest.param(
            [{"partnero_partner": "pp", "partner_key": "pk"}],
            None,
            None,
            "pp",
            id="partnero_partner-first",
        ),
        pytest.param([{"partner_key": "pk"}], None, None, "pk", id="partner_key-second"),
        pytest.param(
            [{"partner_key": "obj"}, {"partnero_partner": "sub"}],
            None,
            None,
            "obj",
            id="partner-object-before-subscription",
        ),
        pytest.param(
            [{"partnero_partner": ""}, {"partnero_partner": "sub"}],
            None,
            None,
            "sub",
            id="partner-blank-skipped",
        ),
        pytest.param(
            [None, {"customer_key": "ck", "partner_key": "pk"}],
            None,
            "ck",
            "pk",
            id="non-mapping-ignored",
        ),
    ],
)
def test_attribution_precedence(
    metadata: list[Any],
    client_reference_id: str | None,
    customer_key: str | None,
    partner_key: str | None,
) -> None:
    found = attribution_from(metadata, client_reference_id=client_reference_id)
    assert (found.customer_key, found.partner_key) == (customer_key, partner_key)
    assert found.opted_out is False


@pytest.mark.parametrize(
    ("name", "mutate", "customer_key", "partner_key"),
    [
        pytest.param(
            "checkout.session.completed.payment",
            put("client_reference_id", value="Grace@Example.com"),
            "grace@example.com",
            PARTNER,
            id="checkout-client-reference-id",
        ),
        pytest.param(
            "checkout.session.completed.subscription",
            put("client_reference_id", value="someone-else"),
            "ada@example.com",
            PARTNER,
            id="checkout-metadata-beats-client-reference-id",
        ),
        pytest.param(
            "checkout.session.completed.payment",
            put("metadata", value={"customer_key": "CUST-7", "partner_key": "acme"}),
            "CUST-7",
            "acme",
            id="checkout-partnero-native-names",
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            None,
            "ada@example.com",
            PARTNER,
            id="basil-parent-subscription-details",
        ),
        pytest.param(
            "invoice.paid.subscription_create.2024-06-20",
            None,
            "ada@example.com",
            PARTNER,
            id="old-subscription-details",
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            put("metadata", value={"partnero_customer_key": "Invoice@Example.com"}),
            "invoice@example.com",
            PARTNER,
            id="basil-invoice-metadata-first",
        ),
        pytest.param(
            "invoice.paid.subscription_create.2024-06-20",
            put("metadata", value={"partner_key": "acme"}),
            "ada@example.com",
            "acme",
            id="old-invoice-metadata-first",
        ),
        pytest.param(
            "invoice.paid.subscription_create",
            put("parent", value=None),
            None,
            None,
            id="basil-invoice-without-subscription",
        ),
        pytest.param(
            "invoice.paid.livemode",
            put("parent", "subscription_details", "metadata", "customer_key", value="MAYA-1"),
            "MAYA-1",
            PARTNER,
            id="basil-subscription-customer_key",
        ),
    ],
)
def test_attribution_through_events(
    name: str, mutate: Mutation | None, customer_key: str | None, partner_key: str | None
) -> None:
    found = sale_of(name, mutate).attribution
    assert (found.customer_key, found.partner_key) == (customer_key, partner_key)


OPT_OUT_VALUES = [
    ("false", True),
    ("False", True),
    ("FALSE", True),
    (" false ", True),
    ("true", False),
    ("0", False),
    ("no", False),
    ("", False),
]
OPT_OUT_PLACES = [
    ("checkout", "checkout.session.completed.payment", ("metadata",), DEFAULT),
    ("basil-invoice", "invoice.paid.subscription_create", ("metadata",), DEFAULT),
    (
        "basil-subscription",
        "invoice.paid.subscription_create",
        ("parent", "subscription_details", "metadata"),
        DEFAULT,
    ),
    (
        "old-subscription",
        "invoice.paid.subscription_create.2024-06-20",
        ("subscription_details", "metadata"),
        DEFAULT,
    ),
    ("charge", "charge.succeeded", ("metadata",), CHARGES),
]


@pytest.mark.parametrize(
    ("name", "path", "rules", "value", "opted_out"),
    [
        pytest.param(name, path, rules, value, opted_out, id=f"{place}-{value!r}")
        for (place, name, path, rules), (value, opted_out) in itertools.product(
            OPT_OUT_PLACES, OPT_OUT_VALUES
        )
    ],
)
def test_opt_out(
    name: str, path: tuple[str, ...], rules: StripeRules, value: str, opted_out: bool
) -> None:
    found = sale_of(name, put(*path, "partnero", value=value), rules).attribution
    assert found.opted_out is opted_out
    # Opting out hides nothing else: the keys are still read.
    assert found.partner_key == PARTNER


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada@Example.COM", "ada@example.com"),
        ("  ADA@EXAMPLE.COM\n", "ada@example.com"),
        ("CUST-42", "CUST-42"),
        (" Cust_42 ", "Cust_42"),
        ("Ünïcode-Key", "Ünïcode-Key"),
    ],
)
def test_normalize_customer_key(key: str, normalized: str) -> None:
    assert normalize_customer_key(key) == normalized
    assert attribution_from([{"partnero_customer_key": key}]).customer_key == normalized
    assert attribution_from([], client_reference_id=key).customer_key == normalized


# -- reversals -----------------------------------------------------------------------------

REVERSAL_CASES = [
    pytest.param(
        "charge.refunded.partial",
        None,
        Reversal(GRACE_REFS, "charge_refunded", "ch_ONEOFFGracePartnero", 500),
        id="charge-refunded-partial",
    ),
    pytest.param(
        "charge.refunded.full",
        None,
        Reversal(GRACE_REFS, "charge_refunded", "ch_ONEOFFGracePartnero", 1999),
        id="charge-refunded-full",
    ),
    pytest.param(
        "refund.created",
        None,
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGracePartial", 500, counts=True),
        id="refund-created",
    ),
    pytest.param(
        "refund.updated.failed",
        None,
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGraceFailed0", 1499, counts=False),
        id="refund-failed",
    ),
    pytest.param(
        "refund.updated.failed",
        put("status", value="canceled"),
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGraceFailed0", 1499, counts=False),
        id="refund-canceled",
    ),
    pytest.param(
        "refund.updated.failed",
        put("status", value="pending"),
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGraceFailed0", 1499, counts=True),
        id="refund-pending",
    ),
    pytest.param(
        "refund.updated.failed",
        put("status", value="succeeded"),
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGraceFailed0", 1499, counts=True),
        id="refund-succeeded",
    ),
    pytest.param(
        "charge.dispute.created",
        None,
        Reversal(GRACE_REFS, "dispute", "dp_ONEOFFGraceDispute", dispute_status="open"),
        id="dispute-created",
    ),
    pytest.param(
        "charge.dispute.created",
        put("status", value="warning_needs_response"),
        Reversal(GRACE_REFS, "dispute", "dp_ONEOFFGraceDispute", dispute_status="open"),
        id="dispute-created-inquiry",
    ),
    pytest.param(
        "charge.dispute.closed.won",
        None,
        Reversal(GRACE_REFS, "dispute", "dp_ONEOFFGraceDispute", dispute_status="won"),
        id="dispute-closed-won",
    ),
    pytest.param(
        "charge.dispute.closed.won",
        put("status", value="lost"),
        Reversal(GRACE_REFS, "dispute", "dp_ONEOFFGraceDispute", dispute_status="lost"),
        id="dispute-closed-lost",
    ),
    pytest.param(
        "charge.dispute.closed.won",
        put("status", value="warning_closed"),
        Reversal(GRACE_REFS, "dispute", "dp_ONEOFFGraceDispute", dispute_status="warning_closed"),
        id="dispute-closed-warning-closed",
    ),
    pytest.param(
        "charge.refunded.full",
        put("invoice", value="in_FIRSTAdaPartneroDemo"),  # before basil
        Reversal((*GRACE_REFS, FIRST_INVOICE), "charge_refunded", "ch_ONEOFFGracePartnero", 1999),
        id="charge-refunded-old-with-invoice",
    ),
    pytest.param(
        "charge.refunded.partial",
        put("payment_intent", value=None),
        Reversal((CH_GRACE,), "charge_refunded", "ch_ONEOFFGracePartnero", 500),
        id="charge-refunded-without-intent",
    ),
    pytest.param(
        "refund.created",
        put("payment_intent", value=None),
        Reversal((CH_GRACE,), "refund", "re_ONEOFFGracePartial", 500),
        id="refund-without-intent",
    ),
    pytest.param(
        "refund.created",
        put("charge", value={"id": "ch_ONEOFFGracePartnero", "object": "charge"}),
        Reversal(GRACE_REFS, "refund", "re_ONEOFFGracePartial", 500),
        id="refund-expanded-charge",
    ),
    pytest.param(
        "charge.dispute.created",
        put("payment_intent", value=None),
        Reversal((CH_GRACE,), "dispute", "dp_ONEOFFGraceDispute", dispute_status="open"),
        id="dispute-without-intent",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), REVERSAL_CASES)
def test_reversal_from_event(name: str, mutate: Mutation | None, expected: Reversal) -> None:
    assert reversal_of(name, mutate) == expected


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        pytest.param(
            "refund.created",
            both(put("payment_intent", value=None), put("charge", value=None)),
            id="refund-naming-nothing",
        ),
        pytest.param(
            "charge.dispute.created",
            both(put("payment_intent", value=None), put("charge", value=None)),
            id="dispute-naming-nothing",
        ),
        pytest.param("charge.succeeded", None, id="charge-succeeded"),
        pytest.param("invoice.paid.subscription_create", None, id="invoice-paid"),
        pytest.param("product.created", None, id="product"),
        pytest.param("customer.created", None, id="customer"),
    ],
)
def test_not_a_reversal(name: str, mutate: Mutation | None) -> None:
    assert isinstance(reversal_from_event(event(name, mutate)), NotASale)


def test_every_fixture_is_in_a_table() -> None:
    tables = (SALES, NOT_SALES, REVERSAL_CASES)
    covered = {p.values[0] for table in tables for p in table}
    assert {path.stem for path in EVENTS.glob("*.json")} <= covered


# -- PaymentFacts --------------------------------------------------------------------------

# One payment as each source sees it, with amounts that tell the sources apart.
BY_SOURCE = {
    "invoice": sale_of("invoice.paid.subscription_create"),  # 20.00 on 2400
    "checkout": replace(
        sale_of("checkout.session.completed.subscription"),
        amount=Decimal("21.00"),
        gross_minor=2500,
    ),
    "charge": replace(
        sale_of("charge.succeeded", rules=CHARGES),
        ledger_key=FIRST_INVOICE,
        amount=Decimal("26.00"),
        gross_minor=2600,
    ),
}
RANK = {"invoice": 3, "checkout": 2, "charge": 1}


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(order, id="-".join(order))
        for size in (1, 2, 3)
        for order in itertools.permutations(BY_SOURCE, size)
    ],
)
def test_add_sale_the_strongest_source_wins_in_any_order(order: tuple[str, ...]) -> None:
    facts = PaymentFacts()
    for source in order:
        facts.add_sale(BY_SOURCE[source], opted_out=False)
    winner = BY_SOURCE[max(order, key=RANK.__getitem__)]
    assert (facts.amount, facts.gross_minor, facts.currency, facts.rank) == (
        winner.amount,
        winner.gross_minor,
        winner.currency,
        winner.rank,
    )
    assert facts.commission_amount() == winner.amount


@pytest.mark.parametrize(
    ("flags", "opted_out"),
    [
        ((True, False), True),
        ((False, True), True),
        ((True, True), True),
        ((False, False), False),
        ((True, False, False), True),
    ],
)
def test_add_sale_opt_out_sticks(flags: tuple[bool, ...], opted_out: bool) -> None:
    facts = PaymentFacts()
    for flag, source in zip(flags, itertools.cycle(BY_SOURCE), strict=False):
        facts.add_sale(BY_SOURCE[source], opted_out=flag)
    assert facts.opted_out is opted_out
    assert (facts.commission_amount() is None) is opted_out


def _facts_after(*names: str) -> PaymentFacts:
    facts = PaymentFacts()
    facts.add_sale(sale_of("checkout.session.completed.payment"), opted_out=False)
    for name in names:
        facts.add_reversal(reversal_of(name))
    return facts


def _refund_pending(obj: dict[str, Any]) -> None:
    obj["status"] = "pending"


@pytest.mark.parametrize(
    ("names", "charge_refunded"),
    [
        (["charge.refunded.partial"], {"ch_ONEOFFGracePartnero": 500}),
        (["charge.refunded.partial", "charge.refunded.partial"], {"ch_ONEOFFGracePartnero": 500}),
        (["charge.refunded.partial", "charge.refunded.full"], {"ch_ONEOFFGracePartnero": 1999}),
        # out of order: the partial figure arrives after the full one and changes nothing
        (["charge.refunded.full", "charge.refunded.partial"], {"ch_ONEOFFGracePartnero": 1999}),
    ],
    ids=["partial", "partial-twice", "partial-then-full", "full-then-partial"],
)
def test_add_reversal_keeps_the_largest_cumulative_per_charge(
    names: list[str], charge_refunded: dict[str, int]
) -> None:
    facts = _facts_after(*names)
    assert facts.charge_refunded == charge_refunded
    assert facts.refunded_minor == max(charge_refunded.values())


PENDING_REFUND = "refund-pending"  # the failed refund's creation, while still pending

REFUND_SEQUENCES = [
    pytest.param(["refund.created"], {"re_ONEOFFGracePartial": 500}, id="once"),
    pytest.param(["refund.created", "refund.created"], {"re_ONEOFFGracePartial": 500}, id="twice"),
    pytest.param(["refund.updated.failed"], {}, id="failed-only"),
    pytest.param(
        [PENDING_REFUND],
        {"re_ONEOFFGraceFailed0": 1499},
        id="pending-counts",
    ),
    pytest.param(
        ["refund.created", PENDING_REFUND, "refund.updated.failed"],
        {"re_ONEOFFGracePartial": 500},
        id="later-failed-is-removed",
    ),
    pytest.param(
        ["refund.created", "refund.updated.failed", PENDING_REFUND],
        {"re_ONEOFFGracePartial": 500},
        id="failed-then-stale-pending",
    ),
]


@pytest.mark.parametrize(("names", "refunds"), REFUND_SEQUENCES)
def test_add_reversal_refunds_are_keyed_by_id(names: list[str], refunds: dict[str, int]) -> None:
    facts = _facts_after()
    for name in names:
        if name == PENDING_REFUND:
            facts.add_reversal(reversal_of("refund.updated.failed", _refund_pending))
        else:
            facts.add_reversal(reversal_of(name))
    assert facts.refunds == refunds
    assert facts.refunded_minor == sum(refunds.values())


DISPUTE_SEQUENCES = [
    pytest.param(["charge.dispute.created"], {"dp_ONEOFFGraceDispute": "open"}, None, id="open"),
    pytest.param(
        ["charge.dispute.created", "charge.dispute.closed.won"],
        {"dp_ONEOFFGraceDispute": "won"},
        "19.99",
        id="won",
    ),
    pytest.param(
        ["charge.dispute.created", "charge.dispute.created"],
        {"dp_ONEOFFGraceDispute": "open"},
        None,
        id="created-twice",
    ),
    pytest.param(
        ["charge.dispute.closed.won", "charge.dispute.created"],
        {"dp_ONEOFFGraceDispute": "won"},
        "19.99",
        id="won-then-stale-created",
    ),
]


@pytest.mark.parametrize(("names", "disputes", "commission"), DISPUTE_SEQUENCES)
def test_add_reversal_disputes(
    names: list[str], disputes: dict[str, str], commission: str | None
) -> None:
    facts = _facts_after(*names)
    assert facts.disputes == disputes
    assert facts.refunded_minor == 0
    result = facts.commission_amount()
    assert (str(result) if result is not None else None) == commission


@pytest.mark.parametrize(
    ("charge_refunded", "refunds", "refunded_minor"),
    [
        ({}, {}, 0),
        ({"ch_1": 500}, {}, 500),
        ({}, {"re_1": 500}, 500),
        ({"ch_1": 500}, {"re_1": 500}, 500),  # the same money seen twice
        ({"ch_1": 1999}, {"re_1": 500}, 1999),  # the refund.created of the rest is late
        ({"ch_1": 500}, {"re_1": 500, "re_2": 1499}, 1999),  # charge.refunded is late
        ({"ch_1": 500, "ch_2": 300}, {}, 800),  # several charges of one invoice
    ],
)
def test_refunded_minor_is_the_larger_of_the_two_views(
    charge_refunded: dict[str, int], refunds: dict[str, int], refunded_minor: int
) -> None:
    facts = PaymentFacts(charge_refunded=charge_refunded, refunds=refunds)
    assert facts.refunded_minor == refunded_minor


def _usd(amount: str = "20.00", gross: int = 2400, **changes: Any) -> PaymentFacts:
    facts = PaymentFacts(amount=Decimal(amount), gross_minor=gross, currency="USD", rank=3)
    return facts.model_copy(update=changes)


@pytest.mark.parametrize(
    ("facts", "commission"),
    [
        pytest.param(_usd(), "20.00", id="no-refund"),
        pytest.param(_usd(refunds={"re_1": 500}), "15.83", id="refund-share"),
        pytest.param(_usd(charge_refunded={"ch_1": 500}), "15.83", id="charge-refunded-share"),
        pytest.param(
            _usd(refunds={"re_1": 500}, charge_refunded={"ch_1": 500}),
            "15.83",
            id="both-views-once",
        ),
        # 10.01 * 100 / 200 = 5.005: half up gives 5.01 (half even would give 5.00)
        pytest.param(_usd("10.01", 200, refunds={"re_1": 100}), "5.01", id="half-up"),
        pytest.param(
            PaymentFacts(amount=Decimal("5"), gross_minor=4, currency="JPY", refunds={"re_1": 2}),
            "3",  # 2.5 yen, half up
            id="jpy-half-up",
        ),
        pytest.param(
            PaymentFacts(
                amount=Decimal("12.340"),
                gross_minor=12340,
                currency="KWD",
                refunds={"re_1": 1230},
            ),
            "11.110",
            id="kwd-share",
        ),
        pytest.param(_usd(refunds={"re_1": 2400}), None, id="fully-refunded"),
        pytest.param(_usd(charge_refunded={"ch_1": 2400}), None, id="fully-refunded-charge"),
        pytest.param(_usd(refunds={"re_1": 3000}), None, id="over-refunded"),
        pytest.param(_usd(disputes={"dp_1": "open"}), None, id="disputed"),
        pytest.param(_usd(disputes={"dp_1": "won"}), "20.00", id="dispute-won"),
        pytest.param(
            _usd(disputes={"dp_1": "won", "dp_2": "open"}), None, id="one-of-two-disputed"
        ),
        pytest.param(_usd(opted_out=True), None, id="opted-out"),
        pytest.param(_usd("0.00", 0), None, id="zero"),
        pytest.param(_usd("0.00", 2400), None, id="zero-amount-on-a-charge"),
        pytest.param(PaymentFacts(refunds={"re_1": 500}), None, id="no-sale-yet"),
        pytest.param(_usd(currency=None), None, id="no-currency"),
    ],
)
def test_commission_amount(facts: PaymentFacts, commission: str | None) -> None:
    result = facts.commission_amount()
    if commission is None:
        assert result is None
    else:
        assert isinstance(result, Decimal)
        assert str(result) == commission


def test_commission_through_the_one_off_refund_story() -> None:
    facts = _facts_after()
    assert facts.commission_amount() == Decimal("19.99")
    for name, commission in [
        ("refund.created", Decimal("14.99")),  # 500 of 1999 back
        ("charge.refunded.partial", Decimal("14.99")),  # the same 500
        ("refund.updated.failed", Decimal("14.99")),  # no money returned
        ("charge.refunded.full", None),  # the rest was refunded after all
    ]:
        facts.add_reversal(reversal_of(name))
        assert facts.commission_amount() == commission, name

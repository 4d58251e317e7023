"""Stripe: signed events in, one Partnero transaction per payment out (functions in-process,
moto for AWS, Partnero sandbox over HTTP). Events come from events/stripe/."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.stripe import load, signed

pytestmark = pytest.mark.integration

SECRET = "whsec_test_integration_1"
OLD_SECRET = "whsec_test_integration_0"


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "STRIPE_WEBHOOK_SECRETS": f"{OLD_SECRET},{SECRET}",
        "STRIPE_LIVEMODE": "false",
        "BRIDGE_MAX_RECEIVES": "3",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        # A sale without a partner waits this long for its customer's sign-up.
        "BRIDGE_SIGNUP_WAIT_SECONDS": "1",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def deliver(bridge: InProcessBridge, *names_or_events: str | dict[str, Any]) -> None:
    """Send events (fixture names or event dicts), each answered 200, then process them."""
    for item in names_or_events:
        event = load(item) if isinstance(item, str) else item
        raw, headers = signed(event, SECRET)
        answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
        assert answer.status == 200, answer.body
    bridge.drain("StripeEventFunction")


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal, str]]:
    return sorted(
        (t["key"], Decimal(str(t["amount"])), t["amount_units"])
        for t in sandbox.transactions()
        if not t.get("deleted")
    )


def posts(sandbox: PartneroSandbox) -> list[Any]:
    return [
        r.body for r in sandbox.requests() if (r.method, r.path) == ("POST", "/v1/transactions")
    ]


FIRST = ("stripe_in_FIRSTAdaPartneroDemo", Decimal("20.00"), "USD")


@pytest.mark.parametrize(
    "order",
    [
        ["checkout.session.completed.subscription", "invoice.paid.subscription_create"],
        ["invoice.paid.subscription_create", "checkout.session.completed.subscription"],
    ],
)
def test_subscription_checkout_and_its_invoice_are_one_transaction(
    bridge: InProcessBridge, sandbox: PartneroSandbox, order: list[str]
) -> None:
    deliver(bridge, *order)
    assert live(sandbox) == [FIRST]
    assert len(posts(sandbox)) == 1
    body = posts(sandbox)[0]
    assert body["customer"]["key"] == "ada@example.com"
    assert body["customer"]["partner"] == {"key": "demo-partner"}
    assert body["options"] == {"create_customer": True}


def test_renewals_are_one_transaction_each_and_duplicates_add_nothing(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    story = [
        "customer.created",
        "checkout.session.completed.subscription",
        "invoice.paid.subscription_create",
        "invoice.paid.subscription_cycle",
        "invoice.paid.subscription_cycle.2",
    ]
    deliver(bridge, *story)
    deliver(bridge, *story)  # every event again
    assert live(sandbox) == sorted(
        [
            FIRST,
            ("stripe_in_CYCLE1AdaPartneroDemo", Decimal("20.00"), "USD"),
            ("stripe_in_CYCLE2AdaPartneroDemo", Decimal("20.00"), "USD"),
        ]
    )
    assert len(posts(sandbox)) == 3


def test_renewal_without_metadata_finds_its_customer_through_the_identity_map(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    renewal = load("invoice.paid.subscription_cycle")
    renewal["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    renewal["data"]["object"]["customer_email"] = "someone-else@example.com"
    deliver(bridge, "checkout.session.completed.subscription", renewal)
    keys = {b["key"]: b["customer"] for b in posts(sandbox)}
    assert keys["stripe_in_CYCLE1AdaPartneroDemo"]["key"] == "ada@example.com"
    assert keys["stripe_in_CYCLE1AdaPartneroDemo"]["partner"] == {"key": "demo-partner"}


def test_payload_from_before_basil_works(bridge: InProcessBridge, sandbox: PartneroSandbox) -> None:
    deliver(
        bridge,
        "invoice.paid.subscription_create.2024-06-20",
        "checkout.session.completed.subscription",
    )
    assert live(sandbox) == [FIRST]


def test_partial_then_full_refund(bridge: InProcessBridge, sandbox: PartneroSandbox) -> None:
    deliver(bridge, "checkout.session.completed.payment")
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("19.99"), "USD")]
    created_at = posts(sandbox)[0]["created_at"]

    deliver(bridge, "charge.refunded.partial", "refund.created", "refund.created")
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("14.99"), "USD")]
    assert posts(sandbox)[-1]["created_at"] == created_at

    deliver(bridge, "refund.updated.failed")  # a failed refund takes nothing back
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("14.99"), "USD")]

    deliver(bridge, "charge.refunded.full", "charge.refunded.partial")  # late, out of order
    assert live(sandbox) == []


def test_dispute_reverses_and_a_won_dispute_restores(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    deliver(bridge, "checkout.session.completed.payment", "charge.dispute.created")
    assert live(sandbox) == []
    deliver(bridge, "charge.dispute.closed.won")
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("19.99"), "USD")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "checkout.session.completed.jpy",
            ("stripe_pi_JPYKenjiPartneroDemo", Decimal("5000"), "JPY"),
        ),
        (
            "checkout.session.completed.payment",
            ("stripe_pi_ONEOFFGracePartnero", Decimal("19.99"), "USD"),
        ),
        (
            "checkout.session.completed.kwd",
            ("stripe_pi_KWDFatimaPartnero", Decimal("12.340"), "KWD"),
        ),
    ],
)
def test_currency_precision(
    bridge: InProcessBridge, sandbox: PartneroSandbox, name: str, expected: tuple[str, Decimal, str]
) -> None:
    deliver(bridge, name)
    assert live(sandbox) == [expected]


@pytest.mark.parametrize(
    "name",
    [
        "checkout.session.completed.setup",
        "checkout.session.completed.coupon100",
        "checkout.session.completed.optout",
        "checkout.session.completed.unpaid",
        "product.created",
    ],
)
def test_payments_that_send_nothing(
    bridge: InProcessBridge, sandbox: PartneroSandbox, name: str
) -> None:
    deliver(bridge, name)
    assert sandbox.requests() == []
    assert bridge.messages("StripeEventDeadLetterQueue") == []


def test_delayed_payment_counts_when_it_succeeds(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    deliver(bridge, "checkout.session.completed.unpaid")
    assert live(sandbox) == []
    deliver(bridge, "checkout.session.async_payment_succeeded")
    assert live(sandbox) == [("stripe_pi_DELAYEDLinPartnero", Decimal("49.00"), "USD")]


def test_refund_of_an_unknown_payment_is_an_outcome_not_a_dead_letter(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    deliver(bridge, "charge.refunded.full")
    assert sandbox.requests() == []
    assert bridge.messages("StripeEventDeadLetterQueue") == []


def test_other_mode_is_acknowledged_and_ignored(bridge: InProcessBridge) -> None:
    raw, headers = signed(load("invoice.paid.livemode"), SECRET)
    answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
    assert (answer.status, answer.body["status"]) == (200, "ignored")
    assert bridge.queue_depth("StripeEventQueue") == 0


def test_a_connected_accounts_event_is_acknowledged_and_never_queued(
    bridge: InProcessBridge, sandbox: PartneroSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Connect endpoint on the same URL: the sale belongs to the connected account.
    event = load("checkout.session.completed.payment")
    event["account"] = "acct_1ConnectedShop"
    raw, headers = signed(event, SECRET)
    answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
    assert (answer.status, answer.body) == (
        200,
        {"status": "ignored", "reason": "connected_account"},
    )
    assert bridge.queue_depth("StripeEventQueue") == 0
    assert sandbox.requests() == []
    counted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"IgnoredByReason"' in line
    ]
    assert [c["reason"] for c in counted] == ["connected_account"]


def test_rotated_secret_still_verifies(bridge: InProcessBridge) -> None:
    raw, headers = signed(load("checkout.session.completed.payment"), OLD_SECRET)
    assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200


def _bad(kind: str) -> tuple[bytes, dict[str, str]]:
    event = load("checkout.session.completed.payment")
    raw, headers = signed(event, SECRET)
    if kind == "wrong secret":
        return signed(event, "whsec_not_ours")
    if kind == "stale timestamp":
        return signed(event, SECRET, timestamp=int(time.time()) - 310)
    if kind == "future timestamp":
        return signed(event, SECRET, timestamp=int(time.time()) + 310)
    if kind == "v0 only":
        headers["stripe-signature"] = headers["stripe-signature"].replace("v1=", "v0=")
        return raw, headers
    if kind == "re-serialized body":
        return json.dumps(json.loads(raw), indent=2).encode(), headers
    if kind == "missing header":
        return raw, {"content-type": "application/json"}
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "wrong secret",
        "stale timestamp",
        "future timestamp",
        "v0 only",
        "re-serialized body",
        "missing header",
    ],
)
def test_bad_signatures_are_400_and_nothing_is_queued(
    bridge: InProcessBridge, sandbox: PartneroSandbox, kind: str
) -> None:
    raw, headers = _bad(kind)
    answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
    assert (answer.status, answer.body["error"]) == (400, "invalid_signature")
    assert bridge.queue_depth("StripeEventQueue") == 0


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(bridge: InProcessBridge) -> None:
    import base64

    from partnero_bridge_cli.local.gateway import build_event
    from partnero_bridge_cli.local.template import HttpRoute

    raw, headers = signed(load("checkout.session.completed.payment"), SECRET)
    event = build_event(
        HttpRoute("POST", "/webhooks/stripe", "StripeEventFunction"),
        "POST",
        "/webhooks/stripe",
        list(headers.items()),
        raw,
        "203.0.113.9",
        {},
    )
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    assert bridge.invoke("StripeEventFunction", copy.deepcopy(event)).payload["statusCode"] == 200


@pytest.mark.parametrize("invoice_first", [True, False])
def test_invoice_amount_wins_over_checkout_in_either_order(
    bridge: InProcessBridge, sandbox: PartneroSandbox, invoice_first: bool
) -> None:
    invoice = load("invoice.paid.subscription_create")
    invoice["data"]["object"]["total_excluding_tax"] = 1900  # e.g. a proration on the invoice
    checkout = "checkout.session.completed.subscription"
    deliver(bridge, *([invoice, checkout] if invoice_first else [checkout, invoice]))
    assert live(sandbox) == [("stripe_in_FIRSTAdaPartneroDemo", Decimal("19.00"), "USD")]


def test_refund_of_a_basil_invoice_payment_is_matched_through_invoice_payment_paid(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    invoice = load("invoice.paid.subscription_create")
    del invoice["data"]["object"]["payments"]  # as real basil webhooks may send it
    refund = load("charge.refunded.partial")
    charge = refund["data"]["object"]
    charge.update(
        id="ch_FIRSTAdaPartneroDemo",
        payment_intent="pi_FIRSTAdaPartneroDemo",
        amount=2400,
        amount_refunded=1200,
        metadata={},
    )
    deliver(bridge, invoice, "invoice_payment.paid", refund)
    assert live(sandbox) == [("stripe_in_FIRSTAdaPartneroDemo", Decimal("10.00"), "USD")]


def test_customer_metadata_attributes_later_invoices(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    renewal = load("invoice.paid.subscription_cycle")
    renewal["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    deliver(bridge, "customer.updated", renewal)
    [body] = posts(sandbox)
    assert body["customer"]["key"] == "ada@example.com"
    assert body["customer"]["partner"] == {"key": "demo-partner"}


def test_a_payment_before_its_signup_counts_once_the_customer_signs_up(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    # No partner on the payment and Partnero does not know grace@example.com yet: the
    # payment waits for the sign-up, then is not referred and remembered on the customer.
    paid = load("checkout.session.completed.payment")
    paid["data"]["object"]["metadata"] = {}
    deliver(bridge, paid)
    assert posts(sandbox) == []
    assert bridge.messages("StripeEventDeadLetterQueue") == []

    # The sign-up comes later: it sends the payment back to be decided again.
    answer = bridge.call("POST", "/signup", {"email": "Grace@Example.com", "partner_key": "acme"})
    assert answer.status == 202
    bridge.drain("SignupFunction")
    bridge.drain("StripeEventFunction")
    [body] = posts(sandbox)
    assert body["customer"] == {"key": "grace@example.com"}  # the existing customer
    assert [t["partner"]["key"] for t in sandbox.transactions()] == ["acme"]

"""Stripe: signed events in, one Partnero transaction per payment out (functions in-process,
moto for AWS, Partnero sandbox over HTTP, the fake Stripe API). Events come from
events/stripe/, and what Stripe holds when each is sent from events/stripe/state/.

Every Stripe event is only a trigger: the bridge finds the payment it concerns and reads
that payment's current state from the Stripe API, so each story gives the fake Stripe the
objects Stripe would hold (``deliver`` loads a sample's sidecar with it; ``holds`` puts
what a story changes). What is checked is what a user sees: what reached Partnero, what
was refused, what landed in the dead-letter queue.

Expectations changed by the state-reading rewrite (each also noted on its test):
- a refund (or dispute) delivered before anything else about its payment is no longer an
  "unknown payment" left aside: it is decided with its sale from Stripe's state
  (``test_a_full_refund_delivered_before_its_sale_sends_nothing_and_no_dead_letter``);
- the refund of an invoice's payment is matched to the invoice through the Stripe API
  (``GET /v1/invoice_payments?payment[payment_intent]=``), not through what
  ``invoice_payment.paid`` taught the ledger; the expected 10.00 is unchanged;
- a payment whose objects in Stripe name no partner is what "no partner on the payment"
  means now: removing the partner from the checkout event alone is not enough, since the
  payment intent in Stripe still names it (``test_a_payment_before_its_signup...``).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.stripe import event_of, held, load, signed
from tests.support.stripe import state as sidecar

pytestmark = pytest.mark.integration

SECRET = "whsec_test_integration_1"
OLD_SECRET = "whsec_test_integration_0"


STRIPE_KEY = "rk_test_integration_reader"
# The fake Stripe API each bridge of this module reads (deliver() loads events into it).
_fakes: dict[int, FakeStripeApi] = {}


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


def _env(sandbox: PartneroSandbox, stripe_api: FakeStripeApi, **more: str) -> dict[str, str]:
    return {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        # The Stripe API the bridge reads each payment's state from.
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRETS": f"{OLD_SECRET},{SECRET}",
        "STRIPE_LIVEMODE": "false",
        "BRIDGE_MAX_RECEIVES": "3",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        # A sale without a partner waits this long for its customer's sign-up.
        "BRIDGE_SIGNUP_WAIT_SECONDS": "1",
        # Sign-ups come from the shop's page, unsigned, on this origin.
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
        **more,
    }


@pytest.fixture
def bridge(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> Iterator[InProcessBridge]:
    stripe_api.reset()
    with in_process_bridge(monkeypatch, _env(sandbox, stripe_api)) as bridge:
        _fakes[id(bridge)] = stripe_api
        yield bridge
        del _fakes[id(bridge)]


@pytest.fixture
def counting_out_of_band(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> Iterator[InProcessBridge]:
    """A bridge told to count money paid outside Stripe (STRIPE_COUNT_OUT_OF_BAND=true)."""
    stripe_api.reset()
    env = _env(sandbox, stripe_api, STRIPE_COUNT_OUT_OF_BAND="true")
    with in_process_bridge(monkeypatch, env) as bridge:
        _fakes[id(bridge)] = stripe_api
        yield bridge
        del _fakes[id(bridge)]


def holds(bridge: InProcessBridge, *objects: dict[str, Any]) -> None:
    """Stripe now holds these objects (until an event carries a newer snapshot of one)."""
    _fakes[id(bridge)].put_objects(objects)


def deliver(
    bridge: InProcessBridge, *names_or_events: str | dict[str, Any], state: bool = True
) -> None:
    """Send events (sample names or event dicts), each answered 200, then process them.

    A sample name also loads what Stripe holds when it is sent (its sidecar), unless
    ``state`` is False (a late redelivery: Stripe has moved on since). An event dict
    brings only the objects it carries; the test says what else Stripe holds (``holds``).
    """
    for item in names_or_events:
        event = load(item) if isinstance(item, str) else item
        extra = sidecar(item) if isinstance(item, str) and state else []
        # Stripe holds what the event carries from now on (the event is only a trigger).
        _fakes[id(bridge)].load_event(event, extra)
        raw, headers = signed(event, SECRET)
        answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
        assert answer.status == 200, answer.body
    bridge.drain("stripe")


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


def dead_letters(bridge: InProcessBridge) -> list[dict[str, Any]]:
    return bridge.messages("StripeEventDeadLetterQueue")


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
    """Ada's referral is on her checkout and first invoice only. Later her Stripe customer
    changes email and carries no metadata, and the renewal's subscription metadata is
    empty: the identity map learned at the first payment keeps her Partnero customer."""
    deliver(bridge, "checkout.session.completed.subscription")
    customer = held("checkout.session.completed.subscription", "cus_SAda0PartneroDemo")
    customer.update(email="someone-else@example.com", metadata={})
    changed = event_of("customer.updated", "evt_1RAda0EmailChanged00", "customer.updated", customer)
    renewal = load("invoice.paid.subscription_cycle")
    renewal["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    renewal["data"]["object"]["customer_email"] = "someone-else@example.com"
    subscription = held("invoice.paid.subscription_cycle", "sub_1RAda0PartneroDemo0Sub")
    subscription["metadata"] = {}
    deliver(bridge, changed)
    holds(
        bridge,
        subscription,
        held("invoice.paid.subscription_cycle", "pi_CYCLE1AdaPartneroDemo"),
        held("invoice.paid.subscription_cycle", "ch_CYCLE1AdaPartneroDemo"),
    )
    deliver(bridge, renewal)
    keys = {b["key"]: b["customer"] for b in posts(sandbox)}
    assert keys["stripe_in_CYCLE1AdaPartneroDemo"]["key"] == "ada@example.com"
    assert keys["stripe_in_CYCLE1AdaPartneroDemo"]["partner"] == {"key": "demo-partner"}
    assert dead_letters(bridge) == []


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

    # The rest refunded (another refund, succeeded), then a late copy of the partial one.
    deliver(bridge, "charge.refunded.full")
    deliver(bridge, "charge.refunded.partial", state=False)
    assert live(sandbox) == []
    assert dead_letters(bridge) == []


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


def test_a_full_refund_delivered_before_its_sale_sends_nothing_and_no_dead_letter(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """Changed: this was "a refund of an unknown payment is an outcome". The refund is now
    decided together with its sale from Stripe's state (paid, then refunded in full):
    nothing is due, nothing is sent, nothing is retried or dead-lettered, and the sale's
    own events arriving afterwards change nothing."""
    deliver(bridge, "charge.refunded.full")
    assert sandbox.requests() == []
    deliver(bridge, "checkout.session.completed.payment", "charge.succeeded", state=False)
    assert posts(sandbox) == []
    assert live(sandbox) == []
    assert dead_letters(bridge) == []


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
        HttpRoute("POST", "/webhooks/stripe", "StripeEventIngestFunction"),
        "POST",
        "/webhooks/stripe",
        list(headers.items()),
        raw,
        "203.0.113.9",
        {},
    )
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    assert (
        bridge.invoke("StripeEventIngestFunction", copy.deepcopy(event)).payload["statusCode"]
        == 200
    )


@pytest.mark.parametrize("invoice_first", [True, False])
def test_invoice_amount_wins_over_checkout_in_either_order(
    bridge: InProcessBridge, sandbox: PartneroSandbox, invoice_first: bool
) -> None:
    invoice = load("invoice.paid.subscription_create")
    invoice["data"]["object"]["total_excluding_tax"] = 1900  # e.g. a proration on the invoice
    checkout = "checkout.session.completed.subscription"
    holds(bridge, *sidecar("invoice.paid.subscription_create"))  # what it was paid by
    order: list[str | dict[str, Any]] = (
        [invoice, checkout] if invoice_first else [checkout, invoice]
    )
    deliver(bridge, *order)
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
        amount_captured=2400,
        amount_refunded=1200,
        metadata={},
    )
    # Stripe holds the refund behind that charge.refunded.
    holds(bridge, _refund("re_FIRSTAdaHalf0", "FIRSTAdaPartneroDemo", 1200, "succeeded"))
    deliver(bridge, invoice, "invoice_payment.paid", refund)
    # 20.00 excluding tax x (2400 - 1200) / 2400: the refund found its invoice through the
    # Stripe API (the invoice payments of pi_FIRST...), whatever the ledger knew.
    assert live(sandbox) == [("stripe_in_FIRSTAdaPartneroDemo", Decimal("10.00"), "USD")]
    assert dead_letters(bridge) == []


def test_customer_metadata_attributes_later_invoices(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    renewal = load("invoice.paid.subscription_cycle")
    renewal["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    name = "invoice.paid.subscription_cycle"
    holds(
        bridge,
        held(name, "pi_CYCLE1AdaPartneroDemo"),
        held(name, "ch_CYCLE1AdaPartneroDemo"),
    )
    deliver(bridge, "customer.updated", renewal)
    [body] = posts(sandbox)
    assert body["customer"]["key"] == "ada@example.com"
    assert body["customer"]["partner"] == {"key": "demo-partner"}


def test_a_payment_before_its_signup_counts_once_the_customer_signs_up(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    # No partner on the payment and Partnero does not know grace@example.com yet: the
    # payment waits for the sign-up, then is not referred and remembered on the customer.
    # Changed: "no partner" must hold for the payment in Stripe (its payment intent and
    # charge too), not only for the checkout event, since the state is read from Stripe.
    paid = load("checkout.session.completed.payment")
    paid["data"]["object"]["metadata"] = {}
    intent, charge = _grace()
    intent["metadata"], charge["metadata"] = {}, {}
    holds(bridge, intent, charge)
    deliver(bridge, paid)
    assert posts(sandbox) == []
    assert bridge.messages("StripeEventDeadLetterQueue") == []

    # The sign-up comes later: it sends the payment back to be decided again.
    answer = bridge.call(
        "POST",
        "/signup",
        {"email": "Grace@Example.com", "partner_key": "acme"},
        {"origin": "https://shop.example"},
    )
    assert answer.status == 202
    bridge.drain("signup")
    bridge.drain("stripe")
    [body] = posts(sandbox)
    assert body["customer"] == {"key": "grace@example.com"}  # the existing customer
    assert [t["partner"]["key"] for t in sandbox.transactions()] == ["acme"]


# -- the rules of the state-reading rewrite -------------------------------------------------

GRACE = ("stripe_pi_ONEOFFGracePartnero", Decimal("19.99"), "USD")
GRACE_LEDGER = "stripe#pi:pi_ONEOFFGracePartnero"


def _grace() -> tuple[dict[str, Any], dict[str, Any]]:
    """Grace's payment intent and charge as Stripe holds them once she has paid 19.99."""
    name = "checkout.session.completed.payment"
    return held(name, "pi_ONEOFFGracePartnero"), held(name, "ch_ONEOFFGracePartnero")


def _refund(
    refund_id: str, payment: str, amount: int, status: str, created: int = 0
) -> dict[str, Any]:
    """A Refund of ``ch_<payment>`` / ``pi_<payment>``, shaped like the sample refund."""
    refund = held("refund.created", "re_ONEOFFGracePartial")
    refund.update(
        id=refund_id,
        amount=amount,
        status=status,
        charge=f"ch_{payment}",
        payment_intent=f"pi_{payment}",
        created=created or refund["created"],
        balance_transaction=f"txn_{refund_id}",
    )
    return refund


@pytest.mark.parametrize("failed_first", [False, True], ids=["in-order", "failure-first"])
def test_a_refund_that_fails_after_charge_refunded_ends_at_the_full_amount(
    bridge: InProcessBridge, sandbox: PartneroSandbox, failed_first: bool
) -> None:
    """Refunds count by their current status whatever order their events came in: a
    refund of everything that later fails gives the money back, so the sale counts in
    full again (and a stale charge.refunded arriving after the failure changes nothing)."""
    deliver(bridge, "checkout.session.completed.payment")
    assert live(sandbox) == [GRACE]
    pending = _refund("re_ONEOFFGraceAll000", "ONEOFFGracePartnero", 1999, "pending", 1749200000)
    created = event_of("refund.created", "evt_3RGraceAllRefundNew", "refund.created", pending)
    refunded = event_of(
        "charge.refunded.full",
        "evt_3RGraceAllRefunded0",
        "charge.refunded",
        load("charge.refunded.full")["data"]["object"],
        created=1749200001,
    )
    failed = event_of(
        "refund.updated.failed",
        "evt_3RGraceAllRefundFail",
        "refund.updated",
        {**pending, "status": "failed", "failure_reason": "expired_or_canceled_card"},
        created=1749500000,
    )
    if failed_first:
        deliver(bridge, failed, created, refunded)  # the failure outran the refund's events
    else:
        deliver(bridge, created, refunded)
        assert live(sandbox) == []
        deliver(bridge, failed)
    assert live(sandbox) == [GRACE]
    assert dead_letters(bridge) == []


@pytest.mark.parametrize("ending", ["partial capture", "expired"])
def test_an_authorisation_awaits_capture_and_the_capture_decides(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ending: str
) -> None:
    """An authorised-only payment is "awaiting capture": an outcome, not a sale and not
    retried. The capture decides with the amount captured (a partial capture counts what
    was captured; Stripe records the released rest as a refund of the authorisation); an
    authorisation that expires is never a sale."""
    intent, charge = _grace()
    intent.update(
        status="requires_capture",
        capture_method="manual",
        amount_capturable=1999,
        amount_received=0,
    )
    charge.update(captured=False, amount_captured=0)
    authorised = event_of("charge.succeeded", "evt_3RGraceAuthorised00", "charge.succeeded", charge)
    holds(bridge, intent)
    deliver(bridge, authorised)
    assert sandbox.requests() == []
    assert dead_letters(bridge) == []
    assert bridge.queue_depth("StripeEventQueue") == 0  # not waiting for a retry
    item = bridge.ledger_item(GRACE_LEDGER)
    assert item is not None
    assert item["reason"] == "awaiting_capture"

    release = _refund("re_ONEOFFGraceRelease", "ONEOFFGracePartnero", 0, "succeeded", 1749000000)
    if ending == "partial capture":
        intent.update(status="succeeded", amount_capturable=0, amount_received=1500)
        charge.update(captured=True, amount_captured=1500, amount_refunded=499)
        release["amount"] = 499
        event = event_of(
            "charge.succeeded",
            "evt_3RGraceCaptured000",
            "charge.captured",
            charge,
            created=1749000001,
        )
    else:
        intent.update(status="canceled", amount_capturable=0, cancellation_reason="automatic")
        charge.update(refunded=True, amount_refunded=1999)
        release["amount"] = 1999
        event = event_of(
            "charge.succeeded",
            "evt_3RGraceExpired0000",
            "charge.expired",
            charge,
            created=1749000001,
        )
    holds(bridge, intent, release)
    deliver(bridge, event)
    if ending == "partial capture":
        assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("15.00"), "USD")]
        assert len(posts(sandbox)) == 1
    else:
        assert posts(sandbox) == []
    assert dead_letters(bridge) == []


def test_a_refund_delivered_before_its_sale_is_decided_with_it(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """The refund's event outruns the sale's: Stripe already holds the paid payment and its
    refund, so the first event decides both (never dropped, no retry waiting for the sale)
    and the sale's own events find it already right."""
    deliver(bridge, "refund.created")
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("14.99"), "USD")]
    assert bridge.queue_depth("StripeEventQueue") == 0
    deliver(bridge, "checkout.session.completed.payment", "charge.succeeded", state=False)
    assert live(sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("14.99"), "USD")]
    assert len(posts(sandbox)) == 1
    assert dead_letters(bridge) == []


def _out_of_band_invoice() -> dict[str, Any]:
    """Ada's renewal marked paid outside Stripe (a bank transfer): no PaymentIntent."""
    event = copy.deepcopy(load("invoice.paid.subscription_cycle"))
    event["id"] = "evt_1RAda0InvoicePaidOOB000"
    invoice = event["data"]["object"]
    invoice["id"] = "in_OOBAdaPartneroDemo"
    invoice["payments"]["data"] = [
        {
            **invoice["payments"]["data"][0],
            "id": "inpay_OOBAdaPartneroDemo",
            "invoice": "in_OOBAdaPartneroDemo",
            "payment": {"type": "out_of_band_payment"},
        }
    ]
    return event


def test_an_invoice_paid_out_of_band_earns_nothing(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """Money that did not move through Stripe earns nothing (by default)."""
    holds(bridge, *sidecar("invoice.paid.subscription_cycle"))
    deliver(bridge, _out_of_band_invoice())
    assert sandbox.requests() == []
    assert dead_letters(bridge) == []


def test_an_invoice_paid_out_of_band_counts_when_configured(
    counting_out_of_band: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """STRIPE_COUNT_OUT_OF_BAND=true: the invoice's amount counts (tax excluded)."""
    holds(counting_out_of_band, *sidecar("invoice.paid.subscription_cycle"))
    deliver(counting_out_of_band, _out_of_band_invoice())
    assert live(sandbox) == [("stripe_in_OOBAdaPartneroDemo", Decimal("20.00"), "USD")]
    assert dead_letters(counting_out_of_band) == []


def test_every_document_of_one_payment_is_one_transaction(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """A checkout, its invoice, the invoice's payment, its PaymentIntent and its Charge are
    one payment: the invoice is the payment, counted once (likewise a one-off checkout
    with its PaymentIntent and Charge)."""
    name = "checkout.session.completed.subscription"
    intent = held(name, "pi_FIRSTAdaPartneroDemo")
    charge = held(name, "ch_FIRSTAdaPartneroDemo")
    deliver(
        bridge,
        name,
        "invoice.paid.subscription_create",
        "invoice_payment.paid",
        event_of(
            "payment_intent.succeeded",
            "evt_3RAda0PiSucceeded000",
            "payment_intent.succeeded",
            intent,
        ),
        event_of("charge.succeeded", "evt_3RAda0ChSucceeded000", "charge.succeeded", charge),
        "checkout.session.completed.payment",
        "payment_intent.succeeded",
        "charge.succeeded",
    )
    assert live(sandbox) == sorted([FIRST, GRACE])
    assert sorted(b["key"] for b in posts(sandbox)) == sorted([FIRST[0], GRACE[0]])
    assert dead_letters(bridge) == []


def _dispute_event(event_id: str, kind: str, status: str, created: int) -> dict[str, Any]:
    dispute = load("charge.dispute.created")["data"]["object"]
    dispute["status"] = status
    closing = kind == "charge.dispute.closed"
    sample = "charge.dispute.closed.won" if closing else "charge.dispute.created"
    return event_of(sample, event_id, kind, dispute, created=created)


@pytest.mark.parametrize(
    ("opened", "closed", "after_open", "after_close"),
    [
        # An inquiry (warning_*) withdraws no funds: nothing is reversed.
        ("warning_needs_response", "warning_closed", [GRACE], [GRACE]),
        ("warning_under_review", "warning_closed", [GRACE], [GRACE]),
        # A dispute reverses the sale; lost, it stays reversed.
        ("needs_response", "lost", [], []),
        # Won, the sale is restored.
        ("under_review", "won", [], [GRACE]),
    ],
)
def test_disputes_inquiries_do_not_reverse_lost_reverses_won_restores(
    bridge: InProcessBridge,
    sandbox: PartneroSandbox,
    opened: str,
    closed: str,
    after_open: list[Any],
    after_close: list[Any],
) -> None:
    deliver(bridge, "checkout.session.completed.payment")
    deliver(
        bridge,
        _dispute_event("evt_1RGraceDisputeOpen0", "charge.dispute.created", opened, 1749722401),
    )
    assert live(sandbox) == after_open
    deliver(
        bridge,
        _dispute_event("evt_1RGraceDisputeClose", "charge.dispute.closed", closed, 1751450400),
    )
    assert live(sandbox) == after_close
    if opened.startswith("warning_"):
        assert [r.method for r in sandbox.requests() if r.method == "DELETE"] == []
    assert dead_letters(bridge) == []


TESS = "cus_STess0PartneroDemo"


def _trial_end_invoice() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first paid invoice when Tess's trial ends, and what else Stripe holds then:
    nothing on it, its subscription or its customer names a partner."""
    event = copy.deepcopy(load("invoice.paid.subscription_cycle"))
    event["id"] = "evt_1RTess0TrialEndPaid000"
    invoice = event["data"]["object"]
    invoice.update(
        id="in_TRIALENDTessPartnero",
        customer=TESS,
        customer_email="tess@example.com",
        customer_name="Tess Ting",
        billing_reason="subscription_cycle",
    )
    invoice["parent"]["subscription_details"] = {"metadata": {}, "subscription": "sub_1RTessTrial"}
    payment = invoice["payments"]["data"][0]
    payment.update(
        id="inpay_TRIALENDTessPartnero",
        invoice="in_TRIALENDTessPartnero",
        payment={"type": "payment_intent", "payment_intent": "pi_TRIALENDTessPartnero"},
    )
    name = "invoice.paid.subscription_cycle"
    customer = held(name, "cus_SAda0PartneroDemo")
    customer.update(id=TESS, email="tess@example.com", name="Tess Ting", metadata={})
    subscription = held(name, "sub_1RAda0PartneroDemo0Sub")
    subscription.update(id="sub_1RTessTrial", customer=TESS, metadata={})
    intent = held(name, "pi_CYCLE1AdaPartneroDemo")
    intent.update(id="pi_TRIALENDTessPartnero", customer=TESS, latest_charge="ch_TRIALENDTess")
    charge = held(name, "ch_CYCLE1AdaPartneroDemo")
    charge.update(id="ch_TRIALENDTess", customer=TESS, payment_intent="pi_TRIALENDTessPartnero")
    return event, [customer, subscription, intent, charge]


@pytest.mark.parametrize("trial_invoice", [False, True], ids=["no-invoice", "zero-invoice"])
def test_a_trials_referral_on_its_checkout_only_counts_when_the_trial_is_paid(
    bridge: InProcessBridge, sandbox: PartneroSandbox, trial_invoice: bool
) -> None:
    """A free trial's checkout takes no money and may be the only place the referral is:
    it is learned (the identity map), and the first paid invoice after the trial is
    credited to that partner. Stripe may name the trial's $0 invoice on the checkout."""
    checkout = copy.deepcopy(load("checkout.session.completed.subscription"))
    checkout["id"] = "evt_1RTess0TrialCheckout00"
    session = checkout["data"]["object"]
    session.update(
        id="cs_test_t1TessTrialCheckout0PartneroDemo00000000000000000000000000",
        customer=TESS,
        customer_details={**session["customer_details"], "email": "tess@example.com"},
        metadata={"partnero_partner": "demo-partner"},
        amount_subtotal=0,
        amount_total=0,
        payment_status="no_payment_required",
        subscription="sub_1RTessTrial",
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        invoice="in_TRIALTessPartnero" if trial_invoice else None,
    )
    paid, objects = _trial_end_invoice()
    holds(bridge, *objects)
    if trial_invoice:
        zero = copy.deepcopy(paid["data"]["object"])
        zero.update(
            id="in_TRIALTessPartnero",
            billing_reason="subscription_create",
            amount_due=0,
            amount_paid=0,
            subtotal=0,
            subtotal_excluding_tax=0,
            total=0,
            total_excluding_tax=0,
            total_taxes=[],
            payments={
                "object": "list",
                "data": [],
                "has_more": False,
                "url": "/v1/invoice_payments",
            },
        )
        holds(bridge, zero)
    deliver(bridge, checkout)
    assert sandbox.requests() == []
    deliver(bridge, paid)
    [body] = posts(sandbox)
    assert body["key"] == "stripe_in_TRIALENDTessPartnero"
    assert body["customer"]["key"] == "tess@example.com"
    assert body["customer"]["partner"] == {"key": "demo-partner"}
    assert dead_letters(bridge) == []


def test_a_payment_intent_counted_alone_then_found_to_pay_an_invoice_is_taken_back(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    # The renewal's PaymentIntent succeeds (and is announced) before Stripe lists it among
    # the invoice's payments: alone it looks like a payment of its own. Once the invoice
    # names it, one payment must stay one transaction: the invoice's.
    deliver(bridge, "customer.created", "checkout.session.completed.subscription")
    intent = held("invoice.paid.subscription_cycle", "pi_CYCLE1AdaPartneroDemo")
    holds(bridge, intent, held("invoice.paid.subscription_cycle", "ch_CYCLE1AdaPartneroDemo"))
    early = event_of(
        "payment_intent.succeeded", "evt_1RAda0IntentFirst", "payment_intent.succeeded", intent
    )
    deliver(bridge, early)
    assert [t["key"] for t in sandbox.transactions()] == ["stripe_pi_CYCLE1AdaPartneroDemo"]

    deliver(bridge, "invoice.paid.subscription_cycle")
    deliver(bridge, {**early, "id": "evt_1RAda0IntentAgain"})  # and once more, later
    assert live(sandbox) == [("stripe_in_CYCLE1AdaPartneroDemo", Decimal("20.00"), "USD")]


@pytest.mark.parametrize("data", ["x", {"object": [1]}, {}])
def test_a_signed_event_without_an_object_is_ignored_not_a_crash(
    bridge: InProcessBridge, sandbox: PartneroSandbox, data: Any
) -> None:
    event = {**load("customer.updated"), "id": "evt_1MalformedCustomer", "data": data}
    raw, headers = signed(event, SECRET)  # Stripe would hold nothing for it: not loaded
    assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200
    bridge.drain("stripe")
    assert bridge.messages("StripeEventDeadLetterQueue") == []
    assert sandbox.requests() == []


def test_a_late_customer_created_does_not_clear_a_later_opt_out(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """The customer opts out (customer.updated), then the older customer.created arrives:
    each is only a trigger, so the customer Stripe holds now (opted out) is what the
    identity map keeps."""
    customer = held("checkout.session.completed.subscription", "cus_SAda0PartneroDemo")
    opted_out = {**customer, "metadata": {**customer.get("metadata", {}), "partnero": "false"}}
    created = event_of("customer.created", "evt_1LateCreated000", "customer.created", customer)
    updated = event_of("customer.updated", "evt_1OptedOut000000", "customer.updated", opted_out)
    deliver(bridge, updated)
    # Delivered late: Stripe's customer did not go back, so the event is not loaded.
    raw, headers = signed(created, SECRET)
    assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200
    bridge.drain("stripe")
    item = bridge.ledger_item("stripe-customer#cus_SAda0PartneroDemo")
    assert item is not None
    assert item["opted_out"] is True
    assert dead_letters(bridge) == []
    assert posts(sandbox) == []

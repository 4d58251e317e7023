"""Signed Stripe events (real shapes from events/stripe/) through the running local stack.

Each event is loaded, with its sample's state (events/stripe/state/), into the session's fake
Stripe API just before it is posted, as Stripe holds a payment's objects before it sends an
event about them: processing reads the payment from there."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import STRIPE_SECRET
from tests.support.local_stack import RunningStack, wait_for
from tests.support.stripe import load_with_state, signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A sample's event and the objects Stripe holds for it besides (its sidecar).
Sample = tuple[dict[str, Any], list[dict[str, Any]]]


def renamed(name: str, suffix: str) -> Sample:
    """A sample and its state with their ids made unique to one test (the stack, and so its
    ledger, lives for the session)."""
    text = json.dumps(load_with_state(name))
    for marker in (
        "AdaPartneroDemo",
        "GracePartnero",
        "KenjiPartneroDemo",
        "GraceDispute",
        "GracePartial",
        "GraceFailed0",
        "GraceRemain0",
        "Ada0PartneroDemo",
        "LinPartnero",
        "LinusPartneroDemo",
        "Linus0PartneroDemo",
        "FatimaPartnero",
        "NoorPartnero",
        "Checkout0PartneroDemo",
    ):
        text = text.replace(marker, f"{marker}{suffix}")
    event, objects = json.loads(text)
    event["id"] = f"{event['id']}{suffix}"
    return event, objects


def provide(stripe_api: FakeStripeApi, *samples: Sample) -> None:
    """What Stripe holds when it sends these events: their objects and their states."""
    for event, objects in samples:
        stripe_api.load_event(event, objects)


def send(stack: RunningStack, stripe_api: FakeStripeApi, *samples: Sample) -> None:
    for event, objects in samples:
        stripe_api.load_event(event, objects)
        raw, headers = signed(event, STRIPE_SECRET)
        answer = stack.http.post("/webhooks/stripe", content=raw, headers=headers)
        assert answer.status_code == 200, answer.text


def live(partnero: PartneroSandbox) -> list[tuple[str, Decimal]]:
    return sorted(
        (t["key"], Decimal(str(t["amount"])))
        for t in partnero.transactions()
        if not t.get("deleted")
    )


def settle(stack: RunningStack) -> None:
    stack.wait_until_drained("stripe-event")


@pytest.mark.parametrize("invoice_first", [False, True])
def test_subscription_story(
    stack: RunningStack, partnero: PartneroSandbox, stripe_api: FakeStripeApi, invoice_first: bool
) -> None:
    suffix = "I" if invoice_first else "C"
    checkout = renamed("checkout.session.completed.subscription", suffix)
    first = renamed("invoice.paid.subscription_create", suffix)
    story = [first, checkout] if invoice_first else [checkout, first]
    send(stack, stripe_api, *story)
    settle(stack)
    assert live(partnero) == [(f"stripe_in_FIRSTAdaPartneroDemo{suffix}", Decimal("20.00"))]

    renewals = [
        renamed("invoice.paid.subscription_cycle", suffix),
        renamed("invoice.paid.subscription_cycle.2", suffix),
    ]
    send(stack, stripe_api, *renewals)
    send(stack, stripe_api, *story, *renewals)  # every event delivered again
    settle(stack)
    assert len(live(partnero)) == 3
    posts = [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/transactions")]
    assert len(posts) == 3


def test_one_off_payment_partial_then_full_refund(
    stack: RunningStack, partnero: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    send(stack, stripe_api, renamed("checkout.session.completed.payment", "R"))
    wait_for(
        lambda: live(partnero) == [("stripe_pi_ONEOFFGracePartneroR", Decimal("19.99"))],
        20,
        "the sale",
    )
    send(stack, stripe_api, renamed("charge.refunded.partial", "R"), renamed("refund.created", "R"))
    wait_for(
        lambda: live(partnero) == [("stripe_pi_ONEOFFGracePartneroR", Decimal("14.99"))],
        20,
        "the partial refund",
    )
    send(stack, stripe_api, renamed("charge.refunded.full", "R"))
    wait_for(lambda: live(partnero) == [], 20, "the full refund")
    settle(stack)  # the next test starts with an empty queue


def test_zero_decimal_currency(
    stack: RunningStack, partnero: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    send(stack, stripe_api, renamed("checkout.session.completed.jpy", "J"))
    [transaction] = wait_for(partnero.transactions, 20, "the JPY sale")
    assert (Decimal(str(transaction["amount"])), transaction["amount_units"]) == (
        Decimal("5000"),
        "JPY",
    )
    settle(stack)  # the next test starts with an empty queue


@pytest.mark.parametrize(
    "kind", ["bad signature", "stale timestamp", "v0 only", "re-serialized body"]
)
def test_unverifiable_events_are_400_and_not_queued(
    stack: RunningStack, partnero: PartneroSandbox, kind: str
) -> None:
    event, _state = renamed("checkout.session.completed.payment", "X")
    raw, headers = signed(event, STRIPE_SECRET)
    if kind == "bad signature":
        raw, headers = signed(event, "whsec_someone_else")
    elif kind == "stale timestamp":
        raw, headers = signed(event, STRIPE_SECRET, timestamp=int(time.time()) - 600)
    elif kind == "v0 only":
        headers["stripe-signature"] = headers["stripe-signature"].replace("v1=", "v0=")
    else:
        raw = json.dumps(json.loads(raw), indent=1).encode()
    answer = stack.http.post("/webhooks/stripe", content=raw, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_signature"
    assert stack.queue_depth("stripe-event") == 0
    assert partnero.requests() == []

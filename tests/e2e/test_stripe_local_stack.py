"""Signed Stripe events (real shapes from events/stripe/) through the running local stack."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.e2e.conftest import STRIPE_SECRET
from tests.support.local_stack import RunningStack, wait_for
from tests.support.stripe import load, signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def renamed(name: str, suffix: str) -> dict[str, Any]:
    """A fixture with its ids made unique to one test (the stack lives for the session)."""
    text = json.dumps(load(name))
    for marker in (
        "AdaPartneroDemo",
        "GracePartnero",
        "KenjiPartneroDemo",
        "GraceDispute",
        "GracePartial",
        "GraceFailed0",
        "Ada0PartneroDemo",
    ):
        text = text.replace(marker, f"{marker}{suffix}")
    event: dict[str, Any] = json.loads(text)
    event["id"] = f"{event['id']}{suffix}"
    return event


def send(stack: RunningStack, *events: dict[str, Any]) -> None:
    for event in events:
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
    stack: RunningStack, partnero: PartneroSandbox, invoice_first: bool
) -> None:
    suffix = "I" if invoice_first else "C"
    checkout = renamed("checkout.session.completed.subscription", suffix)
    first = renamed("invoice.paid.subscription_create", suffix)
    story = [first, checkout] if invoice_first else [checkout, first]
    send(stack, *story)
    settle(stack)
    assert live(partnero) == [(f"stripe_in_FIRSTAdaPartneroDemo{suffix}", Decimal("20.00"))]

    renewals = [
        renamed("invoice.paid.subscription_cycle", suffix),
        renamed("invoice.paid.subscription_cycle.2", suffix),
    ]
    send(stack, *renewals)
    send(stack, *story, *renewals)  # every event delivered again
    settle(stack)
    assert len(live(partnero)) == 3
    posts = [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/transactions")]
    assert len(posts) == 3


def test_one_off_payment_partial_then_full_refund(
    stack: RunningStack, partnero: PartneroSandbox
) -> None:
    send(stack, renamed("checkout.session.completed.payment", "R"))
    wait_for(
        lambda: live(partnero) == [("stripe_pi_ONEOFFGracePartneroR", Decimal("19.99"))],
        20,
        "the sale",
    )
    send(stack, renamed("charge.refunded.partial", "R"), renamed("refund.created", "R"))
    wait_for(
        lambda: live(partnero) == [("stripe_pi_ONEOFFGracePartneroR", Decimal("14.99"))],
        20,
        "the partial refund",
    )
    send(stack, renamed("charge.refunded.full", "R"))
    wait_for(lambda: live(partnero) == [], 20, "the full refund")


def test_zero_decimal_currency(stack: RunningStack, partnero: PartneroSandbox) -> None:
    send(stack, renamed("checkout.session.completed.jpy", "J"))
    [transaction] = wait_for(partnero.transactions, 20, "the JPY sale")
    assert (Decimal(str(transaction["amount"])), transaction["amount_units"]) == (
        Decimal("5000"),
        "JPY",
    )


@pytest.mark.parametrize(
    "kind", ["bad signature", "stale timestamp", "v0 only", "re-serialized body"]
)
def test_unverifiable_events_are_400_and_not_queued(
    stack: RunningStack, partnero: PartneroSandbox, kind: str
) -> None:
    event = renamed("checkout.session.completed.payment", "X")
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

"""``partnero-bridge explain`` and ``forget`` against the running local stack, as a user runs
them: the command in its own process, reaching the stack through the variables `make run`
prints (AWS_ENDPOINT_URL) and the same settings the stack was started with; the Partnero
API key comes from the stack's Secrets Manager, never from the command line."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import SIGNUP_SECRET, STRIPE_SECRET
from tests.e2e.test_stripe_local_stack import renamed
from tests.support.local_stack import RunningStack, wait_for
from tests.support.signup import signed_signup
from tests.support.stripe import signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYMENT = "pi_ONEOFFGracePartneroE"


def test_explain_a_payment_and_forget_a_person_through_the_local_stack(
    stack: RunningStack, partnero: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    event, objects = renamed("checkout.session.completed.payment", "E")
    stripe_api.load_event(event, objects)
    raw, headers = signed(event, STRIPE_SECRET)
    assert stack.http.post("/webhooks/stripe", content=raw, headers=headers).status_code == 200
    wait_for(
        lambda: [t for t in partnero.transactions() if t["key"] == f"stripe_{PAYMENT}"],
        20,
        "the sale",
    )
    stack.wait_until_drained("stripe-event")
    # The settings the stack was started with (only these fakes' URLs differ from defaults).
    settings = {"PARTNERO_API_URL": partnero.url, "STRIPE_API_URL": stripe_api.url}

    told = stack.cli("explain", PAYMENT, **settings)
    assert told.returncode == 0, told.stdout + told.stderr
    assert "checkout.session.completed" in told.stdout
    assert f"stripe_{PAYMENT}: 19.99 USD (reward not paid)" in told.stdout
    assert "agree: the ledger, Partnero and the source's state all say 19.99 USD" in told.stdout

    as_json = stack.cli("explain", PAYMENT, "--json", **settings)
    story = json.loads(as_json.stdout)
    assert Decimal(story["ledger"]["holds"]) == Decimal("19.99")
    assert [d["action"] for d in story["deliveries"]] == ["created"]

    raw, headers = signed_signup(
        {"email": "forget-me@example.com", "partner_key": "demo-partner"}, SIGNUP_SECRET
    )
    assert stack.http.post("/signup", content=raw, headers=headers).status_code == 202
    stack.wait_until_drained("signup")
    dry = stack.cli("forget", "Forget-Me@example.com", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "customer#fo***@example.com: deleted" in dry.stdout
    done = stack.cli("forget", "forget-me@example.com", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes"] == [
        {
            "item": "customer#fo***@example.com",
            "action": "deleted",
            "detail": "sign-up status created",
        }
    ]
    again = stack.cli("forget", "forget-me@example.com")
    assert "the ledger holds nothing about this customer key" in again.stdout

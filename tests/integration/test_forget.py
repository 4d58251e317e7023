"""``partnero-bridge forget``: a person's records in the ledger removed or masked, and only
those (functions in-process, moto, the Partnero sandbox and the fake Stripe API).

Ada signs up, pays a subscription's first invoice (her Stripe customer is learned into the
identity map) and an earlier release left a not-referred sale whose text names her. After
``forget``: her sign-up item is gone, her identity-map item no longer names her, every text
that named her is masked, and what Partnero holds (and the ledger's record of it) is as it
was. A dry run writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest

from partnero_bridge.ledger.store import Ledger
from partnero_bridge_cli.forget import forget
from partnero_bridge_cli.forget import run as run_forget
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.stripe_bridge import deliver_stripe, stripe_bridge_env
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.signup import signed_signup

pytestmark = pytest.mark.integration

SECRET = "whsec_test_forget"
STRIPE_KEY = "rk_test_forget_reader"
SIGNUP_SECRET = "test-forget-signup-secret"
ADA = "ada@example.com"
INVOICE = "stripe#invoice:in_FIRSTAdaPartneroDemo"
IDENTITY = "stripe-customer#cus_SAda0PartneroDemo"
LEGACY = "ecwid#1003#777"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


@dataclass
class World:
    bridge: InProcessBridge
    ledger: Ledger
    sandbox: PartneroSandbox

    def item(self, pk: str) -> dict[str, Any] | None:
        return self.bridge.ledger_item(pk)

    def items(self) -> list[dict[str, Any]]:
        return sorted(
            (
                {name: next(iter(value.values())) for name, value in item.items()}
                for item in self.bridge.dynamodb.scan(
                    TableName=self.bridge.resources.refs["LedgerTable"]
                )["Items"]
            ),
            key=lambda item: str(item["pk"]),
        )


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> Iterator[World]:
    stripe_api.reset()
    env = stripe_bridge_env(sandbox, stripe_api, secret=SECRET, api_key=STRIPE_KEY)
    env["SIGNUP_HMAC_SECRET"] = SIGNUP_SECRET
    with in_process_bridge(monkeypatch, env) as bridge:
        raw, headers = signed_signup(
            {"email": "Ada@Example.com", "partner_key": "demo-partner"}, SIGNUP_SECRET
        )
        assert bridge.call("POST", "/signup", raw, headers).status == 202
        bridge.drain("signup")
        for name in ("checkout.session.completed.subscription", "invoice.paid.subscription_create"):
            deliver_stripe(bridge, stripe_api, name, SECRET)
        bridge.drain("stripe")
        # A sale an earlier release recorded, whose text names her (Partnero's message).
        bridge.dynamodb.put_item(
            TableName=bridge.resources.refs["LedgerTable"],
            Item={
                "pk": {"S": LEGACY},
                "entity": {"S": "transaction"},
                "commission_state": {"S": "not_referred"},
                "customer_key": {"S": ADA},
                "transaction_key": {"S": "ecwid_1003_OLD1"},
                "reason": {"S": "unknown_customer"},
                "detail": {"S": "not referred (unknown customer): customer ada@example.com"},
            },
        )
        ledger = Ledger(bridge.dynamodb, bridge.resources.refs["LedgerTable"], 150)
        yield World(bridge, ledger, sandbox)


def partnero_state(sandbox: PartneroSandbox) -> Any:
    return json.dumps([sandbox.customers(), sandbox.transactions()], sort_keys=True, default=str)


def test_a_dry_run_says_what_would_change_and_writes_nothing(world: World) -> None:
    before = world.items()

    report = forget("Ada@Example.com", world.ledger, dry_run=True)

    assert world.items() == before
    assert {(c.pk, c.action) for c in report.changes} == {
        (f"customer#{ADA}", "deleted"),
        (IDENTITY, "customer key removed"),
        (INVOICE, "texts masked"),
        (LEGACY, "texts masked"),
    }
    assert report.scanned == len(before)
    assert "dry run: nothing written" in report.text()
    assert ADA not in report.text()


def test_forget_removes_or_masks_the_person_and_keeps_what_partnero_holds(
    world: World,
) -> None:
    partnero_before = partnero_state(world.sandbox)
    invoice_before = world.item(INVOICE)
    assert invoice_before is not None
    assert world.item(f"customer#{ADA}") is not None
    identity = world.item(IDENTITY)
    assert identity is not None
    assert identity["customer_key"] == ADA

    out = StringIO()
    args = type("Args", (), {"person": "Ada@Example.com", "dry_run": False, "json": False})()
    assert run_forget(args, None, out=out, ledger=world.ledger) == 0

    assert world.item(f"customer#{ADA}") is None
    identity = world.item(IDENTITY)
    assert identity is not None
    assert "customer_key" not in identity
    assert identity["partner_key"] == "demo-partner"
    # The record of what Partnero holds is unchanged, amount, keys and customer alike.
    invoice = world.item(INVOICE)
    assert invoice is not None
    for name in ("amount", "currency", "commission_state", "transaction_keys", "customer_key"):
        assert invoice[name] == invoice_before[name]
    assert Decimal(str(invoice["amount"])) == Decimal("20.00")
    legacy = world.item(LEGACY)
    assert legacy is not None
    assert legacy["detail"] == "not referred (unknown customer): customer a***@example.com"
    assert partnero_state(world.sandbox) == partnero_before
    text = out.getvalue()
    assert "customer#a***@example.com: deleted" in text
    assert ADA not in text

    # Forgetting again finds only the commission items, which keep the customer key.
    again = forget(ADA, world.ledger, dry_run=False)
    assert {(c.pk, c.action) for c in again.changes} == {
        (INVOICE, "texts masked"),
        (LEGACY, "texts masked"),
    }


def test_forget_leaves_an_item_being_processed_and_says_so(world: World) -> None:
    # A delivery holds the invoice's item right now.
    world.ledger.claim(INVOICE, "someone-else", now=10**10 - 100)

    report = forget(ADA, world.ledger, dry_run=False, clock=lambda: 10**10 - 50)

    assert [c.pk for c in report.busy] == [INVOICE]
    assert "run forget again" in report.text()

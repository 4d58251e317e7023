"""`partnero-bridge send` prints what became of each delivery, and the local stack's delivery
feed lists every one with its outcome: a sale, the same event again, an unpaid checkout, a
sign-up, and a sale that Partnero first answered with a 503.

Everything is sent as files of one's own (`send <file>`): the session's stack keeps its ledger
and idempotency records across tests, so each delivery here has ids of its own."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.deliveries import FEED_PATH
from partnero_bridge_cli.local.fakeapp import Fault
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import SIGNUP_SECRET, STRIPE_SECRET
from tests.e2e.test_stripe_local_stack import renamed
from tests.support.leaks import log_leaks
from tests.support.local_stack import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(60)]


class Sender:
    """`partnero-bridge send <file>` against the session's stack and fakes."""

    def __init__(self, stack: RunningStack, stripe_api: FakeStripeApi, folder: Path) -> None:
        self.stack = stack
        self.folder = folder
        self.settings = {
            "BRIDGE_STRIPE_API_ADMIN": stripe_api.url,
            "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
            "SIGNUP_HMAC_SECRET": SIGNUP_SECRET,
        }

    def stripe_file(self, sample: str) -> tuple[Path, str]:
        """A Stripe sample with ids of its own, as a file with its state sidecar."""
        event, objects = renamed(sample, uuid.uuid4().hex[:8])
        path = self.folder / f"{event['id']}.json"
        (self.folder / "state").mkdir(exist_ok=True)
        path.write_text(json.dumps(event))
        (self.folder / "state" / path.name).write_text(json.dumps(objects))
        return path, f"stripe-{event['id']}"

    def send(self, path: Path, *options: str) -> str:
        sent = self.stack.cli("send", str(path), *options, **self.settings)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        return sent.stdout


def outcome_line(output: str, delivery_id: str) -> str:
    [line] = [x for x in output.splitlines() if x.startswith(f"{delivery_id}: ")]
    return line.removeprefix(f"{delivery_id}: ")


def feed(stack: RunningStack) -> list[dict[str, Any]]:
    answer = httpx.get(f"{stack.url}{FEED_PATH}", timeout=5)
    assert answer.status_code == 200
    deliveries: list[dict[str, Any]] = answer.json()["deliveries"]
    return deliveries


def test_send_prints_each_outcome_and_the_feed_lists_every_delivery(
    stack: RunningStack, partnero: PartneroSandbox, stripe_api: FakeStripeApi, tmp_path: Path
) -> None:
    sender = Sender(stack, stripe_api, tmp_path)

    sale, sale_id = sender.stripe_file("payment_intent.succeeded")
    payment = json.loads(sale.read_text())["data"]["object"]["id"]
    assert outcome_line(sender.send(sale), sale_id) == (
        f"created 19.99 USD: paid - Stripe payment intent {payment}"
    )
    [transaction] = partnero.transactions()
    assert Decimal(str(transaction["amount"])) == Decimal("19.99")

    # The same event again (Stripe retries a webhook it thinks was lost).
    assert outcome_line(sender.send(sale), sale_id) == (
        f"duplicate: already processed (created 19.99 USD: paid) - Stripe payment intent {payment}"
    )

    unpaid, unpaid_id = sender.stripe_file("checkout.session.completed.unpaid")
    assert outcome_line(sender.send(unpaid), unpaid_id).startswith(
        "ignored (reason: not_paid): payment is not_paid; Partnero holds nothing - "
    )

    signup = tmp_path / "signup.json"  # named like the stock sample: this file is sent
    email = f"feed-{uuid.uuid4().hex[:6]}@example.com"
    signup.write_text(json.dumps({"email": email, "partner_key": "demo-partner"}))
    output = sender.send(signup)
    [signup_id] = [x.split(":")[0] for x in output.splitlines() if x.startswith("signup-")]
    assert outcome_line(output, signup_id) == "created - customer fe***@example.com"
    assert email in [c["key"] for c in partnero.customers()]

    # Partnero is down for one call: the sale is retried (1 s back-off here) and then made.
    partnero.inject_fault(Fault(status=503, method="POST", path_prefix="/transactions"))
    retried, retried_id = sender.stripe_file("payment_intent.succeeded")
    story = [
        x for x in sender.send(retried, "--timeout", "20").splitlines() if x.startswith(retried_id)
    ]
    assert story == [
        f"{retried_id}: retrying (Partnero answered 503: Service Unavailable), will retry in 1 s"
        f" - Stripe payment intent {json.loads(retried.read_text())['data']['object']['id']}",
        f"{retried_id}: created 19.99 USD: paid"
        f" - Stripe payment intent {json.loads(retried.read_text())['data']['object']['id']}",
    ]

    listed = feed(stack)
    mine = [
        (d["delivery_id"], d["event_type"], d["outcome"], d["attempts"])
        for d in listed
        if d["delivery_id"] in {sale_id, unpaid_id, signup_id, retried_id}
    ]
    assert mine == [  # newest first
        (retried_id, "payment_intent.succeeded", "created", 2),
        (signup_id, "sign-up", "created", 1),
        (unpaid_id, "checkout.session.completed", "ignored", 1),
        (sale_id, "payment_intent.succeeded", "duplicate", 1),
        (sale_id, "payment_intent.succeeded", "created", 1),
    ]
    unpaid_entry = next(d for d in listed if d["delivery_id"] == unpaid_id)
    assert unpaid_entry["reason"] == "not_paid"
    assert unpaid_entry["source"] == "stripe"
    signup_entry = next(d for d in listed if d["delivery_id"] == signup_id)
    assert signup_entry["source"] == "signup"
    assert signup_entry["concerns"] == "customer fe***@example.com"
    assert log_leaks(json.dumps(listed), {STRIPE_SECRET, SIGNUP_SECRET}) == []
    assert email not in json.dumps(listed)


def test_send_says_when_nothing_was_queued_and_can_skip_waiting(
    stack: RunningStack, stripe_api: FakeStripeApi, tmp_path: Path
) -> None:
    sender = Sender(stack, stripe_api, tmp_path)
    nobody = tmp_path / "walk-in.json"
    nobody.write_text(json.dumps({"email": "walk-in@example.com"}))
    assert "nothing was queued: no delivery to wait for" in sender.send(nobody)

    sale, sale_id = sender.stripe_file("payment_intent.succeeded")
    output = sender.send(sale, "--no-wait")
    assert "-> 200" in output
    assert sale_id not in output

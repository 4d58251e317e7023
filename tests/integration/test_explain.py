"""``partnero-bridge explain``: one payment's story, pinned by a golden file.

A payment goes through the whole bridge in this process (ingest and process functions,
moto, the Partnero sandbox over HTTP, the fake Stripe API): a sale, then a partial refund
whose first attempt Partnero fails with a 503 and whose retry succeeds. ``explain`` then
reads the ledger, Stripe and Partnero and tells it; the text is compared with
``tests/golden/explain_sale_refund_retry.txt`` with the processing times normalised.
Run with ``UPDATE_GOLDEN=1`` to rewrite the file after an intended change (and review it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge.runtime import Runtime
from partnero_bridge_cli.explain import explain, render
from partnero_bridge_cli.explain import run as run_explain
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.fakeapp import Fault
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.stripe_bridge import deliver_stripe, runtime_of, stripe_bridge_env
from tests.support.ecwid import ORDER, webhook
from tests.support.ecwid import signed as ecwid_signed
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.stripe import held, load
from tests.support.stripe import state as sidecar

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SECRET = "whsec_test_explain"
STRIPE_KEY = "rk_test_explain_reader"
PAYMENT = "pi_ONEOFFGracePartnero"
DAY = 86400


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


@dataclass
class Shop:
    bridge: InProcessBridge
    stripe_api: FakeStripeApi
    sandbox: PartneroSandbox

    def deliver(self, name: str) -> None:
        deliver_stripe(self.bridge, self.stripe_api, name, SECRET)
        self.bridge.drain("stripe")

    def runtime(self) -> Runtime:
        return runtime_of(self.bridge, "StripeEventProcessFunction")


@pytest.fixture
def shop(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> Iterator[Shop]:
    stripe_api.reset()
    env = stripe_bridge_env(sandbox, stripe_api, secret=SECRET, api_key=STRIPE_KEY)
    env["BRIDGE_RETRY_BASE_SECONDS"] = "0"
    with in_process_bridge(monkeypatch, env) as bridge:
        yield Shop(bridge, stripe_api, sandbox)


_PROCESSING_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?! UTC)")


def normalised(text: str) -> str:
    """The story without what changes from run to run: when the deliveries were processed."""
    return _PROCESSING_TIME.sub("<processed at>     ", text)


def sale_refund_and_retry(shop: Shop) -> None:
    shop.deliver("checkout.session.completed.payment")
    # The refund's first attempt takes the 19.99 back, then Partnero fails the new 14.99
    # with a 503: retried at once (no back-off here), and the retry creates it.
    shop.sandbox.inject_fault(Fault(status=503, method="POST", path_prefix="/transactions"))
    shop.deliver("charge.refunded.partial")


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal]]:
    return [
        (t["key"], Decimal(str(t["amount"])))
        for t in sandbox.transactions()
        if not t.get("deleted")
    ]


def test_explain_tells_a_sale_a_refund_and_a_retry(shop: Shop) -> None:
    sale_refund_and_retry(shop)
    assert live(shop.sandbox) == [("stripe_pi_ONEOFFGracePartnero", Decimal("14.99"))]

    story = explain(PAYMENT, shop.runtime())

    assert [(e.event_type, e.outcome, e.action, e.amount) for e in story.history] == [
        ("checkout.session.completed", "sent", "created", Decimal("19.99")),
        ("charge.refunded", "retrying", "", None),
        ("charge.refunded", "sent", "created", Decimal("14.99")),
    ]
    assert story.agree
    text = normalised(render(story))
    assert "@example.com" not in text.replace("gr***@example.com", "")
    golden = GOLDEN / "explain_sale_refund_retry.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), (
        "explain's output changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff"
    )


@dataclass
class Args:
    id: str
    json: bool = False
    stack_name: str | None = None


def test_explain_json_and_the_exit_status(shop: Shop) -> None:
    sale_refund_and_retry(shop)
    out = StringIO()
    assert run_explain(Args(PAYMENT, json=True), None, out=out, runtime=shop.runtime()) == 0
    story: dict[str, Any] = json.loads(out.getvalue())
    assert story["ledger_key"] == "stripe#pi:pi_ONEOFFGracePartnero"
    assert story["decision"]["amount"] == "14.99"
    assert story["ledger"]["holds"] == "14.99"
    assert story["partnero"] == [
        {
            "transaction_key": "stripe_pi_ONEOFFGracePartnero",
            "amount": "14.99",
            "reward_paid": False,
            "error": None,
        }
    ]
    assert [d["outcome"] for d in story["deliveries"]] == ["sent", "retrying", "sent"]
    assert story["agree"] is True

    # Partnero loses the transaction behind the bridge's back: they differ (exit 2).
    httpx.delete(
        f"{shop.sandbox.url}/transactions/stripe_pi_ONEOFFGracePartnero",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
    ).raise_for_status()
    out = StringIO()
    assert run_explain(Args(PAYMENT), None, out=out, runtime=shop.runtime()) == 2
    assert "the ledger says Partnero holds 14.99 USD, Partnero holds nothing" in out.getvalue()
    assert "the next delivery about this payment would create it" in out.getvalue()


def test_explain_a_payment_never_delivered_says_never_seen_or_older_than_retention(
    shop: Shop,
) -> None:
    # Stripe holds the payment; no event about it ever reached the bridge.
    shop.stripe_api.load_event(
        load("checkout.session.completed.payment"), sidecar("checkout.session.completed.payment")
    )
    runtime = shop.runtime()
    created = int(held("checkout.session.completed.payment", PAYMENT)["created"])

    recent = explain(PAYMENT, runtime, clock=lambda: created + 10 * DAY)
    assert recent.record is None
    assert recent.notes[0] == (
        "no ledger item: the bridge has never processed a delivery about this payment"
    )
    assert recent.due == Decimal("19.99")
    assert not recent.agree

    old = explain(PAYMENT, runtime, clock=lambda: created + 500 * DAY)
    assert old.notes[0].startswith(
        "no ledger item: the payment is older than the history retention (400 days)"
    )


def test_an_unknown_id_is_one_line(shop: Shop) -> None:
    err = StringIO()
    assert run_explain(Args("order-17"), None, err=err, runtime=shop.runtime()) == 1
    assert err.getvalue().startswith("partnero-bridge explain: 'order-17' is neither")


def test_explain_finds_an_invoice_by_any_of_its_ids_and_says_a_subscription_checkout_is_none(
    shop: Shop,
) -> None:
    shop.deliver("checkout.session.completed.subscription")
    shop.deliver("invoice.paid.subscription_create")
    runtime = shop.runtime()

    for asked in ("in_FIRSTAdaPartneroDemo", "pi_FIRSTAdaPartneroDemo", "ch_FIRSTAdaPartneroDemo"):
        story = explain(asked, runtime)
        assert story.ledger_key == "stripe#invoice:in_FIRSTAdaPartneroDemo", asked
        assert story.agree, asked
        assert story.partnero_holds == Decimal("20.00")

    checkout = explain("cs_test_a1AdaSubscriptionCheckout0PartneroDemo0000000000000000000", runtime)
    assert checkout.source_error == (
        "Stripe: a subscription checkout: its invoices are the payments"
    )
    assert not checkout.agree


# -- Ecwid ------------------------------------------------------------------------------------

STORE = 1003
ECWID_TOKEN = "secret_store_token_explain"
ECWID_SECRET = "test-ecwid-explain-secret"


@pytest.fixture
def ecwid_shop(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox
) -> Iterator[tuple[InProcessBridge, FakeEcwid]]:
    with FakeEcwid(stores={STORE: ECWID_TOKEN}) as ecwid:
        ecwid.put_order(STORE, ORDER)
        env = {
            "PARTNERO_API_URL": sandbox.url,
            "PARTNERO_API_KEY": SANDBOX_KEY,
            "ECWID_API_URL": ecwid.url,
            "ECWID_CLIENT_SECRET": ECWID_SECRET,
            "ECWID_STORE_TOKENS": json.dumps({str(STORE): ECWID_TOKEN}),
            "BRIDGE_RETRY_BASE_SECONDS": "0",
        }
        with in_process_bridge(monkeypatch, env) as bridge:
            yield bridge, ecwid


def test_explain_an_ecwid_order_refunded_then_deleted(
    ecwid_shop: tuple[InProcessBridge, FakeEcwid], sandbox: PartneroSandbox
) -> None:
    bridge, ecwid = ecwid_shop

    def send(event_type: str, order: dict[str, Any]) -> None:
        raw, headers = ecwid_signed(webhook(event_type, STORE, order), ECWID_SECRET)
        assert bridge.call("POST", "/webhooks/ecwid", raw, headers).status == 200
        bridge.drain("ecwid")

    send("order.created", ORDER)
    partial = {**ORDER, "paymentStatus": "PARTIALLY_REFUNDED", "refundedAmount": 20.0}
    ecwid.put_order(STORE, partial)
    send("order.updated", partial)

    story = explain(f"{STORE}:{ORDER['id']}", runtime_of(bridge, "EcwidOrderProcessFunction"))
    assert story.ledger_key == f"ecwid#{STORE}#{ORDER['internalId']}"
    assert [(e.event_type, e.action, e.amount) for e in story.history] == [
        ("order.created", "created", Decimal("60.00")),
        ("order.updated", "replaced", Decimal("43.19")),
    ]
    assert story.agree
    text = render(story)
    assert "order K8XTQ (internal id 516483487): PARTIALLY_REFUNDED" in text
    assert "customer ja***@example.com, partner (partnero_partner) demo-partner" in text
    assert "jane.doe@example.com" not in text.lower()
    # Every amount with its currency's decimals (the order says 70.0 and 20.0).
    assert "total 71.39 USD, subtotal 70.00 USD, tax 4.89 USD, refunded 20.00 USD" in text
    assert "sent: replaced 43.19 USD" in text
    assert (
        "replaced 60.00 with 43.19 USD: order is PARTIALLY_REFUNDED, 20.00 of 71.39 USD refunded"
        in text
    )

    ecwid.delete_order(STORE, ORDER["id"])
    send("order.deleted", partial)
    gone = explain(f"{STORE}:{ORDER['id']}", runtime_of(bridge, "EcwidOrderProcessFunction"))
    assert gone.history[-1].event_type == "order.deleted"
    assert gone.history[-1].action == "reversed"
    assert "reversed 43.19 USD: " in render(gone)
    assert gone.target is not None
    assert gone.target.reason == "deleted"
    assert gone.agree  # nothing due, nothing recorded, nothing in Partnero
    assert live(sandbox) == []

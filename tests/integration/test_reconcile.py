"""``partnero-bridge reconcile`` against a seeded past, through the whole bridge in process.

Stripe (and Ecwid) are seeded with a deterministic history (``local.seed``); some payments
reach the bridge through signed webhooks and its queues, others never do; some are
refunded after their webhook, with the refund never delivered; one transaction's amount is
changed in Partnero behind the bridge's back; one transaction the bridge made belongs to a
payment refunded since; and Partnero also holds a manual transaction outside the bridge's
namespace. The report must name exactly those differences (and the sales nobody referred),
with the right totals per currency, and never the manual transaction; ``--apply`` then
heals through the work queues, and a second run finds nothing to heal.
"""

from __future__ import annotations

import csv
import io
import json
import time
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO
from typing import Any

import httpx
import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import (
    DEFAULT_PARTNERS,
    SeededSale,
    plan_ecwid,
    plan_stripe,
    seed_manual_transaction,
)
from partnero_bridge_cli.local.stack import function_environment
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from partnero_bridge_cli.reconcile import run as run_reconcile
from tests.conftest import SANDBOX_KEY
from tests.support.ecwid import signed as ecwid_signed
from tests.support.ecwid import webhook
from tests.support.inprocess import ROOT, InProcessBridge, in_process_bridge
from tests.support.stripe import signed as stripe_signed

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

STRIPE_KEY = "rk_test_reconcile_reader"
STRIPE_SECRET = "whsec_test_reconcile"
STORE, TOKEN, ECWID_SECRET = 1003, "secret_reconcile_store", "test-ecwid-reconcile-secret"
DAY = 86400
MANUAL_KEY = "manual_adjustment_1"


def settings_of(bridge: InProcessBridge, function: str) -> BridgeSettings:
    spec = bridge.stack.functions[function]
    resolver = bridge.resources.resolver(bridge.parameters)
    env = function_environment(spec, resolver, bridge.user_env, "", ROOT / "layers" / "common")
    return BridgeSettings.from_environ(env)


def args(source: str, since: int, **changes: Any) -> Namespace:
    values: dict[str, Any] = {
        "source": source,
        "store": [],
        "since": since,
        "until": None,
        "apply": False,
        "format": "json",
        "all": False,
        "restart": False,
        "rate_share": 0.0,
        "workers": 4,
        "stack_name": None,
        "quiet": True,
    }
    values.update(changes)
    return Namespace(**values)


@dataclass
class Reconciled:
    status: int
    report: dict[str, Any]
    text: str


def reconcile(settings: BridgeSettings, source: str, since: int, **changes: Any) -> Reconciled:
    out, err = StringIO(), StringIO()
    status = run_reconcile(args(source, since, **changes), None, out, err, settings=settings)
    assert status in (0, 2), err.getvalue()
    text = out.getvalue()
    parsed = json.loads(text) if changes.get("format", "json") == "json" else {}
    return Reconciled(status, parsed, text)


def kinds(report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in report["rows"]:
        found.setdefault(row["kind"], set()).add(row["transaction_key"])
    return found


def money_by_currency(sales: list[SeededSale], value: str) -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for sale in sales:
        amount = getattr(sale, value)
        totals[sale.currency] = totals.get(sale.currency, Decimal(0)) + (amount or Decimal(0))
    return {currency: str(total) for currency, total in sorted(totals.items())}


@dataclass
class Expected:
    """The differences a test planted, by kind: the sales and what Partnero holds for each."""

    missing: list[SeededSale] = field(default_factory=list)
    wrong_amount: list[SeededSale] = field(default_factory=list)
    extra: list[SeededSale] = field(default_factory=list)
    not_referred: list[SeededSale] = field(default_factory=list)
    held: dict[str, Decimal] = field(default_factory=dict)  # transaction key -> held

    def keys(self) -> dict[str, set[str]]:
        found = {
            "missing": {s.transaction_key for s in self.missing},
            "wrong_amount": {s.transaction_key for s in self.wrong_amount},
            "extra": {s.transaction_key for s in self.extra},
            "not_referred": {s.transaction_key for s in self.not_referred},
        }
        return {kind: keys for kind, keys in found.items() if keys}


def partnero_live(sandbox: PartneroSandbox) -> dict[str, list[Decimal]]:
    found: dict[str, list[Decimal]] = {}
    for transaction in sandbox.transactions():
        if not transaction.get("deleted"):
            found.setdefault(transaction["key"], []).append(Decimal(str(transaction["amount"])))
    return found


def set_amount_in_partnero(sandbox: PartneroSandbox, sale: SeededSale, amount: Decimal) -> None:
    """Someone changes a transaction's amount in Partnero: deleted and made again."""
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    key = sale.transaction_key
    httpx.delete(f"{sandbox.url}/transactions/{key}", headers=headers).raise_for_status()
    body = {
        "key": key,
        "amount": str(amount),
        "amount_units": sale.currency,
        "action": "sale",
        "customer": {"key": sale.customer_key},
    }
    httpx.post(f"{sandbox.url}/transactions", json=body, headers=headers).raise_for_status()


# -- Stripe ------------------------------------------------------------------------------------


@pytest.fixture
def stripe_world(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox
) -> Iterator[tuple[InProcessBridge, FakeStripeApi]]:
    for partner in DEFAULT_PARTNERS:
        sandbox.add_partner(partner)
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as stripe_api:
        env = {
            "PARTNERO_API_URL": sandbox.url,
            "PARTNERO_API_KEY": SANDBOX_KEY,
            "STRIPE_API_URL": stripe_api.url,
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
            "STRIPE_LIVEMODE": "false",
            "BRIDGE_RETRY_BASE_SECONDS": "0",
            # A sale without a partner is not referred at once (no sign-up is coming).
            "BRIDGE_SIGNUP_WAIT_SECONDS": "0",
        }
        with in_process_bridge(monkeypatch, env) as bridge:
            yield bridge, stripe_api


def payment_event(events: list[dict[str, Any]], sale: SeededSale) -> dict[str, Any]:
    """The event Stripe sent when the payment was made (about its invoice, checkout or
    PaymentIntent)."""
    wanted = {
        "invoice": "invoice.paid",
        "checkout": "checkout.session.completed",
        "payment_intent": "payment_intent.succeeded",
    }[sale.kind]
    return next(
        e for e in events if e["type"] == wanted and e["data"]["object"]["id"] in sale.stripe_ids
    )


def test_stripe_reconcile_reports_exactly_the_planted_differences_and_heals_them(
    stripe_world: tuple[InProcessBridge, FakeStripeApi], sandbox: PartneroSandbox, figures: Any
) -> None:
    bridge, stripe_api = stripe_world
    end = int(time.time()) - 60
    since = end - 20 * DAY
    plan = plan_stripe(40, start=since, end=end, seed=11)
    sales = list(plan.manifest.sales)
    partial = [s for s in sales if s.referred and s.outcome == "partially_refunded"][:2]
    refunded = next(s for s in sales if s.referred and s.outcome == "refunded")
    special = {s.transaction_key for s in [*partial, refunded]}
    webhooked = [s for s in sales[::2] if s.transaction_key not in special] + [
        *partial,
        refunded,
    ]
    edited = next(s for s in webhooked if s.referred and s.outcome == "paid")
    # Refunds that happen after their payment's webhook, and are never delivered.
    late = {i for s in [*partial, refunded] for i in s.stripe_ids if i.startswith("re_")}
    stripe_api.put_objects(
        [o for o in plan.objects if o["id"] not in late], api_version=PINNED_VERSION
    )
    stripe_api.add_events(plan.events)
    for sale in webhooked:
        raw, headers = stripe_signed(payment_event(plan.events, sale), STRIPE_SECRET)
        assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200
    bridge.drain("stripe", timeout=60)
    stripe_api.put_objects([o for o in plan.objects if o["id"] in late], api_version=PINNED_VERSION)
    set_amount_in_partnero(sandbox, edited, Decimal("1.23"))
    seed_manual_transaction(
        f"{sandbox.url}", SANDBOX_KEY, partner_key=DEFAULT_PARTNERS[0], key=MANUAL_KEY
    )

    seen = {s.transaction_key for s in webhooked}
    expected = Expected(
        missing=[s for s in sales if s.transaction_key not in seen and s.referred and s.amount],
        wrong_amount=[*partial, edited],
        extra=[refunded],
        not_referred=[s for s in sales if not s.referred and s.amount is not None],
    )
    settings = settings_of(bridge, "StripeEventProcessFunction")
    first = reconcile(settings, "stripe", since)

    assert first.status == 2
    assert kinds(first.report) == expected.keys()
    assert first.report["payments"] == len(sales)
    assert MANUAL_KEY not in json.dumps(first.report)
    totals = first.report["totals"]
    assert {c: t["due"] for c, t in totals["missing"].items()} == money_by_currency(
        expected.missing, "amount"
    )
    assert {c: t["held"] for c, t in totals["extra"].items()} == money_by_currency(
        [refunded], "paid"
    )
    rows = {r["transaction_key"]: r for r in first.report["rows"]}
    for sale in partial:
        assert rows[sale.transaction_key]["due"] == str(sale.amount)
        assert rows[sale.transaction_key]["held"] == str(sale.paid)
    assert rows[edited.transaction_key]["held"] == "1.23"
    assert rows[edited.transaction_key]["due"] == str(edited.amount)
    assert rows[refunded.transaction_key]["due"] is None
    # The same report as a table and as CSV; neither names the manual transaction.
    table = reconcile(settings, "stripe", since, format="table", restart=True).text
    assert "wrong_amount" in table
    assert MANUAL_KEY not in table
    as_csv = reconcile(settings, "stripe", since, format="csv").text
    listed = list(csv.DictReader(io.StringIO(as_csv)))
    assert {r["transaction_key"] for r in listed} == {
        k for keys in expected.keys().values() for k in keys
    }

    # The webhooks of some missing payments arrive late, queued with the re-checks: the
    # ledger's claim lets only one of each make the transaction.
    racing = expected.missing[:3] + expected.wrong_amount[:1]
    for sale in racing:
        raw, headers = stripe_signed(payment_event(plan.events, sale), STRIPE_SECRET)
        assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200
    healed = reconcile(settings, "stripe", since, apply=True)
    drift = [r for r in healed.report["rows"] if r["kind"] != "not_referred"]
    assert {r["healing"] for r in drift} == {"queued"}
    assert all(r["healing"] == "" for r in healed.report["rows"] if r["kind"] == "not_referred")
    bridge.drain("stripe", timeout=60)
    history = bridge.ledger_item(rows[edited.transaction_key]["ledger_key"])
    assert history is not None
    assert "reconcile" in json.dumps(history["history"], default=str)

    again = reconcile(settings, "stripe", since)
    assert again.status == 0
    assert kinds(again.report) == {"not_referred": expected.keys()["not_referred"]}
    live = partnero_live(sandbox)
    for sale in sales:
        due = sale.expected
        assert live.get(sale.transaction_key, []) == ([due] if due else []), sale.transaction_key
    assert live[MANUAL_KEY] == [Decimal("42.00")]
    figures(
        payments=len(sales),
        planted=sum(len(k) for k in expected.keys().values()) - len(expected.not_referred),
        calls_per_payment=first.report["calls_per_payment"],
    )


# -- Ecwid -------------------------------------------------------------------------------------


@pytest.fixture
def ecwid_world(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox
) -> Iterator[tuple[InProcessBridge, FakeEcwid]]:
    for partner in DEFAULT_PARTNERS:
        sandbox.add_partner(partner)
    with FakeEcwid(stores={STORE: TOKEN}) as ecwid:
        env = {
            "PARTNERO_API_URL": sandbox.url,
            "PARTNERO_API_KEY": SANDBOX_KEY,
            "ECWID_API_URL": ecwid.url,
            "ECWID_CLIENT_SECRET": ECWID_SECRET,
            "ECWID_STORE_TOKENS": json.dumps({str(STORE): TOKEN}),
            "BRIDGE_RETRY_BASE_SECONDS": "0",
            "BRIDGE_SIGNUP_WAIT_SECONDS": "0",
        }
        with in_process_bridge(monkeypatch, env) as bridge:
            yield bridge, ecwid


def before_refund(order: dict[str, Any]) -> dict[str, Any]:
    """The order as it was when paid, before its refund."""
    return {
        **order,
        "paymentStatus": "PAID",
        "refundedAmount": Decimal(0),
        "refunds": [],
        "updateTimestamp": order["createTimestamp"] + 60,
    }


def test_ecwid_reconcile_reports_exactly_the_planted_differences_and_heals_them(
    ecwid_world: tuple[InProcessBridge, FakeEcwid], sandbox: PartneroSandbox, figures: Any
) -> None:
    bridge, ecwid = ecwid_world
    end = int(time.time()) - 60
    since = end - 20 * DAY
    plan = plan_ecwid(40, store_id=STORE, start=since, end=end, seed=5)
    sales = list(plan.manifest.sales)
    orders = {order["id"]: order for order in plan.orders}
    partial = [s for s in sales if s.referred and s.outcome == "PARTIALLY_REFUNDED"][:2]
    refunded = next(s for s in sales if s.referred and s.outcome == "REFUNDED")
    deleted = next(s for s in sales if s.referred and s.outcome == "DELETED")
    late = [*partial, refunded, deleted]
    special = {s.transaction_key for s in late}
    webhooked = [s for s in sales[::2] if s.transaction_key not in special] + late
    for order in plan.orders:
        changed_later = order["id"] in {s.object_id for s in late}
        ecwid.put_order(STORE, before_refund(order) if changed_later else order)
    for order_id, when in plan.deletions:
        if order_id != deleted.object_id:
            ecwid.delete_order(STORE, order_id, deleted_at=when)
    for sale in webhooked:
        raw, headers = ecwid_signed(
            webhook("order.created", STORE, orders[sale.object_id]), ECWID_SECRET
        )
        assert bridge.call("POST", "/webhooks/ecwid", raw, headers).status == 200
    bridge.drain("ecwid", timeout=60)
    # Then the refunds and a deletion, whose webhooks never arrive.
    for sale in [*partial, refunded]:
        ecwid.put_order(STORE, orders[sale.object_id])
    assert deleted.deleted_at is not None
    ecwid.delete_order(STORE, deleted.object_id, deleted_at=deleted.deleted_at)
    edited = next(s for s in webhooked if s.referred and s.outcome == "PAID")
    set_amount_in_partnero(sandbox, edited, Decimal("2.50"))
    seed_manual_transaction(
        sandbox.url, SANDBOX_KEY, partner_key=DEFAULT_PARTNERS[1], key=MANUAL_KEY
    )

    seen = {s.transaction_key for s in webhooked}
    expected = Expected(
        missing=[s for s in sales if s.transaction_key not in seen and s.referred and s.amount],
        wrong_amount=[*partial, edited],
        extra=[refunded, deleted],
        not_referred=[s for s in sales if not s.referred and s.amount is not None],
    )
    settings = settings_of(bridge, "EcwidOrderProcessFunction")
    first = reconcile(settings, "ecwid", since)

    assert first.status == 2
    assert kinds(first.report) == expected.keys()
    assert first.report["payments"] == len(sales)
    assert MANUAL_KEY not in first.text
    totals = first.report["totals"]
    assert {c: t["due"] for c, t in totals["missing"].items()} == money_by_currency(
        expected.missing, "amount"
    )
    assert totals["extra"]["USD"]["held"] == str(sum((s.basis for s in expected.extra), Decimal(0)))
    rows = {r["transaction_key"]: r for r in first.report["rows"]}
    for sale in partial:
        assert (rows[sale.transaction_key]["due"], rows[sale.transaction_key]["held"]) == (
            str(sale.amount),
            str(sale.basis),
        )
    assert Decimal(rows[edited.transaction_key]["held"]) == Decimal("2.50")

    healed = reconcile(settings, "ecwid", since, apply=True, store=[str(STORE)])
    drift = [r for r in healed.report["rows"] if r["kind"] != "not_referred"]
    assert {r["healing"] for r in drift} == {"queued"}
    bridge.drain("ecwid", timeout=60)

    again = reconcile(settings, "ecwid", since)
    assert again.status == 0
    assert kinds(again.report) == {"not_referred": expected.keys()["not_referred"]}
    live = partnero_live(sandbox)
    for sale in sales:
        due = sale.expected
        assert live.get(sale.transaction_key, []) == ([due] if due else []), sale.transaction_key
    assert live[MANUAL_KEY] == [Decimal("42.00")]
    figures(
        orders=len(sales),
        planted=sum(len(k) for k in expected.keys().values()) - len(expected.not_referred),
        calls_per_payment=first.report["calls_per_payment"],
    )

"""``partnero-bridge backfill`` against a seeded past the bridge never saw, in process.

Stripe is seeded with a month of payments (some refunded in part or whole since) whose
webhooks never came. The dry run must list exactly the sales Partnero lacks, with their
money per currency and partner; ``--apply`` then, through the work queue, makes each once,
backdated to its sale's time and net of its refunds, even with some webhooks arriving at
the same time; a second ``--apply`` makes nothing. When Partnero already holds a
transaction of another integration for a customer of the window, the backfill refuses
without ``--not-before``, and with it never makes a payment older than the cut-over.
"""

from __future__ import annotations

import json
import time
from argparse import Namespace
from datetime import datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import httpx
import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge_cli.backfill import run as run_backfill
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import SeededSale, StripeSeed, plan_stripe
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.integration.test_reconcile import (
    STRIPE_SECRET,
    payment_event,
    settings_of,
    stripe_world,
)
from tests.support.inprocess import InProcessBridge
from tests.support.stripe import signed as stripe_signed

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(90)]

__all__ = ["stripe_world"]  # the fixture, shared with the reconcile tests
DAY = 86400
# 61 seeded payments of which 50 are due (the others refunded in whole since).
SEEDED, DUE = 61, 50


def args(since: int, **changes: Any) -> Namespace:
    values: dict[str, Any] = {
        "source": "stripe",
        "store": [],
        "since": since,
        "until": None,
        "not_before": None,
        "apply": False,
        "format": "json",
        "rate_share": 0.0,
        "workers": 4,
        "stack_name": None,
        "quiet": True,
    }
    values.update(changes)
    return Namespace(**values)


def backfill(settings: BridgeSettings, since: int, **changes: Any) -> tuple[int, Any, str]:
    out, err = StringIO(), StringIO()
    status = run_backfill(args(since, **changes), None, out, err, settings=settings)
    text = out.getvalue()
    return status, (json.loads(text) if text else None), err.getvalue()


def seeded(stripe_api: FakeStripeApi, since: int, end: int) -> StripeSeed:
    """Objects and events in the fake Stripe; no webhook is sent."""
    plan = plan_stripe(SEEDED, start=since, end=end, seed=7, referred_share=1.0)
    stripe_api.put_objects(plan.objects, api_version=PINNED_VERSION)
    stripe_api.add_events(plan.events)
    return plan


def live(sandbox: PartneroSandbox) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for transaction in sandbox.transactions():
        if not transaction.get("deleted"):
            found.setdefault(transaction["key"], []).append(transaction)
    return found


def seconds(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def sums(sales: list[SeededSale], by: str = "currency") -> dict[Any, tuple[int, Decimal]]:
    found: dict[Any, tuple[int, Decimal]] = {}
    for sale in sales:
        key = sale.currency if by == "currency" else (sale.partner_key, sale.currency)
        count, money = found.get(key, (0, Decimal(0)))
        found[key] = (count + 1, money + (sale.amount or Decimal(0)))
    return found


def test_backfill_lists_then_makes_each_past_sale_once_backdated(
    stripe_world: tuple[InProcessBridge, FakeStripeApi], sandbox: PartneroSandbox, figures: Any
) -> None:
    bridge, stripe_api = stripe_world
    end = int(time.time()) - 60
    since = end - 30 * DAY
    plan = seeded(stripe_api, since, end)
    sales = list(plan.manifest.sales)
    due = [s for s in sales if s.amount]
    assert len(due) == DUE
    settings = settings_of(bridge, "StripeEventProcessFunction")

    status, dry, _ = backfill(settings, since)
    assert status == 0
    assert dry["count"] == DUE
    assert {r["transaction_key"] for r in dry["rows"]} == {s.transaction_key for s in due}
    assert {c: (t["count"], Decimal(t["amount"])) for c, t in dry["per_currency"].items()} == sums(
        due
    )
    assert {
        (r["partner"], r["currency"]): (r["count"], Decimal(r["amount"]))
        for r in dry["per_partner"]
    } == sums(due, by="partner")
    assert live(sandbox) == {}  # a dry run makes nothing

    # Some of the same payments' webhooks arrive at last, queued with the backfill's
    # re-checks: the ledger lets only one of each make the transaction.
    for sale in due[:3]:
        raw, headers = stripe_signed(payment_event(plan.events, sale), STRIPE_SECRET)
        assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200
    started = time.perf_counter()
    status, applied, _ = backfill(settings, since, apply=True)
    assert status == 0
    assert applied["count"] == DUE
    assert {r["healing"] for r in applied["rows"]} == {"queued"}
    # Run twice before the queue drains: every re-check is queued again, and the ledger
    # lets the second of each find the work done.
    status, twice, _ = backfill(settings, since, apply=True)
    assert status == 0
    assert twice["count"] == DUE
    bridge.drain("stripe", timeout=60)
    held = live(sandbox)
    assert set(held) == {s.transaction_key for s in due}
    for sale in due:
        (transaction,) = held[sale.transaction_key]
        assert Decimal(str(transaction["amount"])) == sale.amount, sale.transaction_key
        assert seconds(transaction["created_at"]) == sale.created, sale.transaction_key

    # Once made, nothing is missing: a later run makes nothing.
    status, again, _ = backfill(settings, since, apply=True)
    assert status == 0
    assert again["count"] == 0
    bridge.drain("stripe", timeout=30)
    assert {k: len(v) for k, v in live(sandbox).items()} == {s.transaction_key: 1 for s in due}
    figures(payments=len(sales), created=len(held), apply_seconds=time.perf_counter() - started)


def test_backfill_refuses_without_the_cut_over_and_never_makes_older_sales(
    stripe_world: tuple[InProcessBridge, FakeStripeApi], sandbox: PartneroSandbox
) -> None:
    bridge, stripe_api = stripe_world
    end = int(time.time()) - 60
    since = end - 30 * DAY
    sales = list(seeded(stripe_api, since, end).manifest.sales)
    due = sorted((s for s in sales if s.amount), key=lambda s: s.created)
    # Partnero's own Stripe integration credited a customer before the cut-over.
    other = due[-1]  # a customer who pays again after the cut-over
    assert other.customer_key is not None
    assert other.partner_key is not None
    body = {
        "key": "pi_from_partneros_own_integration",
        "amount": str(other.paid),
        "amount_units": other.currency,
        "action": "sale",
        "customer": {"key": other.customer_key, "partner": {"key": other.partner_key}},
        "options": {"create_customer": True},
    }
    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    httpx.post(f"{sandbox.url}/transactions", json=body, headers=headers).raise_for_status()
    settings = settings_of(bridge, "StripeEventProcessFunction")

    status, output, err = backfill(settings, since, apply=True)
    assert status == 1
    assert output is None
    assert "--not-before" in err
    assert "refused" in err
    bridge.drain("stripe", timeout=30)
    assert set(live(sandbox)) == {"pi_from_partneros_own_integration"}

    cut_over = due[len(due) // 2].created
    after = [s for s in due if s.created >= cut_over]
    status, applied, err = backfill(settings, since, apply=True, not_before=cut_over)
    assert status == 0, err
    assert applied["count"] == len(after)
    assert applied["before_cutover"] == len(due) - len(after)
    bridge.drain("stripe", timeout=60)
    held = live(sandbox)
    assert set(held) == {s.transaction_key for s in after} | {"pi_from_partneros_own_integration"}
    assert all(len(v) == 1 for v in held.values())

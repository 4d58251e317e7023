"""``partnero-bridge reconcile`` against the running local stack, as a user runs it: 200
payments seeded in the local Stripe and Ecwid fakes (100 each), half sent as signed
webhooks through the gateway, some refunded or deleted after their webhook without one
arriving, one amount changed in Partnero, a manual transaction in the program. The command
(its own process, the stack's settings) reports exactly those differences with the right
totals per currency and never the manual one; ``--apply`` while the same payments' late
webhooks arrive leaves exactly one transaction per payment; a second run finds nothing to
heal. About 40 s with the stack's start."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import (
    SeededSale,
    plan_ecwid,
    plan_stripe,
    seed_manual_transaction,
)
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from tests.e2e.conftest import ECWID_CLIENT_SECRET, ECWID_STORE, PARTNERO_KEY, STRIPE_SECRET
from tests.support.ecwid import signed as ecwid_signed
from tests.support.ecwid import webhook
from tests.support.local_stack import RunningStack, wait_for
from tests.support.stripe import signed as stripe_signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

DAY = 86400
PARTNERS = ("demo-partner",)
MANUAL_KEY = "manual_adjustment_e2e"
# A window well in the past: the other e2e tests' orders (made now) stay out of it.
END = int(time.time()) - 40 * DAY
SINCE = END - 20 * DAY


def live(partnero: PartneroSandbox) -> dict[str, list[Decimal]]:
    found: dict[str, list[Decimal]] = {}
    for transaction in partnero.transactions():
        if not transaction.get("deleted"):
            found.setdefault(transaction["key"], []).append(Decimal(str(transaction["amount"])))
    return found


def set_amount(partnero: PartneroSandbox, sale: SeededSale, amount: str) -> None:
    headers = {"Authorization": f"Bearer {PARTNERO_KEY}"}
    key = sale.transaction_key
    httpx.delete(f"{partnero.url}/transactions/{key}", headers=headers).raise_for_status()
    body: dict[str, Any] = {
        "key": key,
        "amount": amount,
        "amount_units": sale.currency,
        "action": "sale",
        "customer": {"key": sale.customer_key},
    }
    httpx.post(f"{partnero.url}/transactions", json=body, headers=headers).raise_for_status()


def stripe_event(events: list[dict[str, Any]], sale: SeededSale) -> dict[str, Any]:
    wanted = {
        "invoice": "invoice.paid",
        "checkout": "checkout.session.completed",
        "payment_intent": "payment_intent.succeeded",
    }[sale.kind]
    return next(
        e for e in events if e["type"] == wanted and e["data"]["object"]["id"] in sale.stripe_ids
    )


def report(stack: RunningStack, source: str, *extra: str, **env: str) -> tuple[int, Any]:
    done = stack.cli(
        "reconcile",
        "--source",
        source,
        "--since",
        str(SINCE),
        "--until",
        str(END),
        "--format",
        "json",
        "--rate-share",
        "0",
        "--quiet",
        *extra,
        **env,
    )
    assert done.returncode in (0, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def by_kind(found: dict[str, Any]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for row in found["rows"]:
        kinds.setdefault(row["kind"], set()).add(row["transaction_key"])
    return kinds


def expected_kinds(
    sales: list[SeededSale], webhooked: list[SeededSale], wrong: list[SeededSale], extra: list[Any]
) -> dict[str, set[str]]:
    seen = {s.transaction_key for s in webhooked}
    return {
        "missing": {
            s.transaction_key
            for s in sales
            if s.transaction_key not in seen and s.referred and s.amount
        },
        "wrong_amount": {s.transaction_key for s in wrong},
        "extra": {s.transaction_key for s in extra},
        "not_referred": {
            s.transaction_key for s in sales if not s.referred and s.amount is not None
        },
    }


@dataclass
class StripeSide:
    """The Stripe payments seeded, those webhooked, and the refunds held back until after
    their payment's webhook (Stripe never sends theirs)."""

    plan: Any
    sales: list[SeededSale]
    webhooked: list[SeededSale]
    partial: list[SeededSale]
    refunded: list[SeededSale]
    held_back: set[str]


def plant_stripe(stack: RunningStack, stripe_api: FakeStripeApi) -> StripeSide:
    """Half webhooked; two partial refunds and one full refund after their webhook."""
    plan = plan_stripe(100, start=SINCE, end=END, seed=21, partners=PARTNERS)
    sales = list(plan.manifest.sales)
    partial = [s for s in sales if s.referred and s.outcome == "partially_refunded"][:2]
    refunded = [s for s in sales if s.referred and s.outcome == "refunded"][:1]
    late = [*partial, *refunded]
    webhooked = [s for s in sales[::2] if s not in late] + late
    held_back = {i for s in late for i in s.stripe_ids if i.startswith("re_")}
    stripe_api.put_objects(
        [o for o in plan.objects if o["id"] not in held_back], api_version=PINNED_VERSION
    )
    for sale in webhooked:
        raw, headers = stripe_signed(stripe_event(plan.events, sale), STRIPE_SECRET)
        assert stack.http.post("/webhooks/stripe", content=raw, headers=headers).status_code == 200
    return StripeSide(plan, sales, webhooked, partial, refunded, held_back)


@dataclass
class EcwidSide:
    """The Ecwid orders seeded, those webhooked, and the three changed after their
    webhook without one (a partial refund, a refund, a deletion)."""

    sales: list[SeededSale]
    orders: dict[str, dict[str, Any]]
    webhooked: list[SeededSale]
    changed: list[SeededSale]


def plant_ecwid(stack: RunningStack, ecwid: FakeEcwid) -> EcwidSide:
    """Half webhooked; a partial refund, a refund and a deletion after their webhook."""
    plan = plan_ecwid(100, store_id=ECWID_STORE, start=SINCE, end=END, seed=21, partners=PARTNERS)
    sales = list(plan.manifest.sales)
    orders = {order["id"]: order for order in plan.orders}
    changed = [
        next(s for s in sales if s.referred and s.outcome == outcome)
        for outcome in ("PARTIALLY_REFUNDED", "REFUNDED", "DELETED")
    ]
    webhooked = [s for s in sales[::2] if s not in changed] + changed
    changed_ids = {s.object_id for s in changed}
    for order in plan.orders:
        paid_then = {**order, "paymentStatus": "PAID", "refundedAmount": 0, "refunds": []}
        ecwid.put_order(ECWID_STORE, paid_then if order["id"] in changed_ids else order)
    for order_id, when in plan.deletions:
        if order_id != changed[2].object_id:
            ecwid.delete_order(ECWID_STORE, order_id, deleted_at=when)
    for sale in webhooked:
        body = webhook("order.created", ECWID_STORE, orders[sale.object_id])
        raw, headers = ecwid_signed(body, ECWID_CLIENT_SECRET)
        assert stack.http.post("/webhooks/ecwid", content=raw, headers=headers).status_code == 200
    return EcwidSide(sales, orders, webhooked, changed)


def change_behind_the_bridge(
    stripe: StripeSide,
    ecwid_side: EcwidSide,
    stripe_api: FakeStripeApi,
    ecwid: FakeEcwid,
    partnero: PartneroSandbox,
) -> dict[str, dict[str, set[str]]]:
    """The late refunds and the deletion made without a webhook, one amount per source
    changed in Partnero, a manual transaction; the differences each source should show."""
    stripe_api.put_objects(
        [o for o in stripe.plan.objects if o["id"] in stripe.held_back], api_version=PINNED_VERSION
    )
    changed = ecwid_side.changed
    for sale in changed[:2]:
        ecwid.put_order(ECWID_STORE, ecwid_side.orders[sale.object_id])
    assert changed[2].deleted_at is not None
    ecwid.delete_order(ECWID_STORE, changed[2].object_id, deleted_at=changed[2].deleted_at)
    stripe_edited = next(s for s in stripe.webhooked if s.referred and s.outcome == "paid")
    ecwid_edited = next(s for s in ecwid_side.webhooked if s.referred and s.outcome == "PAID")
    set_amount(partnero, stripe_edited, "3.21")
    set_amount(partnero, ecwid_edited, "4.32")
    seed_manual_transaction(partnero.url, PARTNERO_KEY, partner_key=PARTNERS[0], key=MANUAL_KEY)
    return {
        "stripe": expected_kinds(
            stripe.sales, stripe.webhooked, [*stripe.partial, stripe_edited], stripe.refunded
        ),
        "ecwid": expected_kinds(
            ecwid_side.sales, ecwid_side.webhooked, [changed[0], ecwid_edited], changed[1:]
        ),
    }


def assert_reported(
    found: dict[str, Any], expected: dict[str, set[str]], sales: list[SeededSale]
) -> None:
    """Exactly the planted differences, every payment compared, never the manual
    transaction, and the missing money per currency."""
    assert by_kind(found) == {k: v for k, v in expected.items() if v}
    assert found["payments"] == len(sales)
    assert MANUAL_KEY not in json.dumps(found)
    due: dict[str, Decimal] = {}
    for sale in sales:
        if sale.transaction_key in expected["missing"]:
            due[sale.currency] = due.get(sale.currency, Decimal(0)) + (sale.amount or Decimal(0))
    assert {c: Decimal(t["due"]) for c, t in found["totals"]["missing"].items()} == due


def test_reconcile_200_payments_through_the_local_stack(
    stack: RunningStack,
    partnero: PartneroSandbox,
    ecwid: FakeEcwid,
    stripe_api: FakeStripeApi,
    figures: Any,
) -> None:
    settings = {
        "PARTNERO_API_URL": partnero.url,
        "STRIPE_API_URL": stripe_api.url,
        "ECWID_API_URL": ecwid.url,
    }
    stripe = plant_stripe(stack, stripe_api)
    ecwid_side = plant_ecwid(stack, ecwid)
    stack.wait_until_drained("stripe-event", timeout=90)
    stack.wait_until_drained("ecwid-order", timeout=90)
    expected = change_behind_the_bridge(stripe, ecwid_side, stripe_api, ecwid, partnero)

    sales = {"stripe": stripe.sales, "ecwid": ecwid_side.sales}
    extra = {"stripe": (), "ecwid": ("--store", str(ECWID_STORE))}
    for source in ("stripe", "ecwid"):
        status, found = report(stack, source, *extra[source], **settings)
        assert status == 2
        assert_reported(found, expected[source], sales[source])

    # The missing payments' webhooks arrive late, while --apply queues their re-checks.
    for sale in stripe.sales:
        if sale.transaction_key in expected["stripe"]["missing"]:
            raw, headers = stripe_signed(stripe_event(stripe.plan.events, sale), STRIPE_SECRET)
            stack.http.post("/webhooks/stripe", content=raw, headers=headers)
    for source in ("stripe", "ecwid"):
        status, found = report(stack, source, *extra[source], "--apply", **settings)
        assert status == 0
    stack.wait_until_drained("stripe-event", timeout=90)
    stack.wait_until_drained("ecwid-order", timeout=90)

    for source in ("stripe", "ecwid"):
        status, found = report(stack, source, *extra[source], **settings)
        assert status == 0, found["counts"]
        assert set(by_kind(found)) <= {"not_referred"}
    held = wait_for(lambda: live(partnero), 5, "Partnero's transactions")
    for sale in [*stripe.sales, *ecwid_side.sales]:
        want = sale.expected
        assert held.get(sale.transaction_key, []) == ([want] if want else []), sale.transaction_key
    assert held[MANUAL_KEY] == [Decimal("42.00")]
    figures(
        payments=len(stripe.sales) + len(ecwid_side.sales),
        healed=sum(
            len(expected[s][k]) for s in expected for k in ("missing", "wrong_amount", "extra")
        ),
    )

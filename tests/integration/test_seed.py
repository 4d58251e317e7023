"""A seeded past in the local fakes: the bridge's own readers and rules decide every seeded
sale as the manifest says, and the lists a reconciliation reads return exactly the seeded
objects of a window, paged at 100 both ways, in the fakes and through their admin APIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge.ecwid.client import EcwidClient
from partnero_bridge.ecwid.mapping import EcwidRules, decide
from partnero_bridge.stripe.client import StripeClient
from partnero_bridge.stripe.payment import PaymentRules, decide_payment
from partnero_bridge.stripe.reader import PaymentObject, PaymentRef, StripeReader
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import (
    SeededSale,
    SeedManifest,
    main,
    plan_ecwid,
    plan_stripe,
    seed_manual_transaction,
)
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi

pytestmark = pytest.mark.integration

KEY = "rk_test_seededHistory"
STORE, TOKEN = 1003, "secret_seededStore"
DAY = 86400
END = 1767225600  # 2026-01-01 00:00:00 UTC: the fakes' "now"
START = END - 60 * DAY
COUNT = 250


@pytest.fixture(scope="module")
def stripe_plan() -> Any:
    return plan_stripe(COUNT, start=START, end=END, seed=7)


@pytest.fixture(scope="module")
def ecwid_plan() -> Any:
    return plan_ecwid(COUNT, store_id=STORE, start=START, end=END, seed=7)


@pytest.fixture(scope="module")
def stripe_api(stripe_plan: Any) -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=[KEY], clock=lambda: END) as fake:
        stripe_plan.apply(fake)
        yield fake


@pytest.fixture(scope="module")
def ecwid(ecwid_plan: Any) -> Iterator[FakeEcwid]:
    with FakeEcwid({STORE: TOKEN}, clock=lambda: END) as fake:
        ecwid_plan.apply(fake)
        yield fake


@pytest.fixture(scope="module")
def stripe_http(stripe_api: FakeStripeApi) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}", "Stripe-Version": PINNED_VERSION}
    with httpx.Client(base_url=stripe_api.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def ecwid_http(ecwid: FakeEcwid) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{ecwid.url}/{STORE}", headers=headers, timeout=10) as client:
        yield client


def newest_first(sales: list[SeededSale]) -> list[SeededSale]:
    """Stripe's order: newest ``created`` first, the later seeded first among equals."""
    numbered = {sale.transaction_key: number for number, sale in enumerate(sales)}
    return sorted(sales, key=lambda s: (s.created, numbered[s.transaction_key]), reverse=True)


def intent_of(sale: SeededSale) -> str:
    return next(i for i in sale.stripe_ids if i.startswith("pi_"))


def walk(
    client: httpx.Client, path: str, params: dict[str, Any], backwards_from: str | None = None
) -> tuple[list[str], list[int]]:
    """Every id of a Stripe list, page by page (ids newest first, and the page sizes)."""
    ids: list[str] = []
    sizes: list[int] = []
    cursor = backwards_from
    while True:
        query = dict(params)
        if backwards_from is not None:
            query["ending_before"] = cursor
        elif cursor is not None:
            query["starting_after"] = cursor
        answer = client.get(path, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found = [item["id"] for item in page["data"]]
        sizes.append(len(found))
        if backwards_from is not None:
            ids = found + ids
            cursor = found[0] if found else cursor
        else:
            ids += found
            cursor = found[-1] if found else cursor
        if not page["has_more"]:
            return ids, sizes


# ---- the plan ---------------------------------------------------------------------------------


def test_a_seed_makes_the_same_past_and_another_seed_another() -> None:
    first = plan_stripe(40, start=START, end=END, seed=3)
    again = plan_stripe(40, start=START, end=END, seed=3)
    other = plan_stripe(40, start=START, end=END, seed=4)
    assert first.objects == again.objects
    assert first.events == again.events
    assert first.manifest == again.manifest
    assert [s.created for s in first.manifest.sales] != [s.created for s in other.manifest.sales]
    orders = plan_ecwid(40, store_id=STORE, start=START, end=END, seed=3)
    assert orders.orders == plan_ecwid(40, store_id=STORE, start=START, end=END, seed=3).orders
    with pytest.raises(ValueError, match="end"):
        plan_stripe(1, start=END, end=START)
    with pytest.raises(ValueError, match="two-decimal"):
        plan_ecwid(1, store_id=STORE, start=START, end=END, currency="JPY")


def test_the_seeded_past_has_every_kind_of_sale(stripe_plan: Any, ecwid_plan: Any) -> None:
    stripe_sales = stripe_plan.manifest.sales
    assert {s.kind for s in stripe_sales} == {"payment_intent", "checkout", "invoice"}
    assert {s.outcome for s in stripe_sales} == {
        "paid",
        "partially_refunded",
        "refunded",
        "refund_failed",
        "disputed",
        "dispute_won",
        "inquiry",
    }
    assert {s.currency for s in stripe_sales} == {"USD", "EUR"}
    assert 0 < sum(s.referred for s in stripe_sales) < len(stripe_sales)
    assert {s.outcome for s in ecwid_plan.manifest.sales} == {
        "PAID",
        "PARTIALLY_REFUNDED",
        "REFUNDED",
        "CANCELLED",
        "AWAITING_PAYMENT",
        "DELETED",
    }
    for sale in [*stripe_sales, *ecwid_plan.manifest.sales]:
        assert START <= sale.created < END
        assert sale.touched >= sale.created
    totals = (stripe_plan.manifest + ecwid_plan.manifest).expected_totals()
    assert set(totals) == {"EUR", "USD"}
    assert totals["USD"] == sum(
        s.expected
        for s in [*stripe_sales, *ecwid_plan.manifest.sales]
        if s.currency == "USD" and s.expected is not None
    )


# ---- what the bridge makes of it --------------------------------------------------------------


def test_the_bridge_decides_every_seeded_stripe_payment_as_the_manifest_says(
    stripe_api: FakeStripeApi, stripe_plan: Any
) -> None:
    client = StripeClient(
        "http://stripe.test",
        lambda: KEY,
        5.0,
        transport=httpx.WSGITransport(app=stripe_api.wsgi_app),
    )
    reader = StripeReader(client)
    manifest: SeedManifest = stripe_plan.manifest
    try:
        for sale in manifest.sales:
            object_type: PaymentObject = "invoice" if sale.kind == "invoice" else "payment_intent"
            target = decide_payment(
                reader.payment_state(PaymentRef(object_type, sale.object_id)), PaymentRules()
            )
            assert target.transaction_key == sale.transaction_key
            assert (target.amount, target.currency) == (sale.amount, sale.currency), sale
            assert target.reason == sale.reason, sale
            assert (target.partner_key, target.customer_key) == (
                sale.partner_key,
                sale.customer_key,
            )
            assert target.email == sale.email
            assert target.created_at == sale.created
        # every event Stripe sent names its own payment
        owner = {oid: sale.transaction_key for sale in manifest.sales for oid in sale.stripe_ids}
        for event in stripe_plan.events:
            found = reader.payment_of(event)
            assert isinstance(found, PaymentRef), event["type"]
            assert found.transaction_key == owner[event["data"]["object"]["id"]]
    finally:
        client.close()


def test_the_bridge_decides_every_seeded_ecwid_order_as_the_manifest_says(
    ecwid: FakeEcwid, ecwid_plan: Any
) -> None:
    client = EcwidClient(ecwid.url, 5.0)
    try:
        currency = client.currency(STORE, TOKEN)
        assert currency == "USD"
        for sale in ecwid_plan.manifest.sales:
            order = client.order(STORE, sale.object_id, TOKEN)
            if sale.outcome == "DELETED":
                assert order is None
                continue
            assert order is not None
            target = decide(order, STORE, currency, EcwidRules())
            assert target.transaction_key == sale.transaction_key
            assert (target.amount, target.reason) == (sale.amount, sale.reason), sale
            assert (target.partner_key, target.customer_key) == (
                sale.partner_key,
                sale.customer_key,
            )
            assert target.created_at == sale.created
    finally:
        client._http.close()


# ---- what a reconciliation lists --------------------------------------------------------------


def test_250_payment_intents_page_at_100_both_ways(
    stripe_http: httpx.Client, stripe_plan: Any
) -> None:
    expected = [intent_of(s) for s in newest_first(list(stripe_plan.manifest.sales))]
    forward, sizes = walk(stripe_http, "/v1/payment_intents", {"limit": 100})
    assert (forward, sizes) == (expected, [100, 100, 50])
    # from the oldest, back towards the newest, 100 at a time
    backward, back_sizes = walk(
        stripe_http, "/v1/payment_intents", {"limit": 100}, backwards_from=expected[-1]
    )
    assert (backward, back_sizes) == (expected[:-1], [100, 100, 49])


def test_windows_return_exactly_the_objects_created_in_them(
    stripe_http: httpx.Client, stripe_plan: Any
) -> None:
    sales = list(stripe_plan.manifest.sales)
    # window edges on sales' own creation times: gte keeps the first, lt leaves the last out
    since, until = sales[60].created, sales[190].created
    window = {"limit": 100, "created[gte]": since, "created[lt]": until}
    in_window = [s for s in newest_first(sales) if since <= s.created < until]
    assert len(in_window) >= 120

    intents, _ = walk(stripe_http, "/v1/payment_intents", window)
    assert intents == [intent_of(s) for s in in_window]
    invoices, _ = walk(stripe_http, "/v1/invoices", window)
    assert invoices == [s.object_id for s in in_window if s.kind == "invoice"]
    charges, _ = walk(stripe_http, "/v1/charges", {**window, "expand[]": "data.customer"})
    assert len(charges) == len(in_window)

    def created_in(kind: str) -> set[str]:
        return {
            o["id"]
            for o in stripe_plan.objects
            if o["object"] == kind and since <= o["created"] < until
        }

    # a session opens half a minute before its payment: its own created time decides
    sessions, _ = walk(stripe_http, "/v1/checkout/sessions", window)
    assert set(sessions) == created_in("checkout.session")
    refunds, _ = walk(stripe_http, "/v1/refunds", window)
    assert set(refunds) == created_in("refund")
    disputes, _ = walk(stripe_http, "/v1/disputes", window)
    assert set(disputes) == created_in("dispute")
    assert refunds
    assert disputes
    # gt leaves the first edge out
    after = walk(stripe_http, "/v1/payment_intents", {**window, "created[gt]": since})[0]
    assert after == [intent_of(s) for s in in_window if s.created > since]
    expanded = stripe_http.get(
        "/v1/payment_intents", params={"limit": 3, "expand[]": "data.customer"}
    ).json()["data"]
    assert all(p["customer"]["object"] == "customer" for p in expanded)


def test_events_of_the_last_30_days_are_listed(stripe_http: httpx.Client, stripe_plan: Any) -> None:
    recent = [e for e in stripe_plan.events if e["created"] >= END - 30 * DAY]
    assert 0 < len(recent) < len(stripe_plan.events)
    ids, sizes = walk(stripe_http, "/v1/events", {"limit": 100})
    assert sorted(ids) == sorted(e["id"] for e in recent)
    assert all(size == 100 for size in sizes[:-1])
    refunds = walk(stripe_http, "/v1/events", {"limit": 100, "types[]": ["charge.refunded"]})[0]
    assert sorted(refunds) == sorted(e["id"] for e in recent if e["type"] == "charge.refunded")
    disputes = walk(stripe_http, "/v1/events", {"limit": 100, "type": "charge.dispute.*"})[0]
    assert sorted(disputes) == sorted(
        e["id"] for e in recent if e["type"].startswith("charge.dispute.")
    )


def test_ecwid_windows_by_update_date_and_deletions(
    ecwid_http: httpx.Client, ecwid_plan: Any
) -> None:
    sales = ecwid_plan.manifest.sales
    listed = [s for s in sales if s.outcome != "DELETED"]
    since = sorted(s.touched for s in listed)[40]
    until = END - 5 * DAY  # the run's fixed upper bound
    expected = [s.object_id for s in listed if since <= s.touched <= until]
    found: list[str] = []
    offset = 0
    while True:
        page = ecwid_http.get(
            "/orders",
            params={"updatedFrom": since, "updatedTo": until, "offset": offset, "limit": 100},
        ).json()
        assert page["total"] == len(expected)
        found += [order["id"] for order in page["items"]]
        offset += page["count"]
        if offset >= page["total"]:
            break
    assert sorted(found) == sorted(expected)
    assert len(expected) > 100

    created = ecwid_http.get(
        "/orders", params={"createdFrom": "2025-12-01", "createdTo": "2025-12-10 23:59:59"}
    ).json()
    december = [s for s in listed if 1764547200 <= s.created <= 1764547200 + 10 * DAY - 1]
    assert created["total"] == len(december)

    deletions = ecwid_plan.deletions
    low, high = deletions[3][1], deletions[-4][1]
    window = ecwid_http.get("/orders/deleted", params={"from_date": low, "to_date": high}).json()
    assert [item["orderId"] for item in window["items"]] == [
        order_id for order_id, when in deletions if low <= when <= high
    ]
    every = ecwid_http.get("/orders/deleted").json()
    assert every["total"] == len(deletions) == sum(s.outcome == "DELETED" for s in sales)


# ---- seeding a running stack over its admin interfaces ----------------------------------------


def test_the_module_seeds_running_fakes_and_writes_the_manifest(tmp_path: Path) -> None:
    manifest_file = tmp_path / "manifest.json"
    with (
        FakeStripeApi(api_keys=[KEY]) as stripe_api,
        FakeEcwid({STORE: TOKEN}) as ecwid,
        httpx.Client(timeout=10) as client,
    ):
        code = main(
            [
                "--count",
                "30",
                "--seed",
                "5",
                "--days",
                "20",
                "--stripe-admin",
                stripe_api.admin_url,
                "--ecwid-admin",
                f"{ecwid.root_url}/_ecwid",
                "--store",
                str(STORE),
                "--manifest",
                str(manifest_file),
            ]
        )
        assert code == 0
        written = json.loads(manifest_file.read_text(encoding="utf-8"))
        stripe_sales = [s for s in written["sales"] if s["source"] == "stripe"]
        ecwid_sales = [s for s in written["sales"] if s["source"] == "ecwid"]
        assert len(stripe_sales) == len(ecwid_sales) == 30
        headers = {"Authorization": f"Bearer {KEY}"}
        intents = client.get(
            f"{stripe_api.url}/v1/payment_intents", params={"limit": 100}, headers=headers
        ).json()["data"]
        assert len(intents) == 30
        events = client.get(f"{stripe_api.url}/v1/events", params={"limit": 1}, headers=headers)
        assert events.json()["has_more"] is True
        answer = client.get(
            f"{ecwid.url}/{STORE}/orders", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        orders = json.loads(answer.text, parse_float=Decimal)
        assert orders["total"] == sum(s["outcome"] != "DELETED" for s in ecwid_sales)
        # amounts travel exactly, cents and all, as the manifest has them
        paid = {s["object_id"]: s["paid"] for s in ecwid_sales}
        assert all(str(order["total"]) == paid[order["id"]] for order in orders["items"])
        assert set(written["expected_totals"]) <= {"USD", "EUR"}
        with pytest.raises(SystemExit):
            main(["--count", "1"])


def test_a_manual_transaction_outside_the_bridges_namespace() -> None:
    with PartneroSandbox(api_key="sandbox-key", partners=["partner-alpha"]) as sandbox:
        key = seed_manual_transaction(
            sandbox.url, "sandbox-key", partner_key="partner-alpha", created_at=START
        )
        headers = {"Authorization": "Bearer sandbox-key"}
        answer = httpx.get(f"{sandbox.url}/transactions/{key}", headers=headers)
        held = json.loads(answer.text, parse_float=Decimal)["data"]
        assert (held["key"], held["amount"], held["partner"]) == (
            "manual_adjustment_1",
            Decimal("42.00"),
            {"key": "partner-alpha"},
        )
        assert held["created_at"].startswith("2025-11-02")
        listed = httpx.get(f"{sandbox.url}/transactions", headers=headers).json()
        assert [t["key"] for t in listed["data"]] == [key]
        with pytest.raises(ValueError, match="namespace"):
            seed_manual_transaction(
                sandbox.url, "sandbox-key", partner_key="partner-alpha", key="stripe_pi_1"
            )
        with pytest.raises(httpx.HTTPStatusError):
            seed_manual_transaction(
                sandbox.url,
                "sandbox-key",
                partner_key="nobody",
                key="m2",
                customer_key="new.customer@example.com",
            )

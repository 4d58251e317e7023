"""Nothing lost, nothing doubled: faults of a fake Partnero over real HTTP, a duplicate
storm and replays, all through the running local stack. Stripe payments are used because
Partnero itself would accept the same transaction twice: only the bridge prevents it. Each
payment's objects (its event and its sample's state) are put into the session's fake Stripe
API before its event is posted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import STRIPE_SECRET
from tests.e2e.test_stripe_local_stack import Sample, provide, renamed
from tests.support.local_stack import RunningStack, wait_for
from tests.support.stripe import signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYMENTS = 4


def post(stack: RunningStack, sample: Sample) -> int:
    event, _state = sample
    raw, headers = signed(event, STRIPE_SECRET)
    return stack.http.post("/webhooks/stripe", content=raw, headers=headers).status_code


def live_counts(partnero: PartneroSandbox) -> Counter[str]:
    return Counter(t["key"] for t in partnero.transactions() if not t.get("deleted"))


def dead_letters(stack: RunningStack) -> list[dict[str, Any]]:
    listed = stack.cli("dlq", "list", "--source", "stripe", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return rows


FAULTS = {
    "http 500": Fault(status=500, count=-1),
    "429 with Retry-After": Fault(status=429, retry_after="1", count=-1),
    "30 s hang": Fault(delay_seconds=30, count=-1),
    "connection reset": Fault(reset=True, count=-1),
    "malformed JSON answer": Fault(malformed=True, count=-1),
    "answer lost after Partnero accepted": Fault(status=502, after_success=True, count=-1),
    "two failures then healthy": Fault(status=503, count=2),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_then_replay_counts_every_payment_exactly_once(
    stack: RunningStack,
    partnero: PartneroSandbox,
    stripe_api: FakeStripeApi,
    fault: str,
    figures: Callable[..., None],
) -> None:
    tag = "".join(c for c in fault.title() if c.isalnum())[:12]
    keys = [f"stripe_pi_ONEOFFGracePartnero{tag}{n}" for n in range(PAYMENTS)]
    partnero.inject_fault(FAULTS[fault])
    for n in range(PAYMENTS):
        sample = renamed("checkout.session.completed.payment", f"{tag}{n}")
        provide(stripe_api, sample)
        assert post(stack, sample) == 200
    stack.wait_until_drained("stripe-event", timeout=90)

    live = live_counts(partnero)
    ours = [r for r in dead_letters(stack) if tag in r["delivery_id"]]
    calls_during_fault = len(partnero.requests())
    assert all(live[k] <= 1 for k in keys), live
    dead = {r["delivery_id"] for r in ours}
    processed = [k for k in keys if live[k] == 1]
    # Every payment is either counted or parked (a lost answer may be both: it is safe).
    assert len(processed) + len(dead) >= PAYMENTS
    if fault != "answer lost after Partnero accepted":
        assert len(processed) + len(dead) == PAYMENTS

    partnero.clear_faults()
    replay = stack.cli("dlq", "replay", "--source", "stripe")
    assert replay.returncode == 0, replay.stderr
    stack.wait_until_drained("stripe-event", timeout=60)
    live = live_counts(partnero)
    assert [live[k] for k in keys] == [1] * PAYMENTS
    assert not [r for r in dead_letters(stack) if tag in r["delivery_id"]]
    figures(
        events_sent=PAYMENTS,
        processed_during_fault=len(processed),
        dead_lettered=len(dead),
        replayed=len(dead),
        partnero_calls=f"{calls_during_fault} during, {len(partnero.requests())} in all",
        transactions_per_payment=1,
    )


def test_duplicate_storm_is_one_partnero_call(
    stack: RunningStack,
    partnero: PartneroSandbox,
    stripe_api: FakeStripeApi,
    figures: Callable[..., None],
) -> None:
    sample = renamed("checkout.session.completed.payment", "Storm")
    provide(stripe_api, sample)
    statuses = [post(stack, sample) for _ in range(25)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses += list(pool.map(lambda _n: post(stack, sample), range(25)))
    assert statuses == [200] * 50
    stack.wait_until_drained("stripe-event", timeout=60)
    wait_for(lambda: live_counts(partnero), 10, "the transaction")
    posts = [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/transactions")]
    assert len(posts) == 1
    assert live_counts(partnero) == Counter({"stripe_pi_ONEOFFGracePartneroStorm": 1})
    figures(deliveries=50, concurrent=25, partnero_calls=len(partnero.requests()))

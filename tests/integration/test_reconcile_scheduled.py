"""The nightly reconciliation through the stack's own functions, in process.

Stripe holds a seeded day of payments no webhook brought. With ``ReconcileHeal=true`` the
scheduled function plans the chunks, the worker reconciles them and sends the drift back
to the Stripe work queue, whose process function makes the transactions as a webhook
would; the next night finds no drift. Report-only (the default), nothing is sent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import plan_stripe
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(90)]

STRIPE_KEY = "rk_test_scheduled_reconcile"
HOUR = 3600


def bridge_env(sandbox: PartneroSandbox, stripe_api: FakeStripeApi, heal: bool) -> dict[str, str]:
    return {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRETS": "whsec_scheduled_reconcile",
        "STRIPE_LIVEMODE": "false",
        "ECWID_STORE_IDS": "",  # Stripe only
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_SIGNUP_WAIT_SECONDS": "0",
        "RECONCILE_HEAL": "true" if heal else "false",
        "RECONCILE_API_SHARE": "0",
    }


@pytest.fixture
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


def seed(stripe_api: FakeStripeApi) -> list[Any]:
    end = int(time.time()) - 60
    plan = plan_stripe(10, start=end - 20 * HOUR, end=end, seed=23, partners=("demo-partner",))
    stripe_api.put_objects(plan.objects, api_version=PINNED_VERSION)
    stripe_api.add_events(plan.events)
    return [s for s in plan.manifest.sales if s.referred and s.amount]


def nightly(bridge: InProcessBridge, capsys: pytest.CaptureFixture[str]) -> Counter[str]:
    """Run the schedule's function and drain its chunks; DriftCount summed per source."""
    capsys.readouterr()
    planned = bridge.invoke("ReconcileScheduleFunction", {"reconcile": "scheduled"})
    assert planned.error is None, planned.error
    assert planned.payload["scopes"] == ["stripe"]
    bridge.drain("ReconcileQueue", timeout=40)
    drift: Counter[str] = Counter()
    for line in capsys.readouterr().out.splitlines():
        if '"DriftCount"' in line:
            blob = json.loads(line)
            value = blob["DriftCount"]
            drift[blob["source"]] += int(value[0] if isinstance(value, list) else value)
    return drift


def live_list(sandbox: PartneroSandbox) -> list[str]:
    return [str(t["key"]) for t in sandbox.transactions() if not t.get("deleted")]


def live(sandbox: PartneroSandbox) -> dict[str, Decimal]:
    return {
        str(t["key"]): Decimal(str(t["amount"]))
        for t in sandbox.transactions()
        if not t.get("deleted")
    }


def test_a_healing_night_makes_the_missing_transactions_and_the_next_finds_none(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PartneroSandbox,
    stripe_api: FakeStripeApi,
    capsys: pytest.CaptureFixture[str],
    figures: Any,
) -> None:
    missing = seed(stripe_api)
    with in_process_bridge(monkeypatch, bridge_env(sandbox, stripe_api, heal=True)) as bridge:
        first = nightly(bridge, capsys)
        assert first == Counter({"stripe": len(missing)})
        # Healed through the normal path: re-checks on the Stripe work queue (a payment two
        # chunks list is re-checked by both; the ledger makes one transaction of them).
        assert bridge.queue_depth("StripeEventQueue") >= len(missing)
        bridge.drain("stripe", timeout=40)
        assert live(sandbox) == {s.transaction_key: s.amount for s in missing}
        assert len(live_list(sandbox)) == len(missing)

        second = nightly(bridge, capsys)
        assert second == Counter()  # DriftCount 0: every chunk published, none drifted
        assert bridge.queue_depth("StripeEventQueue") == 0
        assert live(sandbox) == {s.transaction_key: s.amount for s in missing}
    figures(payments_healed=len(missing), drift_after=sum(second.values()))


def test_a_reporting_night_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PartneroSandbox,
    stripe_api: FakeStripeApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = seed(stripe_api)
    with in_process_bridge(monkeypatch, bridge_env(sandbox, stripe_api, heal=False)) as bridge:
        assert nightly(bridge, capsys) == Counter({"stripe": len(missing)})
        assert bridge.queue_depth("StripeEventQueue") == 0
    assert live(sandbox) == {}

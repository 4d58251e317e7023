"""The nightly reconciliation in the local stack, run on demand.

Stripe holds a seeded day of payments the bridge never heard of (no webhook reached it).
``POST /_local/schedules`` runs the schedule's function as EventBridge Scheduler would: it
plans chunks onto the reconcile queue, the worker reconciles them, and the stack's output
carries the drift metrics (EMF) and one log line per difference, report-only: nothing
reaches Partnero.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.seed import plan_stripe
from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from tests.support.local_stack import RunningStack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(90)]

HOUR = 3600
WORKER = "[ReconcileWorkerFunction] "


def worker_lines(stack: RunningStack, since: int) -> list[dict[str, Any]]:
    """The reconcile worker's JSON lines (logs and EMF) printed after line ``since``."""
    found = []
    for line in stack.lines[since:]:
        if line.startswith(WORKER):
            try:
                found.append(json.loads(line.removeprefix(WORKER)))
            except ValueError:
                continue
    return found


def value(emitted: Any) -> Decimal:
    return Decimal(str(emitted[0] if isinstance(emitted, list) else emitted))


def test_the_scheduled_reconciliation_runs_on_demand_and_publishes_the_drift(
    stack: RunningStack,
    stripe_api: FakeStripeApi,
    partnero: PartneroSandbox,
    figures: Any,
) -> None:
    end = int(time.time()) - 60
    # Inside the last day, so within the schedule's default ReconcileDays.
    plan = plan_stripe(12, start=end - 20 * HOUR, end=end, seed=41, partners=("demo-partner",))
    stripe_api.put_objects(plan.objects, api_version=PINNED_VERSION)
    stripe_api.add_events(plan.events)
    sales = plan.manifest.sales
    missing = [s for s in sales if s.referred and s.amount]
    not_referred = [s for s in sales if not s.referred and s.amount is not None]
    assert missing, "the seed should hold referred payments"
    mark = len(stack.lines)
    started = time.monotonic()

    schedules = stack.http.get("/_local/schedules").json()["schedules"]
    assert schedules == {
        "ReconcileScheduleRule": {
            "function": "ReconcileScheduleFunction",
            "expression": "cron(30 3 * * ? *)",
        }
    }
    assert stack.http.post("/_local/schedules", params={"name": "Nope"}).status_code == 404
    answer = stack.http.post("/_local/schedules", params={"name": "ReconcileScheduleRule"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    # 3 days cut at UTC midnights: 4 slices, for Stripe and the stack's one Ecwid store.
    assert result["scopes"] == ["ecwid:1003", "stripe"]
    assert result["chunks"] == 8

    def stripe_chunks_done() -> list[dict[str, Any]]:
        done = [
            line
            for line in worker_lines(stack, mark)
            if line.get("message") == "reconcile chunk done"
        ]
        return done if len(done) == result["chunks"] else []

    try:
        done = wait_for(stripe_chunks_done, 40, "every chunk reconciled")
    except AssertionError:
        raise AssertionError("\n".join(stack.lines[mark:])[-6000:]) from None
    lines = worker_lines(stack, mark)

    # DriftCount: the actionable differences, per source, summed over the chunks.
    drift: Counter[str] = Counter()
    amounts: dict[str, Decimal] = {}
    for line in lines:
        metric = line.get("_aws", {}).get("CloudWatchMetrics", [{}])[0]
        names = {m["Name"] for m in metric.get("Metrics", [])}
        if "DriftCount" in names:
            # CloudWatch names a metric by its set of dimensions: their order is not part of it.
            assert [sorted(d) for d in metric["Dimensions"]] == [["service", "source"]]
            drift[line["source"]] += int(value(line["DriftCount"]))
        if "DriftAmount" in names and line["source"] == "stripe":
            assert [sorted(d) for d in metric["Dimensions"]] == [["currency", "service", "source"]]
            amounts[line["currency"]] = amounts.get(line["currency"], Decimal(0)) + value(
                line["DriftAmount"]
            )
    assert drift["stripe"] == len(missing)
    due: dict[str, Decimal] = {}
    for sale in missing:
        assert sale.amount is not None
        due[sale.currency.upper()] = due.get(sale.currency.upper(), Decimal(0)) + sale.amount
    assert {c.upper(): a for c, a in amounts.items()} == due

    # One log line per difference, naming the payment (never a customer's address).
    differences = [
        line
        for line in lines
        if line.get("message") == "reconcile difference" and line.get("scope") == "stripe"
    ]
    assert sorted(d["transaction_key"] for d in differences if d["kind"] == "missing") == sorted(
        s.transaction_key for s in missing
    )
    assert Counter(d["kind"] for d in differences) == Counter(
        {"missing": len(missing), **({"not_referred": len(not_referred)} if not_referred else {})}
    )
    for sale in sales:
        if sale.email:
            assert sale.email not in stack.output()
    # Report-only by default: nothing was sent to Partnero.
    assert partnero.transactions() == []
    figures(
        chunks=len(done),
        payments=len(sales),
        drift=len(missing),
        seconds=round(time.monotonic() - started, 1),
    )

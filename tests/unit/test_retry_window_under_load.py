"""Records handed back untried must not lose their retry window under load.

A process function hands back, untried, every record it may not have time for; each hand-
back is one more SQS receive. The receive count is also the backstop (``MaxReceives``: the
bridge dead-letters at it, SQS redrive moves a message past it). So when a hanging Partnero
makes most records of each batch go back untried, the receive count may reach the backstop
long before the window's end: the delivery is dead-lettered early (by SQS, without a
reason) although nothing about it is permanent.

This simulates the deployed defaults from template.yaml (batch size, function timeout,
processing concurrency, MaxReceives) with the bridge's own retry decision and time budget:
deliveries of one source arriving steadily for an hour, and Partnero hanging (every call
waits out the client's read timeout) for the whole window.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge.envelope import Source
from partnero_bridge.processing import (
    UNATTEMPTED_VISIBILITY_SECONDS,
    RetryPolicy,
    decide_retry,
    worst_case_record_seconds,
)
from partnero_bridge_cli.local.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
QUEUES = {Source.ECWID: "EcwidOrderQueue", Source.STRIPE: "StripeEventQueue"}


@dataclass(frozen=True)
class Deployed:
    policy: RetryPolicy
    batch_size: int
    timeout: float
    concurrency: int


def deployed(source: Source) -> Deployed:
    template: dict[str, Any] = load_template(ROOT / "template.yaml")
    parameters = template["Parameters"]

    def value(item: Any) -> int:
        if isinstance(item, dict) and "Ref" in item:
            return int(parameters[item["Ref"]]["Default"])
        return int(item)

    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        for event in properties.get("Events", {}).values():
            sqs = event["Properties"]
            if event["Type"] != "SQS" or sqs["Queue"]["Fn::GetAtt"][0] != QUEUES[source]:
                continue
            timeout = properties.get("Timeout", template["Globals"]["Function"].get("Timeout"))
            return Deployed(
                policy=RetryPolicy(
                    window_seconds=value(parameters["RetryWindowSeconds"]["Default"]),
                    base_seconds=value(parameters["RetryBaseSeconds"]["Default"]),
                    max_seconds=value(parameters["RetryMaxSeconds"]["Default"]),
                    max_receives=value(parameters["MaxReceives"]["Default"]),
                ),
                batch_size=value(sqs.get("BatchSize", 10)),
                timeout=float(value(timeout)),
                concurrency=value(sqs["ScalingConfig"]["MaximumConcurrency"]),
            )
    raise AssertionError(f"no process function for {source}")


@dataclass
class Result:
    attempts: int = 0
    handed_back: int = 0
    ended_by_window: int = 0
    ended_early: int = 0  # by the bridge's receive backstop or by SQS redrive
    first_early_hours: float | None = None


def simulate(source: Source, deliveries: int, arriving_over: float, seed: int = 1) -> Result:
    """Partnero hangs for the whole window: every attempt fails after one Partnero call
    waits out its read timeout. Workers take up to a batch of visible messages at once."""
    setup = deployed(source)
    settings = BridgeSettings.from_environ({})
    budget = worst_case_record_seconds(settings, source)
    attempt_seconds = settings.partnero_timeout_seconds
    rng = random.Random(seed)
    born = [rng.uniform(0, arriving_over) for _ in range(deliveries)]
    receives = [0] * deliveries
    visible_at: list[float | None] = list(born)
    queue = [(t, i) for i, t in enumerate(born)]
    heapq.heapify(queue)
    workers = [(0.0, w) for w in range(setup.concurrency)]
    result = Result()
    live = deliveries

    def early(i: int, at: float) -> None:
        result.ended_early += 1
        if result.first_early_hours is None:
            result.first_early_hours = round((at - born[i]) / HOUR, 1)

    while live:
        now, worker = heapq.heappop(workers)
        while queue and visible_at[queue[0][1]] != queue[0][0]:
            heapq.heappop(queue)  # a stale entry
        if not queue:
            break
        if queue[0][0] > now:
            heapq.heappush(workers, (queue[0][0], worker))
            continue
        batch: list[int] = []
        while queue and len(batch) < setup.batch_size and queue[0][0] <= now:
            at, i = heapq.heappop(queue)
            if visible_at[i] == at:
                visible_at[i] = None
                batch.append(i)
        elapsed = 0.0
        for position, i in enumerate(batch):
            receives[i] += 1
            if receives[i] > setup.policy.max_receives:  # SQS redrive, at receive
                live -= 1
                early(i, now)
                continue
            if position and setup.timeout - elapsed < budget:
                result.handed_back += 1
                visible_at[i] = now + elapsed + UNATTEMPTED_VISIBILITY_SECONDS
                heapq.heappush(queue, (visible_at[i], i))
                continue
            elapsed += attempt_seconds
            result.attempts += 1
            decision = decide_retry(setup.policy, receives[i], now + elapsed - born[i])
            if decision.retry:
                visible_at[i] = now + elapsed + decision.delay_seconds
                heapq.heappush(queue, (visible_at[i], i))
                continue
            live -= 1
            if decision.ended_by == "window":
                result.ended_by_window += 1
            else:
                early(i, now + elapsed)
        heapq.heappush(workers, (now + max(elapsed, 0.05), worker))
    return result


@pytest.mark.parametrize(("source", "per_hour"), [(Source.STRIPE, 3000), (Source.ECWID, 3000)])
def test_no_delivery_reaches_the_receive_backstop_before_its_window(
    source: Source, per_hour: int, figures: Any
) -> None:
    result = simulate(source, per_hour, HOUR)
    figures(
        source=source.value,
        deliveries=per_hour,
        attempts=result.attempts,
        handed_back=result.handed_back,
        dead_lettered_early=result.ended_early,
        first_early_after_h=result.first_early_hours,
    )
    assert result.ended_early == 0, result
    assert result.ended_by_window == per_hour

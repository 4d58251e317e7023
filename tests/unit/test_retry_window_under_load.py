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


class Simulation:
    """SQS and the process function's workers, in simulated seconds: messages become
    visible at their time, a free worker takes up to a batch of the visible ones."""

    def __init__(self, source: Source, deliveries: int, arriving_over: float, seed: int) -> None:
        self.setup = deployed(source)
        settings = BridgeSettings.from_environ({})
        self.budget = worst_case_record_seconds(settings, source)
        self.attempt_seconds = settings.partnero_timeout_seconds
        rng = random.Random(seed)
        self.born = [rng.uniform(0, arriving_over) for _ in range(deliveries)]
        self.receives = [0] * deliveries
        self.visible_at: list[float | None] = list(self.born)
        self.queue = [(t, i) for i, t in enumerate(self.born)]
        heapq.heapify(self.queue)
        self.result = Result()
        self.live = deliveries

    def run(self) -> Result:
        workers = [(0.0, w) for w in range(self.setup.concurrency)]
        while self.live:
            now, worker = heapq.heappop(workers)
            while self.queue and self.visible_at[self.queue[0][1]] != self.queue[0][0]:
                heapq.heappop(self.queue)  # a stale entry
            if not self.queue:
                break
            if self.queue[0][0] > now:
                heapq.heappush(workers, (self.queue[0][0], worker))
                continue
            elapsed = self.invoke(now, self.take_batch(now))
            heapq.heappush(workers, (now + max(elapsed, 0.05), worker))
        return self.result

    def take_batch(self, now: float) -> list[int]:
        batch: list[int] = []
        while self.queue and len(batch) < self.setup.batch_size and self.queue[0][0] <= now:
            at, i = heapq.heappop(self.queue)
            if self.visible_at[i] == at:
                self.visible_at[i] = None
                batch.append(i)
        return batch

    def invoke(self, now: float, batch: list[int]) -> float:
        """One invocation over ``batch``; the seconds it took."""
        elapsed = 0.0
        for position, i in enumerate(batch):
            self.receives[i] += 1
            if self.receives[i] > self.setup.policy.max_receives:  # SQS redrive, at receive
                self.end_early(i, now)
            elif position and self.setup.timeout - elapsed < self.budget:
                self.result.handed_back += 1
                self.hide(i, now + elapsed + UNATTEMPTED_VISIBILITY_SECONDS)
            else:
                elapsed += self.attempt_seconds
                self.attempt(i, now + elapsed)
        return elapsed

    def attempt(self, i: int, failed_at: float) -> None:
        self.result.attempts += 1
        decision = decide_retry(self.setup.policy, self.receives[i], failed_at - self.born[i])
        if decision.retry:
            self.hide(i, failed_at + decision.delay_seconds)
        elif decision.ended_by == "window":
            self.live -= 1
            self.result.ended_by_window += 1
        else:
            self.end_early(i, failed_at)

    def hide(self, i: int, until: float) -> None:
        self.visible_at[i] = until
        heapq.heappush(self.queue, (until, i))

    def end_early(self, i: int, at: float) -> None:
        self.live -= 1
        self.result.ended_early += 1
        if self.result.first_early_hours is None:
            self.result.first_early_hours = round((at - self.born[i]) / HOUR, 1)


def simulate(source: Source, deliveries: int, arriving_over: float, seed: int = 1) -> Result:
    """Partnero hangs for the whole window: every attempt fails after one Partnero call
    waits out its read timeout. Workers take up to a batch of visible messages at once."""
    return Simulation(source, deliveries, arriving_over, seed).run()


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

"""A reconciliation's requests keep to a share of each API's limit and wait out a 429."""

from __future__ import annotations

import httpx
import pytest

from partnero_bridge.reconcile.pacing import (
    PacedTransport,
    Pacer,
    bearer_token,
    ecwid_rate,
    stripe_rate,
)

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def test_shares_of_the_published_limits() -> None:
    assert stripe_rate(livemode=True, share=0.5) == 50.0
    assert stripe_rate(livemode=False, share=0.5) == 12.5
    assert ecwid_rate(0.5) == 5.0  # 600 a minute per token
    assert stripe_rate(True, 0) is None
    assert ecwid_rate(0) is None


def test_the_pacer_spaces_calls_evenly() -> None:
    clock = Clock()
    pacer = Pacer(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.wait()
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]
    unpaced = Pacer(None, clock=clock, sleep=clock.sleep)
    unpaced.wait()
    assert len(clock.slept) == 4


def test_a_429_is_waited_out_as_asked_then_sent_again() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "slow down"}),
            httpx.Response(429, json={"error": "slow down"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    clock = Clock()
    transport = PacedTransport(
        None, inner=httpx.MockTransport(lambda _request: next(answers)), sleep=clock.sleep
    )
    with httpx.Client(transport=transport, base_url="http://api.test") as client:
        answer = client.get("/v1/charges")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    assert transport.calls == 3
    assert transport.rate_limited == 2
    assert clock.slept[0] == 3.0  # Retry-After honoured
    assert 0 < clock.slept[1] <= 3  # then exponential back-off with jitter


def test_the_last_429_goes_to_the_client_when_the_attempts_are_spent() -> None:
    transport = PacedTransport(
        None,
        inner=httpx.MockTransport(lambda _request: httpx.Response(429, text="busy")),
        attempts=3,
        sleep=lambda _seconds: None,
    )
    with httpx.Client(transport=transport, base_url="http://api.test") as client:
        answer = client.get("/v1/charges")
    assert answer.status_code == 429
    assert answer.text == "busy"
    assert transport.calls == 3


def test_ecwid_tokens_are_paced_apart() -> None:
    clock = Clock()
    transport = PacedTransport(
        1.0,
        pacer_key=bearer_token,
        inner=httpx.MockTransport(lambda _request: httpx.Response(200, json={})),
        sleep=clock.sleep,
    )
    with httpx.Client(transport=transport, base_url="http://api.test") as client:
        for token in ("a", "b", "a"):
            client.get("/1003/orders", headers={"Authorization": f"Bearer {token}"})
    # Two tokens: only the second call with token "a" waits for its slot.
    assert len(clock.slept) == 1

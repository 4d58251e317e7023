"""Staying within each API's rate limit while reading a whole window.

A reconciliation reads thousands of objects, so every request it sends goes through a
:class:`PacedTransport` (an httpx transport under the bridge's own API clients):

- requests are spaced to a share of the API's published limit (:func:`stripe_rate`,
  :func:`ecwid_rate`), per Stripe account, per Ecwid store token;
- a 429 is waited out and the request sent again, as the API asks (``Retry-After``,
  honoured), else with exponential back-off and jitter, up to :data:`ATTEMPTS_ON_429`
  tries (tenacity); the last 429 is then handed to the client, which raises it as a
  retryable error;
- every request is counted, so a report can say how many remote calls each payment took.

Published limits: Stripe 100 read requests a second in live mode and 25 in test mode
(docs.stripe.com/rate-limits; some endpoints allow 25 a second whatever the mode); Ecwid
600 requests a minute per token (docs.ecwid.com/api-reference, REST API overview).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from partnero_bridge.partnero import parse_retry_after

STRIPE_READS_PER_SECOND = {True: 100.0, False: 25.0}  # live mode, test mode
ECWID_REQUESTS_PER_MINUTE = 600.0
# The share of each limit a reconciliation takes unless told otherwise: the webhooks being
# processed meanwhile read the same APIs with the same key.
DEFAULT_SHARE = 0.5
ATTEMPTS_ON_429 = 6
# Longest single wait on a 429 (a Retry-After beyond it is cut to it).
MAX_WAIT_SECONDS = 60.0


def stripe_rate(livemode: bool, share: float) -> float | None:
    """Requests a second to Stripe for ``share`` (0-1) of its read limit; None: unpaced."""
    return STRIPE_READS_PER_SECOND[livemode] * share if share > 0 else None


def ecwid_rate(share: float) -> float | None:
    """Requests a second to Ecwid, per token, for ``share`` of its limit; None: unpaced."""
    return ECWID_REQUESTS_PER_MINUTE / 60.0 * share if share > 0 else None


class Pacer:
    """Spaces callers at least ``1 / per_second`` seconds apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it until then,
    so N threads together send at ``per_second``, never in bursts. ``per_second`` None or
    0: no spacing.
    """

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


class PacedTransport(httpx.BaseTransport):
    """An httpx transport that paces, waits out 429s, and counts requests (see module doc).

    ``pacer_key`` names the limit a request counts against (Ecwid: its token); each key
    gets its own :class:`Pacer` at ``per_second``.
    """

    def __init__(
        self,
        per_second: float | None,
        *,
        pacer_key: Callable[[httpx.Request], str] = lambda _request: "",
        inner: httpx.BaseTransport | None = None,
        attempts: int = ATTEMPTS_ON_429,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._per_second = per_second
        self._pacer_key = pacer_key
        self._inner = inner or httpx.HTTPTransport()
        self._attempts = attempts
        self._sleep = sleep
        self._pacers: dict[str, Pacer] = {}
        self._lock = threading.Lock()
        self.calls = 0  # requests sent, retries of a 429 included
        self.rate_limited = 0  # 429 answers received

    def _pacer(self, request: httpx.Request) -> Pacer:
        key = self._pacer_key(request)
        with self._lock:
            if key not in self._pacers:
                self._pacers[key] = Pacer(self._per_second, sleep=self._sleep)
            return self._pacers[key]

    def _send(self, request: httpx.Request) -> httpx.Response:
        self._pacer(request).wait()
        with self._lock:
            self.calls += 1
        response = self._inner.handle_request(request)
        if response.status_code == 429:
            with self._lock:
                self.rate_limited += 1
            response.read()  # the body is kept for the client, the connection freed
            response.close()
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        retrying = Retrying(
            retry=retry_if_result(lambda response: response.status_code == 429),
            wait=_wait_on_429,
            stop=stop_after_attempt(self._attempts),
            # Out of attempts: the last 429 goes to the client (a retryable error there).
            retry_error_callback=_last_answer,
            sleep=self._sleep,
            reraise=True,
        )
        response: httpx.Response = retrying(self._send, request)
        return response

    def close(self) -> None:
        self._inner.close()


_BACKOFF = wait_exponential_jitter(initial=1, max=30, jitter=1)


def _wait_on_429(state: RetryCallState) -> float:
    """The wait before the next attempt: the API's Retry-After, else exponential back-off."""
    outcome = state.outcome
    response = outcome.result() if outcome is not None and not outcome.failed else None
    asked = parse_retry_after(response.headers.get("retry-after")) if response else None
    if asked is not None:
        return min(asked, MAX_WAIT_SECONDS)
    return float(_BACKOFF(state))


def _last_answer(state: RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()


def bearer_token(request: httpx.Request) -> str:
    """A request's ``Authorization`` value: Ecwid limits requests per token."""
    return str(request.headers.get("authorization", ""))

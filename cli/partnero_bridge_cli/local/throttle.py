"""A request-rate limit for the local fakes, so callers can be proven to pace themselves.

Each fake answers a request over its limit the way its real API documents (Stripe: 429
``rate_limit``; Ecwid: 429 with ``Retry-After``); this module only counts. It is a sliding
window: at most ``limit`` requests admitted in any ``window_seconds``, counted per key (a
Stripe account, an Ecwid token). Refused requests are not counted, so a caller that backs
off as told gets through.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SlidingWindowLimit"]


class SlidingWindowLimit:
    """At most ``limit`` admitted requests per key in any ``window_seconds``.

    ``clock`` is monotonic seconds (``time.monotonic`` unless a test gives its own).
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("a rate limit must be a whole number of requests, at least 1")
        if not window_seconds > 0:
            raise ValueError("a rate-limit window must be longer than 0 seconds")
        self.limit = limit
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._admitted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str = "") -> float | None:
        """Count one request for ``key``: None when admitted, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            times = self._admitted.setdefault(key, deque())
            while times and times[0] <= now - self.window_seconds:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return None
            return max(times[0] + self.window_seconds - now, 0.0)

    @staticmethod
    def whole_seconds(wait: float) -> int:
        """A wait as a ``Retry-After`` value: whole seconds, at least 1."""
        return max(1, math.ceil(wait))

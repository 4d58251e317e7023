"""Helpers for tests that send sign-ups: a signed request as a shop's backend sends it, and
an in-memory stand-in for the rate-limit store."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from partnero_bridge.ratelimit import Count, RateLimitUnavailable, window_of
from partnero_bridge.signup import signature


def signed_signup(
    body: Mapping[str, Any], secret: str, headers: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers of a signed ``POST /signup`` (a server caller's)."""
    raw = json.dumps(body).encode()
    return raw, {
        "content-type": "application/json",
        **(headers or {}),
        signature.SIGNATURE_HEADER: signature.sign(secret, raw),
    }


@dataclass
class FakeCounters:
    """The rate-limit store's behaviour without DynamoDB: counts per limit, subject, window."""

    failing: bool = False
    counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    subjects: list[str] = field(default_factory=list)

    def hit(self, limit: str, subject: str, seconds: int, now: float | None = None) -> Count:
        if self.failing:
            raise RateLimitUnavailable("rate-limit store failed: ReadTimeoutError")
        window = window_of(time.time() if now is None else now, seconds)
        self.counts[(limit, subject, window.start)] += 1
        self.subjects.append(subject)
        return Count(self.counts[(limit, subject, window.start)], window)

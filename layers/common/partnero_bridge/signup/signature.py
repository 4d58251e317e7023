"""The shared-secret signature a shop's backend may send to mark a sign-up as trusted.

Header ``X-Partnero-Bridge-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the sign-up secret over ``"<t>.<raw body>"``. The same scheme as
Stripe's, so it is familiar, covers the exact bytes sent, and ages out after 5 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "x-partnero-bridge-signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` (used by tests and the CLI, and by shops as a model)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    header: str,
    body: bytes,
    secret: str,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when the header carries a fresh ``v1`` signature of ``body`` under ``secret``."""
    if not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Compare against every candidate without stopping early, in constant time each.
    return any([hmac.compare_digest(expected, candidate) for candidate in candidates])  # noqa: C419

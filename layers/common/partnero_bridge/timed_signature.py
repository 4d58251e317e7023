"""A timestamped HMAC signature header: ``t=<unix seconds>,v1=<hex>[,v1=...]``.

``v1`` is HMAC-SHA256 with a shared secret over ``"<t>.<raw body>"``. Stripe signs its
webhooks this way, and the sign-up endpoint accepts the same scheme from shops' backends,
so both verify with this one implementation. Any ``v1`` may match any of the secrets
(secrets overlap while one is rolled); other schemes are ignored (Stripe's ``v0`` is a test
scheme, accepting it would be a downgrade); timestamps more than ``tolerance`` seconds old
or ahead are refused.

``verify`` is total: a header of any shape, length or characters is ``False``, never an
exception (it is read before anything else of an unauthenticated request).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

TOLERANCE_SECONDS = 300
# API Gateway caps the request line and all headers at 10,240 bytes together; a genuine
# header (a timestamp and a few 64-hex signatures) is a few hundred. Longer is not read.
MAX_HEADER_CHARS = 8192


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """A header value for ``payload`` (for tests and the CLI's test events)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    header: str | None,
    payload: bytes,
    secrets: Sequence[str],
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    if not header or len(header) > MAX_HEADER_CHARS:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        # ASCII digits of a plausible length only: a 400-digit "timestamp" is not one (and
        # would overflow the float comparison below).
        if scheme == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif scheme == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + payload
    matched = False
    for secret in (s for s in secrets if s):
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        for candidate in signatures:
            # No early exit: every comparison runs, each in constant time. surrogatepass:
            # text that is not valid Unicode still compares (unequal), never raises.
            matched |= hmac.compare_digest(
                expected, candidate.encode("utf-8", errors="surrogatepass")
            )
    return matched

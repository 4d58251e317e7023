"""The shared-secret signature a shop's backend may send to mark a sign-up as trusted.

Header ``X-Partnero-Bridge-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 with the sign-up secret over ``"<t>.<raw body>"``. The same scheme as
Stripe's (one implementation: :mod:`partnero_bridge.timed_signature`), so it is familiar,
covers the exact bytes sent, and ages out after 5 minutes.
"""

from __future__ import annotations

from partnero_bridge import timed_signature
from partnero_bridge.timed_signature import TOLERANCE_SECONDS, sign

SIGNATURE_HEADER = "x-partnero-bridge-signature"

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_SECONDS", "sign", "verify"]


def verify(
    header: str,
    body: bytes,
    secret: str,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when the header carries a fresh ``v1`` signature of ``body`` under ``secret``."""
    return timed_signature.verify(header, body, [secret], now, tolerance)

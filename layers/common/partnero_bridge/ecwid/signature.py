"""Ecwid's webhook signature: base64(HMAC-SHA256(client_secret, "{eventCreated}.{eventId}")).

It covers only those two fields, not the body: storeId, eventType and data are not
authenticated. So the bridge only processes configured stores and never takes money
from the webhook; it fetches the order with the store's own token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "x-ecwid-webhook-signature"


def expected_signature(client_secret: str, event_created: int | str, event_id: str) -> str:
    message = f"{event_created}.{event_id}".encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(header: str | None, client_secret: str, event_created: int | str, event_id: str) -> bool:
    """Fail closed: no header or no secret never verifies; compared in constant time."""
    if not header or not client_secret:
        return False
    expected = expected_signature(client_secret, event_created, event_id)
    return hmac.compare_digest(expected.encode(), header.strip().encode())

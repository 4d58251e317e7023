"""Ecwid's webhook signature: base64(HMAC-SHA256(client_secret, "{eventCreated}.{eventId}")).

It covers only those two fields, not the body: storeId, eventType and data are not
authenticated. So the bridge only processes configured stores and never takes money
from the webhook; it fetches the order with the store's own token. eventCreated being
signed is what bounds replays: ingest refuses webhooks older than a freshness window.

Several client secrets may be configured at once (an app's secret being rotated: the old
and the new one overlap); a signature made with any of them verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "x-ecwid-webhook-signature"
# A signature is 44 base64 characters; a longer header is not compared.
MAX_HEADER_CHARS = 1024


def expected_signature(client_secret: str, event_created: int | str, event_id: str) -> str:
    # surrogatepass: an id from the body that is not valid Unicode signs (to a value no
    # one presents) instead of raising.
    message = f"{event_created}.{event_id}".encode("utf-8", errors="surrogatepass")
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    header: str | None,
    client_secrets: str | Iterable[str],
    event_created: int | str,
    event_id: str,
) -> bool:
    """True when ``header`` is the signature under any of ``client_secrets``.

    Fails closed: no header, or no non-empty secret, never verifies. Each candidate is
    compared in constant time, and every candidate is compared (no early exit), so the
    time taken does not tell which secret matched. Total: a header of any length or
    characters is ``False``, never an exception.
    """
    if not header or len(header) > MAX_HEADER_CHARS:
        return False
    secrets = [client_secrets] if isinstance(client_secrets, str) else list(client_secrets)
    # surrogatepass: text that is not valid Unicode compares (unequal), never raises.
    presented = header.strip().encode("utf-8", errors="surrogatepass")
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = expected_signature(secret, event_created, event_id).encode()
        matched |= hmac.compare_digest(expected, presented)
    return matched

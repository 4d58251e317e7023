"""Stripe events for tests: real-shaped (see events/stripe/) and signed as Stripe signs them."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from partnero_bridge.stripe.signature import SIGNATURE_HEADER, sign

EVENTS = Path(__file__).resolve().parents[2] / "events" / "stripe"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def redelivered(event: dict[str, Any], **object_changes: Any) -> dict[str, Any]:
    """The same event again, or a new event about the same object with some changes."""
    copied = copy.deepcopy(event)
    copied["data"]["object"].update(object_changes)
    return copied


def signed(
    event: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(event, separators=(",", ":")).encode()
    header = sign(secret, raw, int(time.time()) if timestamp is None else timestamp)
    return raw, {SIGNATURE_HEADER: header, "content-type": "application/json"}

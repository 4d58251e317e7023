"""Stripe events for tests: real-shaped (see events/stripe/) and signed as Stripe signs them."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from partnero_bridge.stripe.signature import SIGNATURE_HEADER, sign

EVENTS = Path(__file__).resolve().parents[2] / "events" / "stripe"
# The objects Stripe holds for each sample that its event does not carry (one file per sample).
STATE = EVENTS / "state"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def state(name: str) -> list[dict[str, Any]]:
    """A sample's sidecar (``events/stripe/state/<name>.json``): the objects Stripe would hold
    when it sends the event, besides those the event carries (its payment intent, charge,
    refunds...). Load them with the event: ``fake.load_event(event, objects)``."""
    objects: list[dict[str, Any]] = json.loads((STATE / f"{name}.json").read_text())
    return objects


def load_with_state(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A sample's event and its sidecar objects (what ``partnero-bridge send`` loads)."""
    return load(name), state(name)


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


def held(name: str, object_id: str) -> dict[str, Any]:
    """One object of a sample's sidecar (or the sample event's own object), by id."""
    candidates = [*state(name), load(name)["data"]["object"]]
    for obj in candidates:
        if obj.get("id") == object_id:
            return copy.deepcopy(obj)
    raise KeyError(f"{name} holds no {object_id}")


def event_of(
    name: str, event_id: str, event_type: str, obj: dict[str, Any], **top: Any
) -> dict[str, Any]:
    """An event like the sample ``name`` (its envelope) carrying ``obj``."""
    event = copy.deepcopy(load(name))
    event.update(id=event_id, type=event_type, **top)
    event["data"] = {"object": copy.deepcopy(obj)}
    return event

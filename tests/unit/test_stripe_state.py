"""The sidecars in events/stripe/state/: what Stripe holds for each sample besides its event.

The bridge reads every payment's state from the Stripe API, so a sample is only replayable when
the fake Stripe API also holds the objects its event names but does not carry. Checked here:

* every sample has a sidecar (a JSON list, possibly empty) and every sidecar has a sample;
* every object in it has a string ``id`` and ``object`` type and the sample's ``livemode`` (so
  does every object nested in it; a refund has none on Stripe and takes the mode it is loaded
  with), none twice, none the event already carries;
* every id the event or a state object names in a field the bridge follows (``payment_intent``,
  ``latest_charge``, ``charge``, ``invoice``, ``customer``, ``subscription``) is held: carried by
  the event or in the sidecar;
* the story adds up: a payment intent and its latest charge agree (ids both ways, amount,
  currency), a charge's ``amount_refunded`` is what its held refunds keep (pending or
  succeeded), it is ``disputed`` exactly when a held dispute names it, an invoice payment's
  amount is its invoice's ``amount_paid`` and its payment intent's ``amount_received``;
* ``partnero-bridge send`` loads the sidecar with the event into the local fake Stripe API.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge.stripe.events import HANDLED_EVENTS
from partnero_bridge_cli import send
from tests.support.stripe import EVENTS, STATE, load_with_state, state

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json"))
FOLLOWED = ("payment_intent", "latest_charge", "charge", "invoice", "customer", "subscription")
KEEPS_MONEY = {"pending", "requires_action", "succeeded"}
# Stripe's Refund has no livemode field; the fake gives it the mode of the event it came with.
NO_LIVEMODE = {"refund"}
NOT_INDEXED = {"list", "event", "line_item", "search_result"}
Held = dict[tuple[str, str], dict[str, Any]]


def stripe_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in ``value`` (itself included) with an id and a type, as the fake indexes."""
    if isinstance(value, dict):
        kind = value.get("object")
        if isinstance(value.get("id"), str) and isinstance(kind, str) and kind not in NOT_INDEXED:
            yield value
        for item in value.values():
            yield from stripe_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from stripe_objects(item)


def named_ids(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, id) for every id held in a followed field, expanded or not."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in FOLLOWED:
                if isinstance(item, str):
                    yield where, item
                elif isinstance(item, dict) and isinstance(item.get("id"), str):
                    yield where, item["id"]
            yield from named_ids(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from named_ids(item, f"{path}[{index}]")


def held(name: str) -> Held:
    """What the fake serves after loading the sample: the event's objects win over the state."""
    event, objects = load_with_state(name)
    found: Held = {(o["object"], o["id"]): o for o in objects}
    found.update({(o["object"], o["id"]): o for o in stripe_objects(event["data"]["object"])})
    return found


def of_kind(objects: Held, kind: str) -> list[dict[str, Any]]:
    return [o for (k, _), o in objects.items() if k == kind]


def test_every_sample_has_a_sidecar_and_every_sidecar_a_sample() -> None:
    assert SAMPLES
    assert sorted(p.stem for p in STATE.glob("*.json")) == SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_sidecar_objects_are_stripe_objects_of_the_samples_mode(name: str) -> None:
    event, objects = load_with_state(name)
    assert isinstance(objects, list)
    carried = {(o["object"], o["id"]) for o in stripe_objects(event["data"]["object"])}
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        assert isinstance(obj, dict)
        assert isinstance(obj.get("id"), str), obj
        assert obj["id"], obj
        assert isinstance(obj.get("object"), str), obj
        assert obj["object"], obj
        if obj["object"] in NO_LIVEMODE:
            assert "livemode" not in obj, f"a {obj['object']} has no livemode on Stripe"
        else:
            assert obj.get("livemode") is event["livemode"], (obj["id"], "livemode")
        key = (obj["object"], obj["id"])
        assert key not in seen, f"{key} twice"
        assert key not in carried, f"{key} is carried by the event"
        seen.add(key)
        for nested in stripe_objects(obj):
            if "livemode" in nested:
                assert nested["livemode"] is event["livemode"], (obj["id"], nested["id"])


@pytest.mark.parametrize("name", SAMPLES)
def test_every_id_the_bridge_follows_is_held(name: str) -> None:
    event, objects = load_with_state(name)
    ids = {obj_id for _, obj_id in held(name)}
    named = list(named_ids(event["data"]["object"], "data.object"))
    for obj in objects:
        named += named_ids(obj, f"state[{obj['id']}]")
    missing = sorted({(where, obj_id) for where, obj_id in named if obj_id not in ids})
    assert not missing, f"{name}: Stripe would hold these, the sample does not: {missing}"


@pytest.mark.parametrize("name", SAMPLES)
def test_the_story_adds_up(name: str) -> None:
    objects = held(name)
    by_id = {obj_id: obj for (_, obj_id), obj in objects.items()}
    for intent in of_kind(objects, "payment_intent"):
        charge = by_id.get(intent.get("latest_charge") or "")
        if charge is not None:
            _intent_agrees_with_its_charge(intent, charge)
    for charge in of_kind(objects, "charge"):
        _charge_agrees_with_its_reversals(charge, objects)
    for payment in of_kind(objects, "invoice_payment"):
        invoice = by_id[payment["invoice"]]
        assert payment["currency"] == invoice["currency"]
        if payment["status"] == "paid":
            assert payment["amount_paid"] == invoice["amount_paid"]
            intent = by_id[payment["payment"]["payment_intent"]]
            assert intent["amount_received"] == payment["amount_paid"]
            assert intent["customer"] == invoice["customer"]


def _intent_agrees_with_its_charge(intent: dict[str, Any], charge: dict[str, Any]) -> None:
    assert charge["payment_intent"] == intent["id"]
    assert (charge["amount"], charge["currency"]) == (intent["amount"], intent["currency"])
    assert charge["livemode"] is intent["livemode"]
    if intent["status"] == "succeeded":
        assert intent["amount_received"] == charge["amount_captured"] > 0
        assert intent["amount_capturable"] == 0
        assert charge["status"] == "succeeded"
        assert (charge["paid"], charge["captured"]) == (True, True)
        if charge["amount_captured"] < charge["amount"]:
            # a partial capture: Stripe refunds the uncaptured rest
            assert intent["capture_method"] == "manual"
            uncaptured = charge["amount"] - charge["amount_captured"]
            assert charge["amount_refunded"] >= uncaptured
    elif intent["capture_method"] == "manual" and charge["status"] == "succeeded":
        _authorised_only(intent, charge)
    else:
        assert intent["amount_received"] == 0
        assert charge["paid"] is False


def _authorised_only(intent: dict[str, Any], charge: dict[str, Any]) -> None:
    """Authorised, not (yet) captured: the charge is paid but holds nothing."""
    assert intent["amount_received"] == charge["amount_captured"] == 0
    assert (charge["paid"], charge["captured"]) == (True, False)
    if intent["status"] == "requires_capture":
        assert intent["amount_capturable"] == charge["amount"]
        assert charge["amount_refunded"] == 0
    else:  # canceled or expired: the authorisation released as a refund
        assert intent["status"] == "canceled"
        assert intent["amount_capturable"] == 0
        assert (charge["amount_refunded"], charge["refunded"]) == (charge["amount"], True)


def _charge_agrees_with_its_reversals(charge: dict[str, Any], objects: Held) -> None:
    refunds = [r for r in of_kind(objects, "refund") if r["charge"] == charge["id"]]
    if refunds or charge["amount_refunded"]:
        kept = sum(r["amount"] for r in refunds if r["status"] in KEEPS_MONEY)
        assert charge["amount_refunded"] == kept, charge["id"]
    assert charge["refunded"] is (charge["amount_refunded"] >= charge["amount"] > 0)
    for refund in refunds:
        assert refund["payment_intent"] == charge["payment_intent"]
        assert refund["currency"] == charge["currency"]
    disputes = [d for d in of_kind(objects, "dispute") if d["charge"] == charge["id"]]
    assert charge["disputed"] is bool(disputes), charge["id"]


@pytest.mark.parametrize("event_type", sorted(HANDLED_EVENTS))
def test_every_subscribed_type_has_a_sample_with_a_sidecar(event_type: str) -> None:
    """Each type the bridge subscribes to has a replayable sample, and
    ``partnero-bridge send stripe/<type>`` finds one of that type."""
    names = [name for name in SAMPLES if load_with_state(name)[0]["type"] == event_type]
    assert names, f"no sample in events/stripe for {event_type}"
    sample = send.find_sample(ROOT, f"stripe/{event_type}")
    assert sample.source == "stripe"
    assert sample.body["type"] == event_type
    assert sample.path.stem in names


def test_send_loads_the_sidecar_with_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[tuple[str, bytes]] = []

    def fake_post(url: str, *, content: bytes, **_: Any) -> httpx.Response:
        posted.append((url, content))
        request = httpx.Request("POST", url)
        if url.endswith("/_stripe/events"):
            loaded = json.loads(content)
            count = 1 + len(loaded["stripe_objects"])
            return httpx.Response(200, json={"loaded": count}, request=request)
        return httpx.Response(200, json={"status": "queued"}, request=request)

    monkeypatch.setattr(httpx, "post", fake_post)
    monkeypatch.setenv("BRIDGE_STRIPE_API_ADMIN", "http://127.0.0.1:4999")
    name = "checkout.session.completed.payment"
    out = io.StringIO()
    assert send.send(ROOT, f"stripe/{name}", "http://127.0.0.1:3999", False, False, out) == 0

    (admin_url, admin_body), (bridge_url, bridge_body) = posted
    assert admin_url == "http://127.0.0.1:4999/_stripe/events"
    assert bridge_url == "http://127.0.0.1:3999/webhooks/stripe"
    loaded = json.loads(admin_body)
    assert loaded["event"] == json.loads(bridge_body)  # the event as sent
    assert loaded["stripe_objects"] == state(name)
    assert "the 2 object(s) of its state" in out.getvalue()

"""``partnero-bridge send``: sign a sample event and post it, like ``stripe trigger``.

Samples live in ``events/``: ``signup/*.json`` (request bodies), ``ecwid/webhooks/*.json``
(webhook bodies; the orders they name are in ``ecwid/orders/``) and ``stripe/*.json``
(events). Ecwid and Stripe samples are signed with the configured secrets (the local
stack's demo secrets unless ECWID_CLIENT_SECRET / STRIPE_WEBHOOK_SECRETS are set; the
first of a comma-separated list). An Ecwid sample's ``eventCreated`` is stamped with the
send time before it is signed, so a sample is never refused as stale. When
the target is the local stack, the Ecwid order a webhook names is put into the fake Ecwid
API first, and a Stripe event (as sent) is loaded into the fake Stripe API with the objects
Stripe would hold for it that it does not carry (``stripe/state/<name>.json``, the sample's
sidecar: its payment intent, charge, refunds...), so processing can read them back.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

import httpx

from partnero_bridge.ecwid.signature import SIGNATURE_HEADER as ECWID_HEADER
from partnero_bridge.ecwid.signature import expected_signature
from partnero_bridge.signup import signature as signup_signature
from partnero_bridge.stripe import signature as stripe_signature
from partnero_bridge_cli.local.stack import (
    DEMO_ECWID_CLIENT_SECRET,
    DEMO_SIGNUP_SECRET,
    DEMO_STRIPE_SECRET,
)

Source = Literal["signup", "ecwid", "stripe"]
ROUTES: dict[Source, str] = {
    "signup": "/signup",
    "ecwid": "/webhooks/ecwid",
    "stripe": "/webhooks/stripe",
}
# Short names for the samples a newcomer reaches for first.
ALIASES = {
    "signup": "signup/referred",
    "ecwid/order.created": "ecwid/webhooks/order-created",
    "ecwid/order.updated": "ecwid/webhooks/order-updated",
    "ecwid/order.deleted": "ecwid/webhooks/order-deleted",
    "stripe/invoice.paid": "stripe/invoice.paid.subscription_create",
    "stripe/checkout.session.completed": "stripe/checkout.session.completed.payment",
    "stripe/charge.refunded": "stripe/charge.refunded.partial",
}


@dataclass(frozen=True)
class Sample:
    source: Source
    path: Path
    body: dict[str, Any]


def events_dir(root: Path) -> Path:
    return root / "events"


def available(root: Path) -> list[str]:
    base = events_dir(root)
    names = [
        str(p.relative_to(base).with_suffix(""))
        for p in sorted(base.rglob("*.json"))
        if p.parent.name in ("signup", "webhooks", "stripe")
        and not p.name.startswith(("api-", "sqs-"))
    ]
    return sorted(set(names) | set(ALIASES))


def _source_of(path: Path, body: dict[str, Any]) -> Source:
    if body.get("object") == "event" or "stripe" in path.parts:
        return "stripe"
    if "eventId" in body or "webhooks" in path.parts:
        return "ecwid"
    return "signup"


def find_sample(root: Path, name: str) -> Sample:
    base = events_dir(root)
    name = ALIASES.get(name.removesuffix(".json"), name.removesuffix(".json"))
    candidates = [
        Path(name),
        Path(f"{name}.json"),
        base / f"{name}.json",
        base / "ecwid" / "webhooks" / f"{name.removeprefix('ecwid/')}.json",
    ]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        prefix = [
            p
            for p in base.rglob("*.json")
            if str(p.relative_to(base).with_suffix("")).startswith(name)
        ]
        if len(prefix) != 1:
            raise SystemExit(
                f"no single sample named {name!r}; try one of:\n  " + "\n  ".join(available(root))
            )
        path = prefix[0]
    body = json.loads(path.read_text())
    if not isinstance(body, dict):
        raise SystemExit(f"{path} is not a JSON object")
    return Sample(_source_of(path, body), path, body)


def _secret(variable: str, default: str) -> str:
    value = os.environ.get(variable, "")
    return value.split(",")[0].strip() or default


def signed_request(sample: Sample, fresh: bool) -> tuple[bytes, dict[str, str]]:
    body = dict(sample.body)
    if fresh and sample.source == "stripe":
        body["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    if fresh and sample.source == "ecwid":
        body["eventId"] = str(uuid.uuid4())
    if sample.source == "ecwid":
        # Signed below: ingest refuses webhooks older than ECWID_MAX_EVENT_AGE_SECONDS.
        body["eventCreated"] = int(time.time())
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if sample.source == "stripe":
        secret = _secret("STRIPE_WEBHOOK_SECRETS", DEMO_STRIPE_SECRET)
        headers[stripe_signature.SIGNATURE_HEADER] = stripe_signature.sign(secret, raw)
    elif sample.source == "ecwid":
        secret = _secret("ECWID_CLIENT_SECRET", DEMO_ECWID_CLIENT_SECRET)
        headers[ECWID_HEADER] = expected_signature(secret, body["eventCreated"], body["eventId"])
    else:
        # Signed as a shop's backend signs: an unsigned call without a browser Origin is
        # refused.
        secret = os.environ.get("SIGNUP_HMAC_SECRET") or DEMO_SIGNUP_SECRET
        headers[signup_signature.SIGNATURE_HEADER] = signup_signature.sign(secret, raw)
    return raw, headers


def api_gateway_event(sample: Sample, raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The request as API Gateway hands it to the function (for `sam local invoke -e`)."""
    from partnero_bridge_cli.local.gateway import build_event
    from partnero_bridge_cli.local.template import HttpRoute

    route = HttpRoute("POST", ROUTES[sample.source], "")
    return build_event(route, "POST", route.path, list(headers.items()), raw, "127.0.0.1", {})


def _ecwid_order_for(root: Path, webhook: dict[str, Any]) -> dict[str, Any] | None:
    wanted = (webhook.get("data") or {}).get("orderId")
    for path in sorted((events_dir(root) / "ecwid" / "orders").glob("*.json")):
        order = json.loads(path.read_text())
        if order.get("id") == wanted or (
            wanted is None and order.get("internalId") == webhook.get("entityId")
        ):
            return dict(order)
    return None


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def send(
    root: Path, name: str, url: str | None, fresh: bool, print_event: bool, out: TextIO = sys.stdout
) -> int:
    sample = find_sample(root, name)
    raw, headers = signed_request(sample, fresh)
    if print_event:
        out.write(json.dumps(api_gateway_event(sample, raw, headers), indent=2) + "\n")
        return 0
    base = (
        url
        or os.environ.get("BRIDGE_URL")
        or f"http://127.0.0.1:{os.environ.get('BRIDGE_PORT', '3000')}"
    ).rstrip("/")
    if sample.source == "ecwid" and _is_local(base):
        _provide_ecwid_order(root, sample.body, out)
    if sample.source == "stripe" and _is_local(base):
        _provide_stripe_event(raw, stripe_state(sample.path), out)
    target = f"{base}{ROUTES[sample.source]}"
    started = time.perf_counter()
    try:
        answer = httpx.post(target, content=raw, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        out.write(
            f"POST {target} failed: {type(exc).__name__}: {exc}\n"
            "Is the local stack running (make run)?\n"
        )
        return 1
    elapsed = (time.perf_counter() - started) * 1000
    shown = sample.path.relative_to(root) if sample.path.is_relative_to(root) else sample.path
    out.write(
        f"POST {target}  ({shown})\n-> {answer.status_code} in {elapsed:.0f} ms: {answer.text}\n"
    )
    return 0 if answer.status_code < 300 else 1


def _provide_ecwid_order(root: Path, webhook: dict[str, Any], out: TextIO) -> None:
    order = _ecwid_order_for(root, webhook)
    if order is None:
        return
    admin = os.environ.get("BRIDGE_ECWID_ADMIN") or (
        f"http://127.0.0.1:{os.environ.get('BRIDGE_ECWID_PORT', '4020')}"
    )
    try:
        httpx.put(
            f"{admin}/_ecwid/stores/{webhook['storeId']}/orders/{order['id']}",
            json=order,
            timeout=5,
        ).raise_for_status()
        out.write(f"fake Ecwid now serves order {order['id']} of store {webhook['storeId']}\n")
    except httpx.HTTPError:
        out.write("note: no fake Ecwid API reachable; the order must exist in Ecwid\n")


def stripe_state(event_path: Path) -> list[dict[str, Any]]:
    """The objects Stripe holds for a Stripe sample that its event does not carry: the sidecar
    ``state/<same name>.json`` next to it (a JSON list; none when there is no such file)."""
    sidecar = event_path.parent / "state" / event_path.name
    if not sidecar.is_file():
        return []
    objects = json.loads(sidecar.read_text())
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise SystemExit(f"{sidecar} is not a JSON list of Stripe objects")
    return objects


def _provide_stripe_event(raw: bytes, objects: list[dict[str, Any]], out: TextIO) -> None:
    """Load the event, as sent, into the local stack's fake Stripe API with the sample's state
    objects (the event's objects become what the API serves, as when Stripe sends an event
    about them; the state objects stand for what Stripe holds besides)."""
    admin = os.environ.get("BRIDGE_STRIPE_API_ADMIN") or (
        f"http://127.0.0.1:{os.environ.get('BRIDGE_STRIPE_API_PORT', '4030')}"
    )
    state = json.dumps(objects).encode()
    try:
        answer = httpx.post(
            f"{admin}/_stripe/events",
            content=b'{"event":' + raw + b',"stripe_objects":' + state + b"}",
            headers={"content-type": "application/json"},
            timeout=5,
        )
        answer.raise_for_status()
        carried = int(answer.json()["loaded"]) - len(objects)
        out.write(
            f"fake Stripe API now serves the {carried} object(s) the event carries and the "
            f"{len(objects)} object(s) of its state\n"
        )
    except (httpx.HTTPError, ValueError, KeyError):
        out.write("note: no fake Stripe API reachable; the objects must exist in Stripe\n")

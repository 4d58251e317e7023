"""``partnero-bridge send``: sign a sample event and post it, like ``stripe trigger``.

Samples live in ``events/``: ``signup/*.json`` (request bodies), ``ecwid/webhooks/*.json``
(webhook bodies; the orders they name are in ``ecwid/orders/``) and ``stripe/*.json``
(events). Ecwid and Stripe samples are signed with the configured secrets (the local
stack's demo secrets unless ECWID_CLIENT_SECRET / STRIPE_WEBHOOK_SECRETS are set; the
first of a comma-separated list). An Ecwid sample's ``eventCreated`` is stamped with the
send time before it is signed, so a sample is never refused as stale; a sign-up sample's
address gets a new ``+tag`` each time, so each send is a new customer. When the target is
the local stack, the Ecwid order a sample webhook names is put into the fake Ecwid API
first (a webhook file of your own is sent as it is: its order must be in the fake Ecwid
already), and a Stripe event (as sent) is loaded into the fake Stripe API with the objects
Stripe would hold for it that it does not carry (``state/<name>.json`` next to the event
file, its sidecar: its payment intent, charge, refunds...), so processing can read them back.

Against the local stack, ``send`` then waits for what became of the delivery (its id:
``stripe-<event id>``, ``ecwid-<eventId>``, ``signup-<hash>``) and prints it, read from the
stack's delivery feed (``GET /_local/deliveries``): created, updated, reversed, duplicate,
ignored with its reason, retrying with its error and next attempt, dead-lettered...
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
from partnero_bridge.signup.mapping import delivery_id as signup_delivery_id
from partnero_bridge.signup.mapping import to_delivery
from partnero_bridge.signup.models import SignupRequest
from partnero_bridge.stripe import signature as stripe_signature
from partnero_bridge_cli.local.deliveries import FEED_PATH
from partnero_bridge_cli.local.stack import (
    DEMO_ECWID_CLIENT_SECRET,
    DEMO_SIGNUP_SECRET,
    DEMO_STRIPE_SECRET,
    NotTheStack,
    StackRefused,
    ask_local_stack,
    gateway_url,
    port_of,
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
# How long `send` waits for the outcome by default, and how often it looks.
DEFAULT_WAIT_SECONDS = 30.0
_POLL_SECONDS = 0.25
# Outcomes after which nothing more happens to the delivery (until it is sent again).
_UNFINISHED = frozenset({"queued", "retrying"})


@dataclass(frozen=True)
class Sample:
    source: Source
    path: Path
    body: dict[str, Any]
    # One of events/ (not a file of one's own): a sign-up sample is a new person each time.
    stock: bool = False


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


def samples_text(root: Path) -> str:
    """What ``send`` without a name prints: how to send one, the short names and what each
    stands for, then every sample."""
    width = max(len(name) for name in ALIASES)
    lines = ["partnero-bridge send NAME signs and posts one of these samples (events/).", ""]
    lines += ["Short names:"]
    lines += [f"  {name:{width}}  = {target}" for name, target in sorted(ALIASES.items())]
    lines += ["", "Every sample:"]
    lines += [f"  {name}" for name in available(root) if name not in ALIASES]
    return "\n".join(lines)


def _is_ecwid_order(body: dict[str, Any]) -> bool:
    """An order as the Ecwid API serves it (``events/ecwid/orders/``), not a webhook."""
    return "eventId" not in body and {"internalId", "paymentStatus"} <= body.keys()


def _webhook_naming(root: Path, order: dict[str, Any]) -> str:
    """The webhook sample that names ``order`` (by id, or internal id for the older
    shape), else the first order webhook."""
    webhooks = sorted((events_dir(root) / "ecwid" / "webhooks").glob("order-*.json"))
    for path in webhooks:
        webhook = _json_file(path)
        named = (webhook.get("data") or {}).get("orderId")
        if named == order.get("id") or (
            named is None and webhook.get("entityId") == order.get("internalId")
        ):
            return f"ecwid/webhooks/{path.stem}"
    return "ecwid/order.created"


def _not_an_order(root: Path, path: Path, body: dict[str, Any]) -> None:
    """Refuse an Ecwid order file: ingest takes webhooks, and the fake Ecwid API serves
    the order a stock webhook names."""
    if _is_ecwid_order(body):
        raise SystemExit(
            f"partnero-bridge send: {_shown(root, path)} is an Ecwid order (the fake Ecwid "
            "API serves it "
            "when a webhook names it), not a webhook: send "
            f"{_webhook_naming(root, body)} instead"
        )


def _shown(root: Path, path: Path) -> Path:
    """``path`` as the user knows it: a sample's from the checkout."""
    return path.relative_to(root) if path.is_relative_to(root) else path


def _json_file(path: Path) -> Any:
    """The JSON in ``path``; SystemExit naming the file and where its JSON breaks."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"partnero-bridge send: {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}"
        ) from None


def _source_of(path: Path, body: dict[str, Any]) -> Source:
    if body.get("object") == "event" or "stripe" in path.parts:
        return "stripe"
    if "eventId" in body or "webhooks" in path.parts:
        return "ecwid"
    return "signup"


def find_sample(root: Path, name: str) -> Sample:
    """The sample ``name`` names: a file as given (your own, even one named like a sample's
    short name), else a sample of ``events/`` by its name, short name or a unique prefix."""
    base = events_dir(root)
    given = Path(name)
    name = ALIASES.get(name.removesuffix(".json"), name.removesuffix(".json"))
    candidates = [
        given,
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
    body = _json_file(path)
    if not isinstance(body, dict):
        raise SystemExit(f"{path} is not a JSON object")
    _not_an_order(root, path, body)
    return Sample(_source_of(path, body), path, body, is_project_sample(root, path))


def _secret(variable: str, default: str) -> str:
    value = os.environ.get(variable, "")
    return value.split(",")[0].strip() or default


def new_address(email: str) -> str:
    """``email`` with a new ``+tag`` on its local part (``Jane.Doe+3fa9c1@Example.com``):
    another customer for Partnero, the same mailbox for people."""
    local, at, domain = email.partition("@")
    if not at:
        return email  # not an address: sent as it is, for ingest to refuse
    return f"{local.split('+', 1)[0]}+{uuid.uuid4().hex[:6]}@{domain}"


def _stamped(sample: Sample, fresh: bool) -> dict[str, Any]:
    """The body to send: a new id when ``fresh``, an Ecwid webhook's time of sending, and a
    stock sign-up sample's new address (each send a new customer, as on a real form)."""
    body = dict(sample.body)
    if fresh and sample.source == "stripe":
        body["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    if fresh and sample.source == "ecwid":
        body["eventId"] = str(uuid.uuid4())
    if sample.source == "ecwid":
        # Signed below: ingest refuses webhooks older than ECWID_MAX_EVENT_AGE_SECONDS.
        body["eventCreated"] = int(time.time())
    if sample.source == "signup" and (fresh or sample.stock) and isinstance(body.get("email"), str):
        body["email"] = new_address(body["email"])
    return body


def signed_request(sample: Sample, fresh: bool) -> tuple[bytes, dict[str, str]]:
    body = _stamped(sample, fresh)
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
        order = _json_file(path)
        if order.get("id") == wanted or (
            wanted is None and order.get("internalId") == webhook.get("entityId")
        ):
            return dict(order)
    return None


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def is_project_sample(root: Path, path: Path) -> bool:
    """Whether ``path`` is one of the project's samples (``events/``), not a file of one's own."""
    return path.resolve().is_relative_to(events_dir(root).resolve())


def delivery_id_of(source: Source, raw: bytes) -> str | None:
    """The delivery id ingest gives the request ``raw`` (as signed and sent), or None when
    ingest queues nothing for it (a sign-up without a partner key, or one it refuses)."""
    body = json.loads(raw)
    if source == "stripe":
        return f"stripe-{body.get('id')}"
    if source == "ecwid":
        return f"ecwid-{body.get('eventId')}"
    try:
        request = SignupRequest.model_validate(body)
    except ValueError:
        return None
    # `send` signs every sign-up, as a shop's backend does.
    delivery = to_delivery(request, None, trusted=True)
    return signup_delivery_id(delivery) if delivery is not None else None


def send(
    root: Path,
    name: str,
    url: str | None,
    fresh: bool,
    print_event: bool,
    out: TextIO = sys.stdout,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
) -> int:
    """Sign and post one sample; then, against the local stack and unless ``wait_seconds``
    is None, wait up to that long for the delivery's outcome and print it.

    Exit status: 0 sent (and, when waiting, any outcome but a dead letter, or none yet);
    1 the bridge could not be reached, answered an error, or dead-lettered the delivery.
    """
    sample = find_sample(root, name)
    raw, headers = signed_request(sample, fresh)
    if print_event:
        out.write(json.dumps(api_gateway_event(sample, raw, headers), indent=2) + "\n")
        return 0
    try:
        base, told = _target(url)
        admins = _fake_admins(told) if told is not None else None
    except (StackRefused, NotTheStack) as exc:
        raise SystemExit(f"partnero-bridge send: {exc}") from None
    waiting = admins is not None and wait_seconds is not None
    if admins is not None:
        _provide_source_state(root, sample, raw, out, admins)
    # Where the feed stood before sending: only what changes after counts.
    since = _feed_version(base) if waiting else None
    if waiting and since is None:
        out.write(f"note: no delivery feed at {base}{FEED_PATH}; not waiting for the outcome\n")
    answer = _post(root, sample, f"{base}{ROUTES[sample.source]}", raw, headers, out)
    if answer is None or answer.status_code >= 300:
        return 1
    if since is None or wait_seconds is None:
        return 0
    delivery = delivery_id_of(sample.source, raw)
    if not _was_queued(answer) or delivery is None:
        out.write("nothing was queued: no delivery to wait for\n")
        return 0
    return wait_for_outcome(base, delivery, since, wait_seconds, out)


def _target(url: str | None) -> tuple[str, dict[str, Any] | None]:
    """The bridge's base URL, and what the local stack there says of itself (``GET
    /_local/stack``; None when the bridge is not on this machine, empty for a bridge of
    one's own given with ``--url``, such as ``sam local start-api``). Without ``--url``
    a local gateway must be the running stack: NotTheStack (one line) otherwise."""
    base = (url or gateway_url(os.environ)).rstrip("/")
    if not _is_local(base):
        return base, None
    try:
        return base, ask_local_stack(base)
    except NotTheStack:
        if url is None:
            raise
        return base, {}


def _fake_admins(told: dict[str, Any]) -> dict[Source, str]:
    """Where the local stack's fake Ecwid and Stripe APIs take their data: BRIDGE_*_ADMIN,
    else 127.0.0.1 on BRIDGE_*_PORT, else on the port the stack said (``told``, its
    ``GET /_local/stack`` answer), else on the default port. StackRefused when a
    BRIDGE_*_PORT is not a port."""
    said = told.get("ports")
    ports: dict[str, Any] = said if isinstance(said, dict) else {}
    fakes: tuple[tuple[Source, str, int], ...] = (
        ("ecwid", "ECWID", 4020),
        ("stripe", "STRIPE_API", 4030),
    )
    admins: dict[Source, str] = {}
    for source, name, default in fakes:
        port = port_of(
            os.environ, f"BRIDGE_{name}_PORT", int(ports.get(f"BRIDGE_{name}_PORT") or default)
        )
        admins[source] = os.environ.get(f"BRIDGE_{name}_ADMIN") or f"http://127.0.0.1:{port}"
    return admins


def _provide_source_state(
    root: Path, sample: Sample, raw: bytes, out: TextIO, admins: dict[Source, str]
) -> None:
    """Put what the local stack's fake Ecwid or Stripe API must serve for the sample."""
    if sample.source == "ecwid":
        if sample.stock:
            _provide_ecwid_order(root, sample.body, out, admins["ecwid"])
        else:
            out.write("your own webhook: the fake Ecwid serves the order you put there, if any\n")
    if sample.source == "stripe":
        _provide_stripe_event(raw, stripe_state(sample.path), out, admins["stripe"])


def _post(
    root: Path, sample: Sample, target: str, raw: bytes, headers: dict[str, str], out: TextIO
) -> httpx.Response | None:
    """POST the signed request and print the answer; None (said why) when nothing answered."""
    started = time.perf_counter()
    try:
        answer = httpx.post(target, content=raw, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        out.write(
            f"POST {target} failed: {type(exc).__name__}: {exc}\n"
            "Is the local stack running (make run)?\n"
        )
        return None
    elapsed = (time.perf_counter() - started) * 1000
    shown = _shown(root, sample.path)
    out.write(
        f"POST {target}  ({shown})\n-> {answer.status_code} in {elapsed:.0f} ms: "
        f"{_answer_text(answer)}\n"
    )
    return answer


def _answer_text(answer: httpx.Response) -> str:
    """The bridge's JSON answer as it came; of anything else (not the bridge answering),
    its content type and size, never a whole page."""
    kind = answer.headers.get("content-type", "").split(";")[0].strip()
    if "json" in kind or answer.text.lstrip().startswith(("{", "[")):
        return answer.text
    return f"{kind or 'no content type'}, {len(answer.content)} bytes (not the bridge's JSON)"


def _was_queued(answer: httpx.Response) -> bool:
    """Ingest's answer says it queued the request (not ignored, parked or refused)."""
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "accepted"


def _feed(base: str, **query: str | int) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"{base}{FEED_PATH}", params=query, timeout=5)
        body = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and isinstance(body.get("deliveries"), list) else None


def _feed_version(base: str) -> int | None:
    feed = _feed(base, limit=0)
    return int(feed["version"]) if feed is not None else None


def wait_for_outcome(
    base: str, delivery_id: str, since: int, wait_seconds: float, out: TextIO
) -> int:
    """Print each new outcome of ``delivery_id`` in the local stack's delivery feed (changed
    after version ``since``) until a final one, or until ``wait_seconds`` have passed (also
    when its next attempt falls later). 1 when it was dead-lettered, else 0."""
    deadline = time.monotonic() + wait_seconds
    shown: str | None = None
    while True:
        feed = _feed(base, delivery_id=delivery_id, since=since, limit=1)
        entry = feed["deliveries"][0] if feed and feed["deliveries"] else None
        if entry is not None and entry["outcome"] != "queued" and entry["summary"] != shown:
            shown = entry["summary"]
            out.write(f"{delivery_id}: {shown}\n")
            out.flush()
        outcome = entry["outcome"] if entry is not None else "queued"
        if outcome not in _UNFINISHED:
            return 1 if outcome == "dead_lettered" else 0
        left = deadline - time.monotonic()
        if outcome == "retrying" and entry is not None and entry["retry_in_seconds"] > left:
            out.write(f"{delivery_id}: not waiting for its next attempt (see {base}{FEED_PATH})\n")
            return 0
        if left <= 0:
            out.write(
                f"{delivery_id}: no outcome after {wait_seconds:.0f} s, still queued "
                f"(see {base}{FEED_PATH})\n"
            )
            return 0
        time.sleep(min(_POLL_SECONDS, left))


def _provide_ecwid_order(root: Path, webhook: dict[str, Any], out: TextIO, admin: str) -> None:
    order = _ecwid_order_for(root, webhook)
    if order is None:
        return
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
    objects = _json_file(sidecar)
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise SystemExit(f"{sidecar} is not a JSON list of Stripe objects")
    return objects


def _provide_stripe_event(
    raw: bytes, objects: list[dict[str, Any]], out: TextIO, admin: str
) -> None:
    """Load the event, as sent, into the local stack's fake Stripe API with the sample's state
    objects (the event's objects become what the API serves, as when Stripe sends an event
    about them; the state objects stand for what Stripe holds besides)."""
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

"""Hypothesis fuzzing of every route the HTTP API answers, and of the work queues.

Every route (``POST /webhooks/ecwid``, ``POST /webhooks/stripe``, ``POST /signup``,
``OPTIONS /signup``, and methods and paths that are no route) gets thousands of requests:
random and near-valid signature headers (the right scheme with absurd timestamps, huge or
many ``v1`` entries, non-ASCII and control characters), ``Cookie``, ``Content-Type``,
``isBase64Encoded`` bodies that are not base64, invalid UTF-8, JSON nested 10,000 deep and
bodies up to past the routes' limits, mixed with correctly signed requests. What must hold
for each: the function answers (never raises), never a 5xx, every refusal is a JSON error,
every answer is one the route's OpenAPI description documents, and nothing reaches a work
queue unless it was correctly signed (or, for a sign-up, an unsigned call the rules admit:
from an allowed browser origin). Whatever was queued is a message SQS takes (size,
characters).

Functions are found from the route in template.yaml, not by logical id.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnero_bridge import timed_signature
from partnero_bridge.ecwid.signature import SIGNATURE_HEADER as ECWID_HEADER
from partnero_bridge.ecwid.signature import expected_signature
from partnero_bridge.runtime import reset_runtime
from partnero_bridge.signup.cors import OriginPolicy
from partnero_bridge.signup.signature import SIGNATURE_HEADER as SIGNUP_HEADER
from partnero_bridge.stripe.events import HANDLED_EVENTS
from partnero_bridge.stripe.signature import SIGNATURE_HEADER as STRIPE_HEADER
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.openapi import build
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge

# Time budget: about 40 s on 2 cores.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

ECWID_SECRET = "fuzz-ecwid-client-secret"
STRIPE_SECRET = "whsec_fuzz_endpoint_secret"
SIGNUP_SECRET = "fuzz-signup-hmac-secret"
SHOP = "https://shop.example"
CONFIGURED_STORE = 1003
MIN_REQUESTS = 5000
# Examples per route; with the fixed corpus below they total more than MIN_REQUESTS.
EXAMPLES = {
    "POST /webhooks/ecwid": 1400,
    "POST /webhooks/stripe": 1400,
    "POST /signup": 1400,
    "OPTIONS /signup": 400,
    "no route": 400,
}
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOW = "NOW"  # a timestamp field filled in when the request is sent

# -- bodies ---------------------------------------------------------------------------------

HOSTILE: dict[str, bytes] = {
    name: text if isinstance(text, bytes) else text.encode()
    for name, text in {
        "deep-object-10000": '{"a":' * 10_000 + "1" + "}" * 10_000,
        "deep-array-10000": "[" * 10_000 + "]" * 10_000,
        "deep-array-2000": "[" * 2000 + "]" * 2000,  # under the sign-up's 4 KiB
        "deep-unclosed-50000": "[" * 50_000,
        "wide-object-62k": json.dumps({f"k{i}": "v" * 48 for i in range(1050)}),
        "large-array-900k": json.dumps(["x" * 100] * 8500),
        "over-1mb": "[" + "1," * 600_000 + "1]",
        "digits-5000": '{"n": ' + "9" * 5000 + "}",
        "infinite-numbers": '{"n": 1e400, "m": -1e400, "o": NaN}',
        "lone-surrogate-escape": '{"email": "\\ud800@example.com", "eventId": "\\udfff"}',
        "nul-escape": '{"email": "a\\u0000@example.com", "name": "\\u0000"}',
        "noncharacters": '{"email": "jane@example.com", "name": "\uffff\ufffe", '
        '"partner_key": "demo-partner"}',
        "invalid-utf8": b'{"email": "\xff\xfe@example.com"}',
        "bom": "\ufeff{}",
        "empty": "",
        "whitespace": " \n\t ",
    }.items()
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=20,
)
emails = st.sampled_from(["jane@example.com", "JANE@Example.com", "a@b.co"]) | st.text(max_size=60)
signup_like = st.fixed_dictionaries(
    {},
    optional={
        "email": emails | st.integers() | st.none(),
        "key": st.text(max_size=300),
        "name": st.text(max_size=120),
        "surname": st.text(),
        "partner_key": st.sampled_from(["demo-partner", "acme"]) | st.text(max_size=300),
        "referral_url": st.sampled_from(["https://shop.example/?ref=1"]) | st.text(max_size=80),
        "tags": st.lists(st.text(max_size=60), max_size=25),
    },
)
ecwid_like = st.fixed_dictionaries(
    {
        "eventId": st.uuids().map(str) | st.text(min_size=1, max_size=60),
        "eventCreated": st.sampled_from([NOW, NOW, NOW, 0, -1, 10**20, "1700000000"]),
        "storeId": st.sampled_from([CONFIGURED_STORE, CONFIGURED_STORE, 777]) | st.integers(),
        "eventType": st.sampled_from(
            ["order.created", "order.updated", "order.deleted", "product.updated", ""]
        ),
    },
    optional={
        "entityId": st.integers(),
        "data": st.fixed_dictionaries({}, optional={"orderId": st.text(max_size=20)}) | json_values,
    },
)
stripe_like = st.fixed_dictionaries(
    {
        "id": st.just("evt_") | st.text(max_size=40),
        "type": st.sampled_from(sorted(HANDLED_EVENTS)) | st.text(max_size=30),
        "livemode": st.booleans(),
        "object": st.just("event"),
    },
    optional={
        "account": st.text(max_size=20),
        "data": st.fixed_dictionaries({"object": json_values}),
        "api_version": st.just("2025-03-31.basil"),
    },
)
random_bodies = st.one_of(
    st.binary(max_size=1500),
    st.text(max_size=600).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    signup_like.map(lambda v: json.dumps(v).encode()),
    stripe_like.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(sorted(HOSTILE)).map(HOSTILE.__getitem__),
)

# -- headers --------------------------------------------------------------------------------

NASTY = ["\x00", "\ud800", "\udfff", "\x7f", "\u202e", "é", "\uffff", "\t", "\x1b[2J", ""]
header_text = st.text(max_size=200)
header_values = (
    header_text
    | st.builds(lambda a, n, b: a + n + b, header_text, st.sampled_from(NASTY), header_text)
    | st.sampled_from(["A" * 100_000, "=" * 5000, "," * 5000])
)
# The timestamped scheme of Stripe-Signature and X-Partnero-Bridge-Signature, near-valid.
timestamps = st.sampled_from(
    [NOW, "0", "-1", "9" * 400, str(10**12), "1e9", "\u0661\u0662\u0663", " 1", "", "+5", "0x1f"]
) | st.integers().map(str)
v1_values = st.sampled_from(
    ["", "0" * 64, "g" * 64, "A" * 64, "é" * 64, "\x00" * 64, "\ud800", "a" * 100_000]
) | st.text(alphabet="0123456789abcdef", max_size=70)
timed_headers = st.builds(
    lambda t, v1s, tail: ",".join([f"t={t}", *(f"v1={v}" for v in v1s), *tail]),
    timestamps,
    st.lists(v1_values, max_size=5) | st.integers(150, 600).map(lambda n: ["0" * 64] * n),
    st.lists(st.sampled_from(["v0=abc", "x=1", "=", "", "t=1", " v1 = 00 "]), max_size=3),
)
ecwid_headers = (
    st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()) | header_values
)
cookie_values = st.sampled_from(
    ["partnero_partner=demo-partner", "partnero_partner=", "=", ";;;", "partnero_partner=%ff%00"]
) | st.builds(lambda v: f"partnero_partner={v}", header_values)
source_ips = st.sampled_from(["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1", ""]) | (
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            [
                "application/json",
                "text/plain",
                "text/html",
                "application/x-www-form-urlencoded",
                "",
                "application/json; charset=latin-1",
                "multipart/form-data; boundary=x",
            ]
        )
        | header_values,
        "origin": st.sampled_from([SHOP, "https://evil.example", "null", SHOP + "/"])
        | header_values,
        SIGNUP_HEADER: timed_headers | header_values,
        ECWID_HEADER: ecwid_headers,
        STRIPE_HEADER: timed_headers | header_values,
        "cookie": cookie_values,
        "access-control-request-method": st.sampled_from(["POST", "GET", ""]) | header_values,
        "x-forwarded-for": source_ips | header_values,
    },
)
extra_headers = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20),
    header_values,
    max_size=3,
)
encodings = st.sampled_from(["text", "base64", "not-base64"])


# -- requests ---------------------------------------------------------------------------------


@dataclass
class Draft:
    """One request before it is sent (timestamps are filled in at send time)."""

    method: str
    path: str
    body: bytes | dict[str, Any]
    headers: dict[str, str]
    cookies: list[str] | None
    encoding: str
    source_ip: str
    sign: bool = False  # sign it correctly for its route when sent
    # What an Ecwid signature covers (eventCreated, eventId) when the body is not a dict.
    ecwid_fields: tuple[Any, str] | None = None


@st.composite
def drafts(draw: st.DrawFn, route: str) -> Draft:
    if route == "no route":
        method = draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "FOO", "post"]))
        path = draw(
            st.sampled_from(["/signup", "/webhooks/ecwid", "/webhooks/stripe"])
            | st.sampled_from(["/", "/signup/", "/webhooks", "/webhooks/ecwid/x", "/SIGNUP"])
            | st.text(max_size=40).map(lambda p: "/" + p)
        )
        if path not in ("/signup", "/webhooks/ecwid", "/webhooks/stripe"):
            method = draw(st.sampled_from([method, "POST", "OPTIONS"]))
    else:
        method, path = route.split(" ")
    shaped = {"/webhooks/ecwid": ecwid_like, "/webhooks/stripe": stripe_like}.get(path, signup_like)
    body: bytes | dict[str, Any] = draw(random_bodies | shaped)
    sign = route.startswith("POST") and draw(st.booleans())
    cookies = draw(st.none() | st.lists(cookie_values | header_values, max_size=4))
    hdrs = {**draw(extra_headers), **draw(headers)}
    encoding = draw(encodings)
    if route == "POST /signup" and not sign and draw(st.integers(0, 3)) == 0:
        # A browser on the shop's site, as the rules admit it unsigned (within the limit).
        body = {"email": draw(emails), "partner_key": "demo-partner", **draw(signup_like)}
        hdrs = {k: v for k, v in hdrs.items() if k != SIGNUP_HEADER}
        hdrs.update({"origin": SHOP, "content-type": "application/json"})
        encoding = "text"
    return Draft(
        method=method,
        path=path,
        body=body,
        headers=hdrs,
        cookies=cookies,
        encoding=encoding,
        source_ip=draw(source_ips),
        sign=sign,
    )


@dataclass
class Sent:
    event: dict[str, Any]
    signed: bool  # carries a correct signature of its body for its route
    admissible: bool  # an unsigned sign-up the rules may accept (allowed browser origin)
    ecwid_event_id: str | None = None  # the signed eventId of a signed Ecwid webhook


def _fill_now(value: Any, now: int) -> Any:
    return now if value == NOW else value


def prepare(draft: Draft) -> Sent:
    """The API Gateway (payload v2) event for a draft, signed when asked."""
    now = int(time.time())
    hdrs = dict(draft.headers)
    for name in (SIGNUP_HEADER, STRIPE_HEADER):
        if name in hdrs:
            hdrs[name] = hdrs[name].replace(f"t={NOW}", f"t={now}")
    body = draft.body
    if isinstance(body, dict):
        body = {k: _fill_now(v, now) for k, v in body.items()}
        raw = json.dumps(body).encode()
    else:
        raw = body
    ecwid = draft.path == "/webhooks/ecwid"
    fields = _ecwid_fields(draft, body) if ecwid else None
    # An Ecwid body without an eventId has nothing to sign.
    signed = draft.sign and (fields is not None or not ecwid)
    if signed:
        _sign(draft.path, fields, raw, hdrs, now)
    text, is_base64 = _encoded(raw, draft.encoding, signed)
    admissible = (
        draft.path == "/signup"
        and SIGNUP_HEADER not in hdrs
        and OriginPolicy([SHOP]).allows(hdrs.get("origin") or "")
    )
    return Sent(
        api_event(draft.method, draft.path, text, is_base64, hdrs, draft.cookies, draft.source_ip),
        signed,
        admissible,
        fields[1] if signed and fields else None,
    )


def _ecwid_fields(draft: Draft, body: bytes | dict[str, Any]) -> tuple[Any, str] | None:
    """What an Ecwid signature covers (eventCreated, eventId), if the draft has them."""
    if (
        draft.ecwid_fields is None
        and isinstance(body, dict)
        and isinstance(body.get("eventId"), str)
    ):
        return (body.get("eventCreated"), body["eventId"])
    return draft.ecwid_fields


def _sign(
    path: str, fields: tuple[Any, str] | None, raw: bytes, hdrs: dict[str, str], now: int
) -> None:
    """Adds the route's correct signature to ``hdrs``."""
    if fields is not None:
        hdrs[ECWID_HEADER] = expected_signature(ECWID_SECRET, *fields)
    elif path == "/webhooks/stripe":
        hdrs[STRIPE_HEADER] = timed_signature.sign(STRIPE_SECRET, raw, now)
    else:
        hdrs[SIGNUP_HEADER] = timed_signature.sign(SIGNUP_SECRET, raw, now)


def _encoded(raw: bytes, encoding: str, signed: bool) -> tuple[str, bool]:
    """The event's body and isBase64Encoded for the draft's encoding. A signed body reaches
    its function as API Gateway sends it: binary base64-encoded, never mangled."""
    if signed and encoding != "base64" and not _is_utf8(raw):
        encoding = "base64"
    if signed and encoding == "not-base64":
        encoding = "text"
    if encoding == "base64":
        return base64.b64encode(raw).decode(), True
    if encoding == "not-base64":
        return raw.decode("utf-8", "replace") + "%%", True
    return raw.decode("utf-8", "replace"), False


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def api_event(
    method: str,
    path: str,
    body: str,
    is_base64: bool,
    hdrs: dict[str, str],
    cookies: list[str] | None,
    source_ip: str,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": hdrs,
        "body": body,
        "isBase64Encoded": is_base64,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "fuzz",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
    }
    if cookies is not None:
        event["cookies"] = cookies
    return event


# -- the run --------------------------------------------------------------------------------


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "SIGNUP_ALLOWED_ORIGINS": SHOP,
        "SIGNUP_HMAC_SECRET": SIGNUP_SECRET,
        "ECWID_CLIENT_SECRET": ECWID_SECRET,
        "ECWID_STORE_TOKENS": json.dumps({str(CONFIGURED_STORE): "tok"}),
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_MAX_RECEIVES": "2",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def function_for(bridge: InProcessBridge, method: str, path: str) -> str | None:
    """The function template.yaml routes ``method path`` to (None: no such route)."""
    return next(
        (r.function for r in bridge.stack.routes() if (r.method, r.path) == (method, path)), None
    )


def queue_of(bridge: InProcessBridge, function: str) -> str:
    """The work queue an ingest function fills (its BRIDGE_WORK_QUEUE_URL)."""
    return str(bridge.stack.functions[function].environment["BRIDGE_WORK_QUEUE_URL"]["Ref"])


@dataclass
class Tally:
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    signed_sent: Counter[str] = field(default_factory=Counter)
    signed_queued: Counter[str] = field(default_factory=Counter)
    admitted_unsigned: int = 0
    signed_ecwid_ids: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())


class Harness:
    """Sends drafts to the functions and checks each answer and what it queued.

    What a request queued is seen as it happens: every SendMessage the functions' SQS
    clients make (botocore's ``before-parameter-build`` event of boto3's default session, which the
    functions' clients are made from). At the end each work queue's depth must equal the
    sends seen, so nothing reached a queue unseen.
    """

    def __init__(self, bridge: InProcessBridge) -> None:
        self.bridge = bridge
        self.tally = Tally()
        ingest = {
            path: function_for(bridge, "POST", path)
            for path in ("/signup", "/webhooks/ecwid", "/webhooks/stripe")
        }
        self.ingest_functions = [f for f in ingest.values() if f]
        assert len(self.ingest_functions) == 3, ingest
        self.queues = {f: queue_of(bridge, f) for f in self.ingest_functions}
        # By name: the functions' queue URLs need not be spelled as the test's client has them.
        self._queue_by_name = {
            bridge.queue_url(q).rstrip("/").rpartition("/")[2]: q for q in self.queues.values()
        }
        self.initial = {q: bridge.queue_depth(q) for q in self.queues.values()}
        self.sends: list[str] = []  # logical ids of the queues sent to, this request
        self.sent_to: Counter[str] = Counter()

    def _record(self, params: dict[str, Any], **_kwargs: Any) -> None:
        name = str(params.get("QueueUrl", "")).rstrip("/").rpartition("/")[2]
        self.sends.append(self._queue_by_name.get(name, f"another queue ({name})"))

    @contextmanager
    def watching(self) -> Iterator[Harness]:
        session = boto3._get_default_session()  # what boto3.client() builds clients from
        session.events.register("before-parameter-build.sqs.SendMessage", self._record)
        try:
            reset_runtime()  # clients made from here on carry the handler
            yield self
        finally:
            session.events.unregister("before-parameter-build.sqs.SendMessage", self._record)

    def send(self, route: str, draft: Draft, pick: int = 0) -> None:
        sent = prepare(draft)
        function = function_for(self.bridge, draft.method, draft.path)
        if function is None:
            # API Gateway answers no-route itself; the functions must refuse it too.
            function = self.ingest_functions[pick % len(self.ingest_functions)]
        self.sends.clear()
        result = self.bridge.invoke(function, sent.event)
        assert result.error is None, (route, result.error)
        status = result.payload["statusCode"]
        self.tally.statuses.setdefault(route, Counter())[status] += 1
        assert status < 500, (route, status, result.payload.get("body"))
        answer = json.loads(result.payload.get("body") or "null")
        if status >= 400:
            assert isinstance(answer["error"], str), answer
            assert isinstance(answer["message"], str), answer
        if sent.signed:
            self.tally.signed_sent[route] += 1
            if sent.ecwid_event_id is not None:
                self.tally.signed_ecwid_ids.add(sent.ecwid_event_id)
        self._check_queued(route, function, sent, status)

    def _check_queued(self, route: str, function: str, sent: Sent, status: int) -> None:
        self.sent_to.update(self.sends)
        if not self.sends:
            return
        # Only a correctly signed request (or an unsigned sign-up the rules admit) may reach
        # a work queue: its own function's, once, and only with a 2xx answer.
        assert self.sends == [self.queues[function]], (route, self.sends)
        assert route.startswith("POST"), route
        assert 200 <= status < 300, (route, status)
        assert sent.signed or sent.admissible, (route, "unverified request queued")
        if sent.signed:
            self.tally.signed_queued[route] += 1
        else:
            self.tally.admitted_unsigned += 1

    def check_depths(self) -> None:
        """Each work queue holds exactly what the functions were seen sending to it."""
        for queue, initial in self.initial.items():
            assert self.bridge.queue_depth(queue) == initial + self.sent_to[queue], queue


# What SQS takes as a message body (its documented character set).
SQS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def check_queued_messages(harness: Harness) -> int:
    """Every message on the work queues is one SQS would have taken."""
    total = 0
    for queue in harness.queues.values():
        for message in harness.bridge.messages(queue):
            body = message["Body"]
            attributes = message.get("MessageAttributes", {})
            size = len(body.encode()) + sum(
                len(k) + len(v["DataType"]) + len(v.get("StringValue", "").encode())
                for k, v in attributes.items()
            )
            assert size <= 256 * 1024, (queue, size)
            assert SQS_TEXT.fullmatch(body), (queue, "characters SQS refuses")
            for value in attributes.values():
                assert SQS_TEXT.fullmatch(value.get("StringValue", "")), (queue, value)
            total += 1
    return total


EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return {**body, **changes}


# One well-formed, correctly signed request per route, so the accepting path is always
# exercised whatever the fuzzer happens to draw.
CONTROLS = {
    "POST /signup": {"email": "control@example.com", "partner_key": "demo-partner"},
    "POST /webhooks/stripe": _sample("stripe/invoice.paid.subscription_create.json"),
    "POST /webhooks/ecwid": _sample("ecwid/webhooks/order-created.json", eventCreated=NOW),
}


def fixed_corpus(harness: Harness) -> None:
    """Each hostile body on every route: unsigned from the shop, signed, and binary; and
    each route's control request."""
    for route, body in CONTROLS.items():
        method, path = route.split(" ")
        plain = {"content-type": "application/json", "origin": SHOP}
        draft = Draft(method, path, body, plain, None, "text", "203.0.113.7", sign=True)
        harness.send(f"{route} (control)", draft)
        assert harness.sends, (route, "the control request was not queued")
    corpus_routes = [*(r for r in EXAMPLES if r != "no route"), "GET /signup"]
    for index, (name, raw) in enumerate(sorted(HOSTILE.items())):
        for route in corpus_routes:
            method, path = route.split(" ")
            plain = {"content-type": "application/json", "origin": SHOP}
            bodies: list[tuple[bytes | dict[str, Any], bool, str]] = [
                (raw, False, "text"),
                (raw, method == "POST", "text"),
                (raw, False, "base64"),
            ]
            if path == "/webhooks/ecwid" and raw.strip():
                # Signed fields around a hostile data field: parsed, bounded, refused.
                created = int(time.time())
                wrapped = (
                    b'{"eventId": "corpus-' + name.encode() + b'", "eventCreated": %d, '
                    b'"storeId": 1003, "eventType": "order.created", "data": '
                    % created
                    + raw
                    + b"}"
                )
                harness.send(
                    f"{route} (corpus)",
                    Draft(
                        method,
                        path,
                        wrapped,
                        dict(plain),
                        None,
                        "text",
                        "203.0.113.9",
                        sign=True,
                        ecwid_fields=(created, f"corpus-{name}"),
                    ),
                )
            for body, sign, encoding in bodies:
                harness.send(
                    f"{route} (corpus)",
                    Draft(method, path, body, dict(plain), None, encoding, "203.0.113.9", sign),
                    index,
                )


def assert_answers_documented(statuses: dict[str, Counter[int]]) -> None:
    """Every status a route answered is among those its OpenAPI description lists."""
    described = build(Path(__file__).resolve().parents[2])["paths"]
    for route, counts in statuses.items():
        method, _, path = route.split(" (")[0].lower().partition(" ")
        if method in described.get(path, {}):
            documented = set(described[path][method]["responses"])
            assert {str(status) for status in counts} <= documented, (route, counts)


def test_every_route_never_5xx_and_never_queues_the_unverified(
    bridge: InProcessBridge, figures: Callable[..., None]
) -> None:
    started = time.monotonic()
    with Harness(bridge).watching() as harness:
        fixed_corpus(harness)
        for route, examples in EXAMPLES.items():

            @settings(FUZZ, max_examples=examples)
            @given(draft=drafts(route), pick=st.integers(0, 2))
            def fuzz(draft: Draft, pick: int) -> None:
                harness.send(route, draft, pick)  # noqa: B023 (run at once, in this iteration)

            fuzz()

    harness.check_depths()
    tally = harness.tally
    queued = check_queued_messages(harness)
    parked = bridge.dynamodb.scan(TableName=bridge.resources.refs["ParkedWebhooksTable"])
    parked_ids = {item["event_id"]["S"] for item in parked["Items"] if "event_id" in item}
    assert parked_ids <= tally.signed_ecwid_ids  # parked: signed webhooks of other stores only
    routes = ("POST /webhooks/ecwid", "POST /webhooks/stripe", "POST /signup")
    for route in routes:
        # The accepting path was exercised: the zero below is not for want of trying.
        assert tally.signed_queued[f"{route} (control)"] == 1, route
    # And drawn requests signed correctly were queued too (how many of each route's depends
    # on what the fuzzer draws, none of them on any one route is possible).
    assert sum(tally.signed_queued[route] for route in routes) > 0
    assert tally.admitted_unsigned > 0
    assert tally.requests >= MIN_REQUESTS
    assert_answers_documented(tally.statuses)
    per_route = "; ".join(
        f"{route}: {sum(c.values())} {dict(sorted(c.items()))}"
        for route, c in sorted(tally.statuses.items())
    )
    figures(
        requests=tally.requests,
        answered_5xx=0,
        unverified_queued=0,
        signed_sent=sum(tally.signed_sent.values()),
        signed_queued=sum(tally.signed_queued.values()),
        unsigned_signups_admitted=tally.admitted_unsigned,
        messages_sqs_would_take=f"{queued}/{queued}",
        seconds=round(time.monotonic() - started),
        per_route=per_route,
    )


def test_garbage_on_the_queues_never_crashes_processing(
    bridge: InProcessBridge, figures: Callable[..., None]
) -> None:
    queues = {
        source: queue_of(bridge, function_for(bridge, "POST", path) or "")
        for source, path in (
            ("signup", "/signup"),
            ("ecwid", "/webhooks/ecwid"),
            ("stripe", "/webhooks/stripe"),
        )
    }
    consumers = {
        queue: next(
            f.logical_id
            for f in bridge.stack.functions.values()
            if any(t.queue == queue for t in f.triggers)
        )
        for queue in queues.values()
    }
    envelope_like = st.fixed_dictionaries(
        {
            "version": st.just(1),
            "source": st.sampled_from(sorted(queues)),
            "delivery_id": st.text(min_size=1, max_size=40),
            "received_at": st.just("2026-11-20T10:00:00Z"),
            "payload": st.dictionaries(st.text(max_size=12), json_values, max_size=6),
        },
        optional={"meta": st.dictionaries(st.text(max_size=5), st.text(max_size=5))},
    )
    messages = st.one_of(
        st.text(min_size=1, max_size=300),
        json_values.map(json.dumps),
        envelope_like.map(json.dumps),
    )
    sent = {"value": 0}

    @settings(FUZZ, max_examples=300)
    @given(body=messages, source=st.sampled_from(sorted(queues)))
    def check(body: str, source: str) -> None:
        queue = queues[source]
        bridge.sqs.send_message(QueueUrl=bridge.queue_url(queue), MessageBody=body)
        sent["value"] += 1
        bridge.drain(consumers[queue])  # raises if the function failed or left messages behind

    check()
    dead = sum(
        bridge.queue_depth(f"{q.removesuffix('Queue')}DeadLetterQueue") for q in queues.values()
    )
    figures(messages=sent["value"], dead_lettered=dead, function_crashes=0)

"""Thousands of malformed requests and queue messages (Hypothesis): bad input is never a
5xx, an unverified webhook is never queued, and no message ever crashes processing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 1000
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ECWID_SECRET = "fuzz-ecwid-client-secret"
STRIPE_SECRET = "whsec_fuzz_endpoint_secret"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=20,
)
signup_like = st.fixed_dictionaries(
    {},
    optional={
        "email": st.text(max_size=60) | st.integers() | st.none(),
        "key": st.text(max_size=300),
        "name": st.text(max_size=120),
        "surname": st.text(),
        "partner_key": st.text(max_size=300) | st.just("demo-partner"),
        "referral_url": st.text(max_size=80),
        "tags": st.lists(st.text(max_size=60), max_size=25),
    },
)
webhook_like = st.fixed_dictionaries(
    {},
    optional={
        "eventId": st.text(max_size=40) | st.integers(),
        "eventCreated": st.integers() | st.text(),
        "storeId": st.integers() | st.text(max_size=8),
        "eventType": st.sampled_from(
            ["order.created", "order.updated", "order.deleted", "product.updated", "x"]
        ),
        "entityId": st.integers(),
        "data": json_values,
        "id": st.text(max_size=30),
        "type": st.text(max_size=30),
        "livemode": st.booleans(),
        "object": st.just("event"),
    },
)
bodies = st.one_of(
    st.binary(max_size=1500),
    st.text(max_size=600).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    signup_like.map(lambda v: json.dumps(v).encode()),
    webhook_like.map(lambda v: json.dumps(v).encode()),
)
header_values = st.text(max_size=120).filter(lambda v: "\n" not in v and "\r" not in v)
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
            ]
        )
        | header_values,
        "origin": st.sampled_from(["https://shop.example", "https://evil.example", "null"])
        | header_values,
        "x-partnero-bridge-signature": header_values,
        "x-ecwid-webhook-signature": header_values,
        "stripe-signature": header_values
        | st.builds(lambda t, v: f"t={t},v1={v}", st.integers(), st.text(max_size=64)),
        "cookie": header_values,
    },
)


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
        "ECWID_CLIENT_SECRET": ECWID_SECRET,
        "ECWID_STORE_TOKENS": '{"1003": "tok"}',
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_MAX_RECEIVES": "2",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def api_event(path: str, body: bytes, hdrs: dict[str, str], as_base64: bool) -> dict[str, Any]:
    text = base64.b64encode(body).decode() if as_base64 else body.decode("utf-8", "replace")
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": hdrs,
        "body": text,
        "isBase64Encoded": as_base64,
        "requestContext": {
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "fuzz",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"POST {path}",
            "stage": "$default",
            "timeEpoch": 0,
        },
    }


ROUTES = {
    "signup": ("/signup", "SignupFunction", "SignupQueue"),
    "ecwid": ("/webhooks/ecwid", "EcwidOrderFunction", "EcwidOrderQueue"),
    "stripe": ("/webhooks/stripe", "StripeEventFunction", "StripeEventQueue"),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_bad_input_never_5xx_and_unverified_never_queued(
    bridge: InProcessBridge, route: str, figures: Callable[..., None]
) -> None:
    path, function, queue = ROUTES[route]
    seen: dict[int, int] = {}

    @SETTINGS
    @given(body=bodies, hdrs=headers, as_base64=st.booleans())
    def check(body: bytes, hdrs: dict[str, str], as_base64: bool) -> None:
        before = bridge.queue_depth(queue)
        result = bridge.invoke(function, api_event(path, body, hdrs, as_base64))
        assert result.error is None, result.error
        status = result.payload["statusCode"]
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, result.payload.get("body"))
        json.loads(result.payload["body"] or "null")  # every answer is JSON
        queued = bridge.queue_depth(queue) - before
        if route == "signup":
            assert queued == (1 if status == 202 and queued else 0)
        else:
            assert queued == 0  # nothing random is ever signed right

    check()
    assert sum(seen.values()) >= EXAMPLES
    figures(requests=sum(seen.values()), answers=dict(sorted(seen.items())), answered_5xx=0)


def test_garbage_on_the_queues_never_crashes_processing(
    bridge: InProcessBridge, figures: Callable[..., None]
) -> None:
    envelope_like = st.fixed_dictionaries(
        {
            "version": st.just(1),
            "source": st.sampled_from(["signup", "ecwid", "stripe"]),
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

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=messages, route=st.sampled_from(list(ROUTES)))
    def check(body: str, route: str) -> None:
        _path, function, queue = ROUTES[route]
        bridge.sqs.send_message(QueueUrl=bridge.queue_url(queue), MessageBody=body)
        sent["value"] += 1
        bridge.drain(function)  # raises if the function failed or left messages behind

    check()
    dead = sum(
        bridge.queue_depth(f"{q.removesuffix('Queue')}DeadLetterQueue")
        for _p, _f, q in ROUTES.values()
    )
    figures(messages=sent["value"], dead_lettered=dead, function_crashes=0)

"""AWS unreachable: ingest answers 5xx (the sender retries), never 2xx for something that
is not durably queued; processing keeps the message until DynamoDB is back.

AWS is a real moto server here, so an unreachable service is a real refused connection
(botocore's per-service endpoint variables point one service at a closed port)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from moto.server import ThreadedMotoServer

from partnero_bridge.runtime import reset_runtime
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.support.ecwid import signed as ecwid_signed
from tests.support.ecwid import webhook
from tests.support.inprocess import InProcessBridge as Bridge
from tests.support.stripe import load, load_with_state
from tests.support.stripe import signed as stripe_signed

pytestmark = pytest.mark.integration

ECWID_SECRET = "unavailable-test-ecwid-secret"
STRIPE_SECRET = "whsec_unavailable_test_secret"
STRIPE_KEY = "rk_test_unavailable_reader"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def bridge(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> Iterator[Bridge]:
    # What Stripe holds for the payment the Stripe request below announces.
    stripe_api.reset()
    stripe_api.load_event(*load_with_state("checkout.session.completed.payment"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto's state lives in the process, shared by every server it starts: start clean.
    httpx.post(f"http://127.0.0.1:{port}/moto-api/reset").raise_for_status()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "ECWID_CLIENT_SECRET": ECWID_SECRET,
        "ECWID_STORE_TOKENS": '{"1003": "tok"}',
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": STRIPE_KEY,
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_MAX_RECEIVES": "5",
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
    }
    try:
        reset_runtime()
        yield Bridge(monkeypatch, env, aws_endpoint=f"http://127.0.0.1:{port}")
    finally:
        reset_runtime()
        server.stop()


def unreachable(monkeypatch: pytest.MonkeyPatch, service_variable: str) -> None:
    monkeypatch.setenv(service_variable, closed_port())
    reset_runtime()


REQUESTS: dict[str, Callable[[Bridge], tuple[str, bytes, dict[str, str]]]] = {
    "signup": lambda _b: (
        "/signup",
        json.dumps({"email": "a@example.com", "partner_key": "demo-partner"}).encode(),
        # A browser's sign-up, from an allowed origin.
        {"content-type": "application/json", "origin": "https://shop.example"},
    ),
    "ecwid": lambda _b: (
        "/webhooks/ecwid",
        *ecwid_signed(webhook("order.created", 1003, {"id": "X1", "internalId": 1}), ECWID_SECRET),
    ),
    "stripe": lambda _b: (
        "/webhooks/stripe",
        *stripe_signed(load("checkout.session.completed.payment"), STRIPE_SECRET),
    ),
}
QUEUES = {"signup": "SignupQueue", "ecwid": "EcwidOrderQueue", "stripe": "StripeEventQueue"}


@pytest.mark.parametrize("source", list(REQUESTS))
def test_sqs_down_at_ingest_is_a_503(
    bridge: Bridge,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    figures: Callable[..., None],
) -> None:
    path, body, headers = REQUESTS[source](bridge)
    assert bridge.call("POST", path, body, headers).status == 200 + (2 if source == "signup" else 0)
    unreachable(monkeypatch, "AWS_ENDPOINT_URL_SQS")
    answer = bridge.call("POST", path, body, headers)
    assert answer.status == 503
    assert answer.body["error"] == "temporarily_unavailable"
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    assert bridge.queue_depth(QUEUES[source]) == 1  # only the first, accepted one
    figures(requests=2, accepted_2xx=1, refused_503=1, queued=1)


@pytest.mark.parametrize("source", ["ecwid", "stripe"])
def test_secrets_down_at_ingest_is_a_503(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    path, body, headers = REQUESTS[source](bridge)
    bridge.call("POST", "/signup", b"{}", {})  # activate the function's environment first
    bridge.call("POST", path, b"{}", {})
    unreachable(monkeypatch, "AWS_ENDPOINT_URL_SECRETS_MANAGER")
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    answer = bridge.call("POST", path, body, headers)
    assert answer.status == 503
    assert bridge.queue_depth(QUEUES[source]) == 0


def test_dynamodb_down_while_processing_keeps_the_message(
    bridge: Bridge,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PartneroSandbox,
    figures: Callable[..., None],
) -> None:
    path, body, headers = REQUESTS["stripe"](bridge)
    assert bridge.call("POST", path, body, headers).status == 200
    unreachable(monkeypatch, "AWS_ENDPOINT_URL_DYNAMODB")
    with pytest.raises(AssertionError, match="still has messages"):
        bridge.drain("stripe", timeout=3)
    assert sandbox.requests() == []  # nothing sent without the ledger
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    reset_runtime()
    bridge.drain("stripe", timeout=20)
    assert len([t for t in sandbox.transactions() if not t.get("deleted")]) == 1
    figures(events=1, failed_attempts_while_down=">= 1", transactions_after_recovery=1)

"""What a caller sees when the bridge, not the request, is at fault: one 503 for every
cause (a secret missing or unreadable, SQS or DynamoDB failing), word for word the same, so
an unauthenticated caller learns nothing about the configuration; each counted as
``ServerError`` (what the 5xx alarm watches). A source that is simply not connected (no
webhook secret listed) refuses like a wrong signature instead: no 5xx anyone could cause at
will. Invalid settings never get that far: the function fails to start, naming the
variable (Lambda reports an init error; API Gateway answers its own 500, which senders
retry).

In-process against moto; the functions are found from their route in template.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from partnero_bridge.api import UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.runtime import reset_runtime
from partnero_bridge.signup import signature as signup_signature
from tests.support.ecwid import signed as ecwid_signed
from tests.support.ecwid import webhook
from tests.support.inprocess import (
    ApiAnswer,
    InProcessBridge,
    in_process_bridge,
    load_function_module,
)
from tests.support.stripe import load
from tests.support.stripe import signed as stripe_signed

pytestmark = pytest.mark.integration

ECWID_SECRET = "answers-ecwid-client-secret"
STRIPE_SECRET = "whsec_answers_endpoint_secret"
SIGNUP_SECRET = "answers-signup-hmac-secret"
UNIFORM = {"error": UNAVAILABLE_CODE, "message": UNAVAILABLE_MESSAGE}
SIGNUP = {"email": "jane@example.com", "partner_key": "demo-partner"}


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": "http://127.0.0.1:9/v1",  # never called: nothing is processed
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
        "SIGNUP_HMAC_SECRET": SIGNUP_SECRET,
        "ECWID_CLIENT_SECRET": ECWID_SECRET,
        "ECWID_STORE_TOKENS": '{"1003": "tok"}',
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def request(route: str) -> tuple[str, bytes, dict[str, str]]:
    """A correct request to ``route``: it is accepted while nothing is broken."""
    if route == "ecwid":
        raw, headers = ecwid_signed(webhook("order.created", 1003, {"id": "X1"}), ECWID_SECRET)
        return "/webhooks/ecwid", raw, headers
    if route == "stripe":
        raw, headers = stripe_signed(load("checkout.session.completed.payment"), STRIPE_SECRET)
        return "/webhooks/stripe", raw, headers
    raw = json.dumps(SIGNUP).encode()
    return (
        "/signup",
        raw,
        {signup_signature.SIGNATURE_HEADER: signup_signature.sign(SIGNUP_SECRET, raw)},
    )


def call(bridge: InProcessBridge, route: str) -> ApiAnswer:
    return bridge.call("POST", *request(route))


def function_of(bridge: InProcessBridge, path: str) -> str:
    return next(r.function for r in bridge.stack.routes() if (r.method, r.path) == ("POST", path))


def queue_of(bridge: InProcessBridge, route: str) -> str:
    function = function_of(bridge, request(route)[0])
    return str(bridge.stack.functions[function].environment["BRIDGE_WORK_QUEUE_URL"]["Ref"])


def emitted(output: str, name: str) -> int:
    """How many ``name`` the functions counted (CloudWatch EMF lines on stdout)."""
    total = 0
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            value = json.loads(line).get(name)
            total += int(sum(value) if isinstance(value, list) else value or 0)
    return total


def warm(bridge: InProcessBridge, route: str) -> None:
    """Run the route's function once so its environment is the one the test changes."""
    answer = call(bridge, route)
    assert 200 <= answer.status < 300, answer


def fresh_secrets() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    reset_runtime()


def delete_secret(bridge: InProcessBridge, logical_id: str) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId=bridge.resources.refs[logical_id], ForceDeleteWithoutRecovery=True
    )
    fresh_secrets()


def put_secret(bridge: InProcessBridge, logical_id: str, value: Any) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=bridge.resources.refs[logical_id],
        SecretString=value if isinstance(value, str) else json.dumps(value),
    )
    fresh_secrets()


def delete_queue(route: str) -> Callable[[pytest.MonkeyPatch, InProcessBridge], None]:
    def cause(_monkeypatch: pytest.MonkeyPatch, bridge: InProcessBridge) -> None:
        bridge.sqs.delete_queue(QueueUrl=bridge.queue_url(queue_of(bridge, route)))

    return cause


CAUSES: list[Any] = [
    pytest.param("ecwid", delete_queue("ecwid"), id="ecwid-sqs-refuses"),
    pytest.param(
        "ecwid",
        lambda _m, b: delete_secret(b, "EcwidWebhookSecret"),
        id="ecwid-secret-missing",
    ),
    pytest.param(
        "ecwid",
        lambda _m, b: put_secret(b, "EcwidWebhookSecret", "not json"),
        id="ecwid-secret-not-json",
    ),
    pytest.param(
        "ecwid",
        lambda _m, b: put_secret(b, "EcwidWebhookSecret", {"client_secrets": "x"}),
        id="ecwid-secret-malformed",
    ),
    pytest.param("stripe", delete_queue("stripe"), id="stripe-sqs-refuses"),
    pytest.param(
        "stripe", lambda _m, b: delete_secret(b, "StripeSecret"), id="stripe-secret-missing"
    ),
    pytest.param(
        "stripe",
        lambda _m, b: put_secret(b, "StripeSecret", {"webhook_secrets": 42}),
        id="stripe-secret-malformed",
    ),
    pytest.param("signup", delete_queue("signup"), id="signup-sqs-refuses"),
]


@pytest.mark.parametrize(("route", "cause"), CAUSES)
def test_every_server_side_cause_is_the_same_503_and_counted(
    bridge: InProcessBridge,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    route: str,
    cause: Callable[[pytest.MonkeyPatch, InProcessBridge], None],
) -> None:
    warm(bridge, route)
    cause(monkeypatch, bridge)
    capsys.readouterr()

    answer = call(bridge, route)

    assert (answer.status, answer.body) == (503, UNIFORM)
    assert answer.headers["retry-after"] == "5"
    assert emitted(capsys.readouterr().out, "ServerError") == 1


@pytest.mark.parametrize("route", ["ecwid", "stripe", "signup"])
def test_invalid_settings_fail_the_start_naming_the_variable_not_its_value(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.setenv("BRIDGE_RETRY_WINDOW_SECONDS", "not-a-number")
    reset_runtime()

    with pytest.raises(ConfigurationError) as failed:
        load_function_module(function_of(bridge, request(route)[0]))

    assert str(failed.value) == "invalid settings: BRIDGE_RETRY_WINDOW_SECONDS"
    assert bridge.queue_depth(queue_of(bridge, route)) == 0


def test_a_webhook_for_an_unconfigured_store_that_cannot_be_parked_is_the_same_503(
    bridge: InProcessBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    warm(bridge, "ecwid")
    bridge.dynamodb.delete_table(TableName=bridge.resources.refs["ParkedWebhooksTable"])
    raw, headers = ecwid_signed(webhook("order.created", 777, {"id": "X2"}), ECWID_SECRET)
    capsys.readouterr()

    answer = bridge.call("POST", "/webhooks/ecwid", raw, headers)

    assert (answer.status, answer.body) == (503, UNIFORM)
    assert emitted(capsys.readouterr().out, "ServerError") == 1


def test_stripe_not_connected_refuses_like_a_wrong_signature(
    bridge: InProcessBridge, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    put_secret(bridge, "StripeSecret", {"webhook_secrets": []})
    path, raw, headers = request("stripe")
    capsys.readouterr()

    answer = bridge.call("POST", path, raw, headers)
    wrong_raw, wrong_headers = stripe_signed(load("customer.created"), "whsec_wrong_one")
    wrong = bridge.call("POST", path, wrong_raw, wrong_headers)

    assert (answer.status, answer.body["error"]) == (400, "invalid_signature")
    assert answer.body == wrong.body
    assert emitted(capsys.readouterr().out, "ServerError") == 0
    assert bridge.queue_depth(queue_of(bridge, "stripe")) == 0
    assert "lists no webhook secret" in caplog.text


@pytest.mark.parametrize("route", ["ecwid", "stripe", "signup"])
def test_refusals_of_bad_requests_are_not_server_errors(
    bridge: InProcessBridge, capsys: pytest.CaptureFixture[str], route: str
) -> None:
    path, raw, _headers = request(route)
    capsys.readouterr()

    answer = bridge.call("POST", path, raw, {"origin": "https://evil.example"})

    assert 400 <= answer.status < 500
    assert emitted(capsys.readouterr().out, "ServerError") == 0

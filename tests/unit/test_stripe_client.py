"""The Stripe API client: what each answer means, the key check, and the requests it sends.

``classify_answer`` decides whether a read gives the object, is retried later or
dead-lettered, so each branch is pinned with a table. The client tests use
``httpx.MockTransport``: no network.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RetryableError,
)
from partnero_bridge.runtime import Runtime
from partnero_bridge.stripe.client import (
    LISTABLE,
    RETRIEVABLE,
    STRIPE_API_VERSION,
    NoSuchObject,
    StripeClient,
    check_key_mode,
    classify_answer,
    is_restricted_key,
)

pytestmark = pytest.mark.unit

API_KEY = "rk_live_TOPSECRET0123456789"
BASE_URL = "https://stripe.test"


def stripe_error(message: str, code: str = "", kind: str = "invalid_request_error") -> bytes:
    error: dict[str, str] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return json.dumps({"error": error}).encode()


# ---------------------------------------------------------------------------- classify_answer

CHARGE = {"id": "ch_1", "object": "charge", "amount": 1299}


@pytest.mark.parametrize("status", [200, 201])
def test_success_is_the_json_object(status: int) -> None:
    answer = classify_answer(
        status, json.dumps(CHARGE).encode(), {}, resource="charges", object_id="ch_1"
    )

    assert answer == CHARGE


@pytest.mark.parametrize(
    "body", [b"", b"<html>gateway</html>", b"[1, 2]", b'"text"', b"null"], ids=repr
)
def test_success_without_a_json_object_is_retried(body: bytes) -> None:
    with pytest.raises(RetryableError) as caught:
        classify_answer(200, body, {}, resource="charges", object_id="ch_1")

    assert type(caught.value) is RetryableError
    assert "not a JSON object" in caught.value.reason


# (status, body, headers, object_id) -> (error type, text in the reason, retry_after)
FAILURES: list[Any] = [
    pytest.param(
        401,
        stripe_error("Invalid API Key provided: rk_live_****6789"),
        {},
        "ch_1",
        ConfigurationError,
        "401",
        None,
        id="401-key-refused",
    ),
    pytest.param(
        403,
        stripe_error(
            "The provided key 'rk_live_***6789' does not have the required permissions",
            kind="invalid_request_error",
        ),
        {},
        "ch_1",
        ConfigurationError,
        "lacks read access to charges",
        None,
        id="403-no-read-permission",
    ),
    pytest.param(
        404,
        stripe_error("No such charge: 'ch_1'", code="resource_missing"),
        {},
        "ch_1",
        NoSuchObject,  # a ConfigurationError: processing retries it as one
        "Stripe has no charges ch_1 for this key: key mode or account mismatch",
        None,
        id="404-retrieve",
    ),
    pytest.param(
        404,
        b"",
        {},
        None,
        ConfigurationError,
        "check STRIPE_API_URL",
        None,
        id="404-list",
    ),
    pytest.param(
        429,
        stripe_error("Too many requests", code="rate_limit"),
        {"retry-after": "7"},
        "ch_1",
        RetryableError,
        "429, rate_limit",
        7.0,
        id="429-retry-after",
    ),
    pytest.param(429, b"", {}, None, RetryableError, "429", None, id="429-no-header"),
    pytest.param(408, b"", {}, "ch_1", RetryableError, "408", None, id="408"),
    pytest.param(
        500,
        stripe_error("boom", kind="api_error"),
        {},
        "ch_1",
        RetryableError,
        "boom",
        None,
        id="500",
    ),
    pytest.param(
        502, b"<html>bad gateway</html>", {}, None, RetryableError, "502", None, id="502-html"
    ),
    pytest.param(
        503, b"", {"retry-after": "30"}, "ch_1", RetryableError, "503", 30.0, id="503-retry-after"
    ),
    pytest.param(
        400,
        stripe_error("Received unknown parameter: foo", code="parameter_unknown"),
        {},
        None,
        PermanentError,
        "400, parameter_unknown: Received unknown parameter: foo",
        None,
        id="400-permanent-with-message",
    ),
    pytest.param(
        400,
        stripe_error("This object cannot be accessed right now", code="lock_timeout"),
        {"stripe-should-retry": "true"},
        "ch_1",
        RetryableError,
        "lock_timeout",
        None,
        id="400-stripe-should-retry",
    ),
    pytest.param(
        409,
        b"",
        {"stripe-should-retry": "false"},
        "ch_1",
        PermanentError,
        "no message",
        None,
        id="409-should-not-retry",
    ),
    pytest.param(
        402,
        stripe_error("card declined", kind="card_error"),
        {},
        "ch_1",
        PermanentError,
        "card declined",
        None,
        id="402",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "object_id", "error", "text", "retry_after"), FAILURES
)
def test_failures(
    status: int,
    body: bytes,
    headers: dict[str, str],
    object_id: str | None,
    error: type[DeliveryError],
    text: str,
    retry_after: float | None,
) -> None:
    with pytest.raises(DeliveryError) as caught:
        classify_answer(status, body, headers, resource="charges", object_id=object_id)

    assert type(caught.value) is error
    assert text in caught.value.reason
    if isinstance(caught.value, RetryableError):
        assert caught.value.retry_after == retry_after


def test_stripe_messages_quoting_a_key_are_redacted() -> None:
    body = stripe_error("Invalid API Key provided: sk_live_abc1****6789 or rk_test_ZZ9")

    with pytest.raises(ConfigurationError) as caught:
        classify_answer(401, body, {}, resource="charges", object_id="ch_1")

    assert "sk_live_" not in caught.value.reason
    assert "rk_test_" not in caught.value.reason
    assert "<key>" in caught.value.reason


def test_long_messages_are_shortened() -> None:
    with pytest.raises(PermanentError) as caught:
        classify_answer(400, stripe_error("x" * 5000), {}, resource="refunds")

    assert len(caught.value.reason) < 700


def test_retry_after_is_read_whatever_its_case() -> None:
    headers = httpx.Headers({"Retry-After": "3"})

    with pytest.raises(RetryableError) as caught:
        classify_answer(429, b"", headers, resource="refunds")

    assert caught.value.retry_after == 3.0


# ---------------------------------------------------------------------------- key mode


@pytest.mark.parametrize(
    ("key", "livemode", "problem"),
    [
        pytest.param("rk_live_abc123", True, None, id="restricted-live"),
        pytest.param("sk_live_abc123", True, None, id="secret-live"),
        pytest.param("rk_test_abc123", False, None, id="restricted-test"),
        pytest.param("sk_test_abc123", False, None, id="secret-test"),
        pytest.param("rk_test_abc123", True, "test-mode key (rk_test_)", id="test-key-live"),
        pytest.param("sk_test_abc123", True, "test-mode key (sk_test_)", id="sk-test-key-live"),
        pytest.param("rk_live_abc123", False, "live-mode key (rk_live_)", id="live-key-test"),
        pytest.param("sk_live_abc123", False, "live-mode key (sk_live_)", id="sk-live-key-test"),
        pytest.param("pk_live_abc123", True, "publishable key", id="publishable"),
        pytest.param("pk_test_abc123", False, "publishable key", id="publishable-test"),
        pytest.param("", True, "empty", id="empty"),
        pytest.param("whsec_abc123", True, "not a Stripe secret", id="webhook-secret"),
        pytest.param("abc123", False, "not a Stripe secret", id="other"),
        pytest.param("rk_live_", True, "shape", id="prefix-only"),
        pytest.param("rk_live_abc123\n", True, "shape", id="newline"),
        pytest.param(" rk_live_abc123", True, "not a Stripe secret", id="leading-space"),
        pytest.param("rk_prod_abc123", True, "shape", id="unknown-mode"),
    ],
)
def test_key_mode(key: str, livemode: bool, problem: str | None) -> None:
    if problem is None:
        check_key_mode(key, livemode)
        return
    with pytest.raises(ConfigurationError) as caught:
        check_key_mode(key, livemode)

    assert problem in caught.value.reason
    if len(key.strip()) > 8:
        assert key.strip() not in caught.value.reason


@pytest.mark.parametrize(
    ("key", "restricted"),
    [("rk_live_a1", True), ("rk_test_a1", True), ("sk_live_a1", False), ("sk_test_a1", False)],
)
def test_restricted_keys_are_told_apart(key: str, restricted: bool) -> None:
    assert is_restricted_key(key) is restricted


# ---------------------------------------------------------------------------- the client

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    handler: Handler,
    key: Callable[[], str] = lambda: API_KEY,
    on_unauthorized: Callable[[], None] | None = None,
) -> StripeClient:
    return StripeClient(
        base_url=BASE_URL + "/",
        api_key=key,
        timeout_seconds=2.0,
        on_unauthorized=on_unauthorized,
        transport=httpx.MockTransport(handler),
    )


def test_retrieve_sends_version_bearer_and_expand() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "pi_1", "object": "payment_intent"})

    client = make_client(handler)
    answer = client.retrieve("payment_intents", "pi_1", expand=["latest_charge", "invoice.x"])

    assert answer == {"id": "pi_1", "object": "payment_intent"}
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/v1/payment_intents/pi_1"
    assert request.headers["Stripe-Version"] == STRIPE_API_VERSION == "2025-03-31.basil"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"].startswith("partnero-bridge/")
    assert request.url.params.get_list("expand[]") == ["latest_charge", "invoice.x"]
    assert request.content == b""


@pytest.mark.parametrize("resource", sorted(RETRIEVABLE))
def test_every_retrievable_resource_has_its_path(resource: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"id": "x_1"})

    make_client(handler).retrieve(resource, "x_1")

    assert seen == [f"/v1/{resource}/x_1"]
    assert "checkout/sessions" in RETRIEVABLE


def test_ids_are_escaped_in_the_path() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json={"id": "odd"})

    make_client(handler).retrieve("charges", "ch_1/../../v1/customers?x=1#y")

    assert seen == [b"/v1/charges/ch_1%2F..%2F..%2Fv1%2Fcustomers%3Fx%3D1%23y"]


def test_retrieve_refuses_what_the_bridge_does_not_read() -> None:
    client = make_client(lambda request: httpx.Response(200, json={}))

    with pytest.raises(ValueError, match="does not retrieve"):
        client.retrieve("payouts", "po_1")
    with pytest.raises(PermanentError):
        client.retrieve("charges", "")


def test_the_key_is_read_for_every_request() -> None:
    keys = iter(["rk_live_first1", "rk_live_second2"])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"id": "ch_1"})

    client = make_client(handler, key=lambda: next(keys))
    client.retrieve("charges", "ch_1")
    client.retrieve("charges", "ch_1")

    assert seen == ["Bearer rk_live_first1", "Bearer rk_live_second2"]


def pages_handler(total: int, seen: list[httpx.Request], page_size: int = 2) -> Handler:
    """A list of ``total`` refunds served ``page_size`` at a time, Stripe's way."""
    ids = [f"re_{n}" for n in range(1, total + 1)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        after = request.url.params.get("starting_after")
        start = ids.index(after) + 1 if after else 0
        chunk = ids[start : start + page_size]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "url": "/v1/refunds",
                "has_more": start + page_size < len(ids),
                "data": [{"id": i, "object": "refund"} for i in chunk],
            },
        )

    return handler


def test_list_follows_has_more_across_three_pages() -> None:
    seen: list[httpx.Request] = []
    client = make_client(pages_handler(5, seen))

    refunds = client.list_all("refunds", charge="ch_1", limit=2)

    assert [r["id"] for r in refunds] == ["re_1", "re_2", "re_3", "re_4", "re_5"]
    assert len(seen) == 3
    assert [r.url.params.get("starting_after") for r in seen] == [None, "re_2", "re_4"]
    for request in seen:
        assert request.url.path == "/v1/refunds"
        assert request.url.params.get("charge") == "ch_1"
        assert request.url.params.get("limit") == "2"
        assert request.headers["Stripe-Version"] == STRIPE_API_VERSION
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_list_asks_for_full_pages_and_expands_each_item() -> None:
    seen: list[httpx.Request] = []
    client = make_client(pages_handler(1, seen))

    client.list_all("invoice_payments", invoice="in_1", expand=["payment.payment_intent"])

    (request,) = seen
    assert request.url.path == "/v1/invoice_payments"
    assert request.url.params.get("limit") == "100"
    assert request.url.params.get("invoice") == "in_1"
    assert request.url.params.get_list("expand[]") == ["data.payment.payment_intent"]


def test_list_over_max_items_is_refused_not_cut_short() -> None:
    seen: list[httpx.Request] = []
    client = make_client(pages_handler(7, seen))

    with pytest.raises(PermanentError, match="more than 4 refunds"):
        client.list_all("refunds", payment_intent="pi_1", limit=2, max_items=4)

    # Stopped as soon as the bound was passed: pages of 2, 2, then 2 more (6 > 4).
    assert len(seen) == 3


def test_list_exactly_at_max_items_is_complete() -> None:
    seen: list[httpx.Request] = []
    client = make_client(pages_handler(4, seen))

    assert len(client.list_all("refunds", charge="ch_1", limit=2, max_items=4)) == 4


@pytest.mark.parametrize(
    "page",
    [
        {"object": "list", "has_more": False},
        {"object": "list", "has_more": False, "data": "nope"},
        {"object": "list", "has_more": False, "data": [1, 2]},
        {"object": "list", "has_more": True, "data": []},
        {"object": "list", "has_more": True, "data": [{"object": "refund"}]},
    ],
    ids=["no-data", "data-not-list", "items-not-objects", "more-but-empty", "more-but-no-id"],
)
def test_list_pages_in_another_shape_are_retried(page: dict[str, Any]) -> None:
    client = make_client(lambda request: httpx.Response(200, json=page))

    with pytest.raises(RetryableError):
        client.list_all("refunds", charge="ch_1")


@pytest.mark.parametrize(
    ("resource", "filters"),
    [(resource, {name: "x_1"}) for resource, names in LISTABLE.items() for name in names],
)
def test_every_listable_resource_and_filter(resource: str, filters: dict[str, str]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "has_more": False, "data": []})

    assert make_client(handler).list_all(resource, **filters) == []
    (request,) = seen
    assert request.url.path == f"/v1/{resource}"
    assert dict(request.url.params) == {"limit": "100", **filters}


@pytest.mark.parametrize(
    ("resource", "filters", "error"),
    [
        ("payouts", {"customer": "cus_1"}, ValueError),
        ("refunds", {}, ValueError),
        ("refunds", {"customer": "cus_1"}, ValueError),
        ("invoice_payments", {"invoice": ""}, PermanentError),
    ],
)
def test_list_refuses_what_the_bridge_does_not_list(
    resource: str, filters: dict[str, str], error: type[Exception]
) -> None:
    client = make_client(lambda request: httpx.Response(200, json={}))

    with pytest.raises(error):
        client.list_all(resource, **filters)


@pytest.mark.parametrize("limit", [0, 101])
def test_list_limit_is_stripes_page_size(limit: int) -> None:
    client = make_client(lambda request: httpx.Response(200, json={}))

    with pytest.raises(ValueError, match="limit is 1-100"):
        client.list_all("refunds", charge="ch_1", limit=limit)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("closed"),
    ],
    ids=type,
)
def test_transport_errors_and_timeouts_are_retried(failure: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(RetryableError) as caught:
        make_client(handler).retrieve("charges", "ch_1")

    assert type(caught.value) is RetryableError
    assert caught.value.__cause__ is None


def test_401_asks_for_a_fresh_key() -> None:
    calls: list[str] = []
    client = make_client(
        lambda request: httpx.Response(401, content=stripe_error("Invalid API Key provided")),
        on_unauthorized=lambda: calls.append("invalidate"),
    )

    with pytest.raises(ConfigurationError):
        client.retrieve("charges", "ch_1")

    assert calls == ["invalidate"]


@pytest.mark.parametrize("status", [403, 404, 429, 500, 400])
def test_other_failures_keep_the_key(status: int) -> None:
    calls: list[str] = []
    client = make_client(
        lambda request: httpx.Response(status), on_unauthorized=lambda: calls.append("x")
    )

    with pytest.raises(DeliveryError):
        client.retrieve("charges", "ch_1")

    assert calls == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_no_error_contains_the_key(status: int) -> None:
    body = stripe_error(f"Invalid API Key provided: {API_KEY}")
    client = make_client(lambda request: httpx.Response(status, content=body))

    with pytest.raises(DeliveryError) as caught:
        client.retrieve("charges", "ch_1")

    text = "".join(traceback.format_exception(caught.value))
    assert "TOPSECRET" not in text


def test_calls_are_logged_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(
        lambda request: httpx.Response(200, json={"id": "ch_1"}, headers={"Request-Id": "req_9"})
    )

    with caplog.at_level("INFO"):
        client.retrieve("charges", "ch_1")

    (record,) = [r for r in caplog.records if r.getMessage() == "stripe call"]
    assert record.__dict__["operation"] == "retrieve charges"
    assert record.__dict__["status_code"] == 200
    assert record.__dict__["stripe_request_id"] == "req_9"
    assert isinstance(record.__dict__["elapsed_ms"], float)
    assert "TOPSECRET" not in repr(record.__dict__)


# ---------------------------------------------------------------------------- runtime


class FakeSecrets:
    def __init__(self, key: str) -> None:
        self.key = key
        self.invalidated: list[str] = []

    def field(self, arn: str, name: str) -> str:
        assert (arn, name) == ("arn:stripe-api", "api_key")
        return self.key

    def invalidate(self, arn: str) -> None:
        self.invalidated.append(arn)


def runtime_with(key: str, livemode: bool) -> tuple[Runtime, FakeSecrets]:
    settings = BridgeSettings.from_environ(
        {
            "STRIPE_API_SECRET_ARN": "arn:stripe-api",
            "STRIPE_LIVEMODE": "true" if livemode else "false",
            "STRIPE_API_URL": "http://127.0.0.1:9/",
        }
    )
    secrets = FakeSecrets(key)
    runtime = Runtime(settings, secrets=secrets)
    return runtime, secrets


def test_runtime_refuses_a_key_of_the_other_mode() -> None:
    runtime, secrets = runtime_with("rk_test_abc", livemode=True)

    with pytest.raises(ConfigurationError, match="test-mode key"):
        runtime.stripe  # noqa: B018 - building it is the check

    # Not cached: once the secret holds the right key, the next delivery builds it.
    secrets.key = "rk_live_abc"
    assert isinstance(runtime.stripe, StripeClient)


def test_runtime_client_reads_the_secret_and_invalidates_it_on_401() -> None:
    runtime, secrets = runtime_with("rk_live_abc", livemode=True)
    client = runtime.stripe
    assert runtime.stripe is client
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401)

    # The runtime builds a real transport: swap in the mock, no network.
    client._http._transport = httpx.MockTransport(handler)

    with pytest.raises(ConfigurationError):
        client.retrieve("charges", "ch_1")

    assert secrets.invalidated == ["arn:stripe-api"]
    (request,) = seen
    assert str(request.url) == "http://127.0.0.1:9/v1/charges/ch_1"
    assert request.headers["Authorization"] == "Bearer rk_live_abc"

    # A key rotated to the other mode is refused before any call.
    secrets.key = "sk_test_abc"
    with pytest.raises(ConfigurationError, match="test-mode key"):
        client.retrieve("charges", "ch_1")
    assert len(seen) == 1

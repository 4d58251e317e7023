"""The ingest side's refusals: one JSON error shape that never echoes what was sent; bounded
parsing; every 5xx counted as ``ServerError``; one 503 for every server-side cause."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from partnero_bridge.api import (
    MAX_JSON_DEPTH,
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    ApiError,
    json_depth_exceeds,
    json_response,
    parse_json_object,
    retry_later_on_failure,
    unavailable,
    validation_error,
)
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.handlers import new_resolver
from partnero_bridge.observability import metrics
from partnero_bridge.signup.models import SignupRequest

pytestmark = pytest.mark.unit

SECRET_VALUE = "SECRET-VALUE-123"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param("", "empty_body", id="empty"),
        pytest.param("   \n\t ", "empty_body", id="whitespace"),
        pytest.param("{", "malformed_json", id="truncated"),
        pytest.param("{'email': 'a@b.co'}", "malformed_json", id="single-quotes"),
        pytest.param('{"email": "a@b.co",}', "malformed_json", id="trailing-comma"),
        pytest.param("email=a@b.co", "malformed_json", id="form-encoded"),
        pytest.param("[]", "malformed_json", id="empty-array"),
        pytest.param('[{"email": "a@b.co"}]', "malformed_json", id="array"),
        pytest.param('"text"', "malformed_json", id="string"),
        pytest.param("42", "malformed_json", id="number"),
        pytest.param("null", "malformed_json", id="null"),
        pytest.param("true", "malformed_json", id="boolean"),
        # Deeper than the JSON parser's stack: a 400, never a 500.
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, "malformed_json", id="deep-object"),
        pytest.param("[" * 100_000 + "]" * 100_000, "malformed_json", id="deep-array"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_a_400(raw: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw)

    error = caught.value
    assert error.status_code == 400
    assert error.code == code
    assert error.message
    assert error.body() == {"error": code, "message": error.message}


def test_array_refusal_says_an_object_is_expected() -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object("[1, 2]")

    assert "object" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("{}", {}, id="empty-object"),
        pytest.param('{"email": "a@b.co"}', {"email": "a@b.co"}, id="object"),
        pytest.param('  {"a": {"b": [1]}}  \n', {"a": {"b": [1]}}, id="padded-nested"),
    ],
)
def test_a_json_object_is_returned(raw: str, expected: dict[str, Any]) -> None:
    assert parse_json_object(raw) == expected


def test_malformed_json_message_does_not_echo_the_body() -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object('{"email": "' + SECRET_VALUE)

    assert SECRET_VALUE not in caught.value.message


def _validation_error_for(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ValidationError) as caught:
        SignupRequest.model_validate(body)
    return validation_error(caught.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"email": SECRET_VALUE}, "email", id="email-not-an-address"),
        pytest.param({"email": SECRET_VALUE * 30}, "email", id="email-too-long"),
        pytest.param({"email": "a@b.co", "key": SECRET_VALUE + " x"}, "key", id="key-space"),
        pytest.param(
            {"email": "a@b.co", "partner_key": SECRET_VALUE + "\nx"},
            "partner_key",
            id="partner-newline",
        ),
        pytest.param(
            {"email": "a@b.co", "referral_url": "ftp://" + SECRET_VALUE},
            "referral_url",
            id="url-scheme",
        ),
        pytest.param({"email": "a@b.co", "name": SECRET_VALUE * 10}, "name", id="name-long"),
        pytest.param({"email": "a@b.co", "tags": SECRET_VALUE}, "tags", id="tags-not-list"),
        pytest.param({"email": "a@b.co", "tags": [SECRET_VALUE * 5]}, "tags.0", id="tag-long"),
        pytest.param({"email": "a@b.co", "extra": SECRET_VALUE}, "extra", id="unknown-field-value"),
        pytest.param({"email": "a@b.co", "key": {"v": SECRET_VALUE}}, "key", id="key-object"),
    ],
)
def test_validation_error_never_echoes_the_submitted_value(
    body: dict[str, Any], field: str
) -> None:
    error = _validation_error_for(body)

    assert error.status_code == 422
    assert error.code == "invalid_request"
    assert error.fields is not None
    assert [f["field"] for f in error.fields] == [field]
    assert field in error.message
    everything = json.dumps(error.body()) + str(error) + error.message
    assert SECRET_VALUE not in everything


def test_validation_error_body_shape() -> None:
    error = _validation_error_for({"email": "nope", "colour": "red"})

    body = error.body()
    assert body["error"] == "invalid_request"
    assert set(body) == {"error", "message", "fields"}
    assert sorted(f["field"] for f in body["fields"]) == ["colour", "email"]
    for entry in body["fields"]:
        assert set(entry) == {"field", "problem"}
        assert entry["problem"]
        assert f"{entry['field']}: {entry['problem']}" in body["message"]


def test_api_error_without_fields_leaves_them_out_of_the_body() -> None:
    error = ApiError(413, "too_large", "the request body is too large", headers={"X-A": "1"})

    assert error.body() == {"error": "too_large", "message": "the request body is too large"}
    assert error.headers == {"X-A": "1"}
    assert str(error) == "the request body is too large"


# --- bounded parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "deeper"),
    [
        pytest.param('{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH, False, id="at-limit"),
        pytest.param("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True, id="one-over"),
        pytest.param('{"a":' * 10_000 + "1" + "}" * 10_000, True, id="10000-deep"),
        pytest.param("[" * 10_000, True, id="10000-unclosed"),
        # Brackets inside strings are text, not nesting (escaped quotes included).
        pytest.param('{"a": "' + "[{" * 10_000 + '"}', False, id="brackets-in-a-string"),
        pytest.param('{"a": "\\"' + "[" * 10_000 + '"}', False, id="after-an-escaped-quote"),
        pytest.param('{"a": [' + "[], " * 10_000 + "[]]}", False, id="wide-not-deep"),
    ],
)
def test_depth_is_counted_before_parsing(raw: str, deeper: bool) -> None:
    assert json_depth_exceeds(raw, MAX_JSON_DEPTH) is deeper


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('"' + '\\"' * 200_000 + "\\", id="unterminated-escapes"),
        pytest.param('"' * 400_000, id="quotes"),
        pytest.param("\\" * 400_000, id="backslashes"),
        pytest.param('["' + "[" * 400_000, id="unterminated-string-of-brackets"),
    ],
)
def test_depth_scan_is_linear_on_hostile_text(raw: str) -> None:
    started = time.perf_counter()
    json_depth_exceeds(raw + "[" * 100, MAX_JSON_DEPTH)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"a": "\\ud800"}', id="lone-high-surrogate"),
        pytest.param('{"\\udfff": 1}', id="lone-low-surrogate-key"),
        pytest.param('{"a": ["x\\uDBFFy"]}', id="nested-upper-case"),
    ],
)
def test_a_string_that_is_not_text_is_a_400(raw: str) -> None:
    # Valid JSON, but no later step could encode it (a signature check, the queue, a log).
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw)
    assert (caught.value.status_code, caught.value.code) == (400, "malformed_json")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param('{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}, id="surrogate-pair"),
        pytest.param('{"a": "\\\\ud800"}', {"a": "\\ud800"}, id="escaped-backslash"),
    ],
)
def test_surrogate_pairs_and_escaped_backslashes_are_text(raw: str, expected: Any) -> None:
    assert parse_json_object(raw) == expected


# --- the resolver: every 5xx counted, one 503 for every server-side cause -----------------

SERVER_SIDE_DETAIL = "STRIPE_SECRET_ARN field webhook_secrets"


def _event(headers: dict[str, str] | None = None, cookies: list[str] | None = None) -> Any:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /x",
        "rawPath": "/x",
        "rawQueryString": "",
        "headers": headers or {},
        "body": "{}",
        "isBase64Encoded": False,
        "requestContext": {
            "http": {"method": "POST", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
            "requestId": "r",
            "routeKey": "POST /x",
            "stage": "$default",
        },
    }
    if cookies is not None:
        event["cookies"] = cookies
    return event


def _answer(
    raised: Exception | None,
    event: dict[str, Any] | None = None,
    cors: Callable[[Any], dict[str, str]] | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    app = new_resolver(cors) if cors is not None else new_resolver()

    @app.post("/x")
    def route() -> Any:
        if raised is not None:
            raise raised
        return json_response(200, {"status": "accepted"})

    result = app.resolve(event or _event(), SimpleNamespace())
    return result["statusCode"], result.get("headers") or {}, json.loads(result["body"])


@pytest.fixture
def server_errors() -> Iterator[Callable[[], int]]:
    metrics.clear_metrics()

    def count() -> int:
        return int(sum(metrics.metric_set.get("ServerError", {}).get("Value", [])))

    yield count
    metrics.clear_metrics()


UNIFORM = {"error": UNAVAILABLE_CODE, "message": UNAVAILABLE_MESSAGE}


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(ConfigurationError(f"invalid settings: {SERVER_SIDE_DETAIL}"), id="settings"),
        pytest.param(ConfigurationError("secret could not be read"), id="secret-unreadable"),
        pytest.param(unavailable(), id="raised-by-ingest"),
    ],
)
def test_every_server_side_cause_is_the_same_503_and_counted(
    cause: Exception, server_errors: Callable[[], int]
) -> None:
    status, headers, body = _answer(cause)

    assert (status, body) == (503, UNIFORM)
    assert headers["Retry-After"] == "5"
    assert SERVER_SIDE_DETAIL not in json.dumps(body)
    assert server_errors() == 1


def test_queueing_that_fails_is_the_same_503(server_errors: Callable[[], int]) -> None:
    def failing() -> None:
        with retry_later_on_failure("Stripe event"):
            raise OSError(f"connection refused: {SERVER_SIDE_DETAIL}")

    with pytest.raises(ApiError) as caught:
        failing()

    assert (caught.value.status_code, caught.value.body()) == (503, UNIFORM)


def test_a_bug_is_a_500_and_counted(server_errors: Callable[[], int]) -> None:
    status, _headers, body = _answer(KeyError(SERVER_SIDE_DETAIL))

    assert (status, body["error"]) == (500, "internal_error")
    assert SERVER_SIDE_DETAIL not in json.dumps(body)
    assert server_errors() == 1


@pytest.mark.parametrize(
    "raised",
    [
        pytest.param(None, id="accepted"),
        pytest.param(ApiError(401, "invalid_signature", "no"), id="refused-401"),
        pytest.param(ApiError(413, "body_too_large", "no"), id="refused-413"),
        pytest.param(ApiError(429, "rate_limited", "no"), id="refused-429"),
    ],
)
def test_answers_below_500_are_not_server_errors(
    raised: Exception | None, server_errors: Callable[[], int]
) -> None:
    status, _headers, _body = _answer(raised)

    assert status < 500
    assert server_errors() == 0


def test_an_error_answer_survives_a_failing_cors_policy(server_errors: Callable[[], int]) -> None:
    def broken_cors(_event: Any) -> dict[str, str]:
        raise ConfigurationError("invalid settings: SIGNUP_ALLOWED_ORIGINS")

    status, headers, body = _answer(ConfigurationError("x"), cors=broken_cors)

    assert (status, body) == (503, UNIFORM)
    assert "Access-Control-Allow-Origin" not in headers
    assert server_errors() == 1


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        pytest.param({"stripe-signature": "t=1,v1=\ud800"}, None, id="header-value"),
        pytest.param({"x-\udcff": "1"}, None, id="header-name"),
        pytest.param({}, ["partner=\ud83d"], id="cookie"),
    ],
)
def test_headers_or_cookies_that_are_not_text_are_a_400_before_the_route(
    headers: dict[str, str], cookies: list[str] | None, server_errors: Callable[[], int]
) -> None:
    status, _headers, body = _answer(KeyError("the route must not run"), _event(headers, cookies))

    assert (status, body["error"]) == (400, "malformed_headers")
    assert server_errors() == 0


def test_unknown_routes_are_a_json_404() -> None:
    app = new_resolver()
    event = _event()
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nowhere"

    result = app.resolve(event, SimpleNamespace())

    assert result["statusCode"] == 404
    assert json.loads(result["body"])["error"] == "not_found"

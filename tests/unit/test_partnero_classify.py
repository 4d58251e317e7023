"""What every Partnero answer means for a delivery, and what the HTTP client adds.

``classify_answer`` decides whether a delivery is done (an outcome), retried later or
dead-lettered, so each branch is pinned here with the answers Partnero documents. The client
tests use ``httpx.MockTransport``: no network.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from partnero_bridge.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RetryableError,
)
from partnero_bridge.partnero import (
    AnswerMeaning,
    PartneroClient,
    classify_answer,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

API_KEY = "pk_live_TOPSECRET_0123456789"
BASE_URL = "https://partnero.test/v1"

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _headers(**values: str) -> httpx.Headers:
    return httpx.Headers({name.replace("_", "-"): value for name, value in values.items()})


# --- 2xx ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected_data"),
    [
        pytest.param(
            201,
            _json({"data": {"key": "cus_1", "email": "a@b.co"}, "status": 1}),
            {"key": "cus_1", "email": "a@b.co"},
            id="201-data-envelope",
        ),
        pytest.param(200, _json({"data": [1, 2], "status": 1}), [1, 2], id="200-list-data"),
        pytest.param(200, _json({"status": 1}), None, id="200-envelope-without-data"),
        pytest.param(204, b"", None, id="204-empty-delete"),
        pytest.param(200, b"", None, id="200-empty-delete"),
    ],
)
def test_success_is_ok_and_unwraps_the_data_envelope(
    status: int, body: bytes, expected_data: Any
) -> None:
    answer = classify_answer(status, body, _headers())

    assert answer.meaning is AnswerMeaning.OK
    assert answer.status_code == status
    assert answer.data == expected_data


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html><body>Welcome</body></html>", id="html"),
        pytest.param(b"OK", id="plain-text"),
        pytest.param(b'{"data": ', id="truncated-json"),
    ],
)
def test_success_with_a_body_that_is_not_json_is_retried(body: bytes) -> None:
    # A proxy or captive portal answering 200 must not be mistaken for Partnero's "done".
    with pytest.raises(RetryableError) as caught:
        classify_answer(200, body, _headers())

    assert type(caught.value) is RetryableError
    assert "not JSON" in caught.value.reason


# --- outcomes that are not failures ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "meaning"),
    [
        pytest.param(
            400, {"message": "Invalid partner key"}, AnswerMeaning.NOT_REFERRED, id="400-partner"
        ),
        pytest.param(
            400,
            {"message": "Invalid partner key", "status": 0},
            AnswerMeaning.NOT_REFERRED,
            id="400-partner-with-status",
        ),
        pytest.param(
            422,
            {"message": "Customer with this key already exists"},
            AnswerMeaning.DUPLICATE,
            id="422-duplicate-customer",
        ),
        pytest.param(
            422,
            {"message": "The key has already been taken."},
            AnswerMeaning.DUPLICATE,
            id="422-key-taken",
        ),
        pytest.param(
            422, {"message": "Customer not found"}, AnswerMeaning.NOT_REFERRED, id="422-not-found"
        ),
        pytest.param(
            422,
            {"message": "Customer does not exist"},
            AnswerMeaning.NOT_REFERRED,
            id="422-does-not-exist",
        ),
        pytest.param(
            422,
            {"message": "Customer could not be found"},
            AnswerMeaning.NOT_REFERRED,
            id="422-could-not-be-found",
        ),
        pytest.param(
            422, {"message": "Unknown customer"}, AnswerMeaning.NOT_REFERRED, id="422-unknown"
        ),
        pytest.param(
            422, {"message": "No such customer"}, AnswerMeaning.NOT_REFERRED, id="422-no-such"
        ),
        pytest.param(
            422,
            {
                "message": "The given data was invalid.",
                "errors": {"customer.key": ["The selected customer.key is invalid."]},
            },
            AnswerMeaning.NOT_REFERRED,
            id="422-laravel-exists-rule-on-customer",
        ),
    ],
)
def test_answers_that_are_outcomes_not_failures(
    status: int, body: dict[str, Any], meaning: AnswerMeaning
) -> None:
    answer = classify_answer(status, _json(body), _headers())

    assert answer.meaning is meaning
    assert answer.status_code == status
    assert str(body["message"]) in answer.message


@pytest.mark.parametrize("body", [b"", _json({"message": "Not found"})])
def test_404_on_a_keyed_resource_is_not_found(body: bytes) -> None:
    answer = classify_answer(404, body, _headers(), keyed_resource=True)

    assert answer.meaning is AnswerMeaning.NOT_FOUND
    assert answer.status_code == 404


# --- failures ----------------------------------------------------------------------------


def test_400_not_about_the_partner_is_permanent_and_keeps_partnero_message() -> None:
    body = _json({"message": "Amount must be positive"})

    with pytest.raises(PermanentError) as caught:
        classify_answer(400, body, _headers())

    assert "400" in caught.value.reason
    assert "Amount must be positive" in caught.value.reason


@pytest.mark.parametrize(
    ("errors", "field"),
    [
        pytest.param({"email": ["The email must be a valid email address."]}, "email", id="email"),
        pytest.param(
            {"amount": ["The amount must be a number.", "The amount must be at least 0."]},
            "amount",
            id="amount-two-problems",
        ),
        pytest.param({"partner.key": "The partner.key is required."}, "partner.key", id="str"),
    ],
)
def test_422_validation_is_permanent_and_names_the_field(
    errors: dict[str, Any], field: str
) -> None:
    body = _json({"message": "The given data was invalid.", "errors": errors})

    with pytest.raises(PermanentError) as caught:
        classify_answer(422, body, _headers())

    reason = caught.value.reason
    assert "422" in reason
    assert "The given data was invalid." in reason
    assert f"{field}:" in reason
    problems = errors[field] if isinstance(errors[field], list) else [errors[field]]
    for problem in problems:
        assert problem in reason


def test_422_validation_of_other_fields_is_not_mistaken_for_an_unknown_customer() -> None:
    body = _json(
        {
            "message": "The given data was invalid.",
            "errors": {
                "customer.key": ["The customer.key may not be greater than 255 characters."],
                "amount_units": ["The selected amount units is invalid."],
            },
        }
    )

    with pytest.raises(PermanentError):
        classify_answer(422, body, _headers())


def test_long_messages_are_shortened() -> None:
    body = _json({"message": "x" * 5000})

    with pytest.raises(PermanentError) as caught:
        classify_answer(400, body, _headers())

    assert len(caught.value.reason) < 600


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("keyed", [False, True])
def test_refused_api_key_is_a_configuration_error_that_is_retried(status: int, keyed: bool) -> None:
    body = _json({"message": "Unauthenticated."})

    with pytest.raises(ConfigurationError) as caught:
        classify_answer(status, body, _headers(), keyed_resource=keyed)

    assert isinstance(caught.value, RetryableError)
    assert caught.value.kind == "configuration"
    assert str(status) in caught.value.reason
    assert "Unauthenticated." in caught.value.reason


def test_404_on_a_collection_points_at_the_base_url() -> None:
    with pytest.raises(ConfigurationError) as caught:
        classify_answer(404, _json({"message": "Not Found"}), _headers())

    assert isinstance(caught.value, RetryableError)
    assert "PARTNERO_API_URL" in caught.value.reason


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    with pytest.raises(RetryableError) as caught:
        classify_answer(status, _json({"message": "Slow down"}), _headers())

    assert type(caught.value) is RetryableError
    assert str(status) in caught.value.reason
    assert "Slow down" in caught.value.reason
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [502, 503])
def test_transient_statuses_with_a_non_json_body_are_retried(status: int) -> None:
    with pytest.raises(RetryableError) as caught:
        classify_answer(status, b"<html>Bad Gateway</html>", _headers())

    assert type(caught.value) is RetryableError


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("30", 30.0), ("0", 0.0), ("2.5", 2.5), (" 7 ", 7.0)],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_travel_with_the_error(
    status: int, retry_after: str, expected: float
) -> None:
    with pytest.raises(RetryableError) as caught:
        classify_answer(status, _json({"message": "Too Many"}), _headers(retry_after=retry_after))

    assert caught.value.retry_after == expected


def test_retry_after_header_name_is_case_insensitive() -> None:
    headers = httpx.Headers({"RETRY-AFTER": "12"})

    with pytest.raises(RetryableError) as caught:
        classify_answer(429, b"", headers)

    assert caught.value.retry_after == 12.0


def test_retry_after_as_an_http_date_in_the_future() -> None:
    when = datetime.fromtimestamp(time.time(), UTC) + timedelta(seconds=120)

    with pytest.raises(RetryableError) as caught:
        classify_answer(503, b"", _headers(retry_after=format_datetime(when, usegmt=True)))

    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 121


def test_retry_after_as_an_http_date_in_the_past_means_now() -> None:
    with pytest.raises(RetryableError) as caught:
        classify_answer(429, b"", _headers(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))

    assert caught.value.retry_after == 0.0


@pytest.mark.parametrize("status", [402, 405, 409, 410, 413, 415])
def test_other_client_errors_are_permanent(status: int) -> None:
    with pytest.raises(PermanentError) as caught:
        classify_answer(status, _json({"message": "Nope"}), _headers(retry_after="5"))

    assert str(status) in caught.value.reason
    assert "Nope" in caught.value.reason
    assert not isinstance(caught.value, RetryableError)


def test_permanent_error_without_a_message_says_so() -> None:
    with pytest.raises(PermanentError) as caught:
        classify_answer(405, b"", _headers())

    assert "no message" in caught.value.reason


# --- parse_retry_after -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-clamped"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("Fri, 14 Mar 2025 12:01:30 GMT", 90.0, id="http-date-future"),
        pytest.param("Fri, 14 Mar 2025 11:00:00 GMT", 0.0, id="http-date-past"),
        pytest.param("Fri, 14 Mar 2025 12:00:00 GMT", 0.0, id="http-date-now"),
        pytest.param("Fri, 14 Mar 2025 12:00:10 +0000", 10.0, id="numeric-zone"),
        pytest.param("Fri, 14 Mar 2025 14:00:10 +0200", 10.0, id="other-zone"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Fri, 99 Foo 2025", None, id="broken-date"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW.timestamp()) == expected


@pytest.mark.parametrize("value", ["inf", "1e400", "Infinity"])
def test_parse_retry_after_never_returns_an_infinite_wait(value: str) -> None:
    parsed = parse_retry_after(value, now=NOW.timestamp())

    assert parsed is None or parsed < float("inf")


# --- PartneroClient over a mock transport ------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def _client(
    handler: Handler,
    *,
    api_key: Callable[[], str] = lambda: API_KEY,
    on_unauthorized: Callable[[], None] | None = None,
    base_url: str = BASE_URL,
) -> PartneroClient:
    return PartneroClient(
        base_url,
        api_key,
        timeout_seconds=2.0,
        on_unauthorized=on_unauthorized,
        transport=httpx.MockTransport(handler),
    )


def _assert_key_not_in(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error))
    assert API_KEY not in text
    assert API_KEY not in str(error)
    if isinstance(error, DeliveryError):
        assert API_KEY not in error.reason


@pytest.mark.parametrize("base_url", [BASE_URL, BASE_URL + "/"])
def test_client_sends_bearer_key_and_json_body(base_url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"data": {"key": "cus_1"}, "status": 1})

    body = {"partner": {"key": "acme"}, "key": "cus_1", "email": "a@b.co"}
    answer = _client(handler, base_url=base_url).create_customer(body)

    assert answer.meaning is AnswerMeaning.OK
    assert answer.data == {"key": "cus_1"}
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://partnero.test/v1/customers"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert json.loads(request.content) == body


def test_client_reads_the_key_for_every_request() -> None:
    # After a rotation the next request must carry the new key, not a cached one.
    keys = iter(["first-key", "second-key"])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"data": {}})

    client = _client(handler, api_key=lambda: next(keys))
    client.create_transaction({"key": "t1"})
    client.create_transaction({"key": "t2"})

    assert seen == ["Bearer first-key", "Bearer second-key"]


def test_client_escapes_keys_in_the_path_and_treats_404_as_not_found() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"message": "Not found"})

    client = _client(handler)
    get_answer = client.get_transaction("order/42 #1")
    delete_answer = client.delete_transaction("order/42 #1")

    assert get_answer.meaning is AnswerMeaning.NOT_FOUND
    assert delete_answer.meaning is AnswerMeaning.NOT_FOUND
    assert [r.method for r in seen] == ["GET", "DELETE"]
    for request in seen:
        assert request.url.raw_path == b"/v1/transactions/order%2F42%20%231"
        assert request.content == b""


def test_client_delete_with_empty_answer_is_ok() -> None:
    client = _client(lambda request: httpx.Response(204))

    assert client.delete_transaction("t1").meaning is AnswerMeaning.OK


def test_client_404_on_a_collection_is_a_configuration_error() -> None:
    client = _client(lambda request: httpx.Response(404, json={"message": "Not Found"}))

    with pytest.raises(ConfigurationError) as caught:
        client.create_customer({"key": "c"})

    _assert_key_not_in(caught.value)


@pytest.mark.parametrize(
    ("exception", "words"),
    [
        pytest.param(httpx.ConnectTimeout, "in time", id="connect-timeout"),
        pytest.param(httpx.ReadTimeout, "in time", id="read-timeout"),
        pytest.param(httpx.PoolTimeout, "in time", id="pool-timeout"),
        pytest.param(httpx.ConnectError, "connection failed", id="connect-error"),
        pytest.param(httpx.RemoteProtocolError, "connection failed", id="protocol-error"),
        pytest.param(httpx.ReadError, "connection failed", id="read-error"),
    ],
)
def test_transport_errors_and_timeouts_are_retried(
    exception: type[httpx.TransportError], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception(f"failed while sending {request.headers['authorization']}", request=request)

    with pytest.raises(RetryableError) as caught:
        _client(handler).create_customer({"key": "c"})

    assert type(caught.value) is RetryableError
    assert words in caught.value.reason
    assert caught.value.__cause__ is None
    _assert_key_not_in(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, PermanentError),
        (401, ConfigurationError),
        (403, ConfigurationError),
        (405, PermanentError),
        (422, PermanentError),
        (429, RetryableError),
        (500, RetryableError),
    ],
)
def test_no_raised_error_contains_the_api_key(status: int, error_type: type[DeliveryError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "Something is wrong with this request"})

    with pytest.raises(error_type) as caught:
        _client(handler).create_transaction({"key": "t1", "amount": 1})

    _assert_key_not_in(caught.value)


def test_401_asks_for_a_fresh_key_once() -> None:
    calls: list[str] = []
    client = _client(
        lambda request: httpx.Response(401, json={"message": "Unauthenticated."}),
        on_unauthorized=lambda: calls.append("invalidate"),
    )

    with pytest.raises(ConfigurationError) as caught:
        client.create_customer({"key": "c"})

    assert calls == ["invalidate"]
    assert "401" in caught.value.reason
    _assert_key_not_in(caught.value)


@pytest.mark.parametrize("status", [403, 404, 429, 500])
def test_other_failures_do_not_ask_for_a_fresh_key(status: int) -> None:
    calls: list[str] = []
    client = _client(
        lambda request: httpx.Response(status, json={"message": "no"}),
        on_unauthorized=lambda: calls.append("invalidate"),
    )

    with pytest.raises(RetryableError):
        client.create_customer({"key": "c"})

    assert calls == []


def test_401_without_a_callback_still_raises_configuration_error() -> None:
    client = _client(lambda request: httpx.Response(401, json={"message": "Unauthenticated."}))

    with pytest.raises(ConfigurationError):
        client.create_customer({"key": "c"})


def test_client_outcomes_over_http() -> None:
    answers = {
        "customers": httpx.Response(400, json={"message": "Invalid partner key"}),
        "transactions": httpx.Response(
            422, json={"message": "Customer with this key already exists"}
        ),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return answers[request.url.path.rsplit("/", 1)[-1]]

    client = _client(handler)

    assert client.create_customer({"key": "c"}).meaning is AnswerMeaning.NOT_REFERRED
    assert client.create_transaction({"key": "t"}).meaning is AnswerMeaning.DUPLICATE

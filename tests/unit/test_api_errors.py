"""The ingest side's refusals: one JSON error shape that never echoes what was sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from partnero_bridge.api import ApiError, parse_json_object, validation_error
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

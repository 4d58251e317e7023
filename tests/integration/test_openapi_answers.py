"""The routes' OpenAPI description and their answers agree, and no route judges a body
before its signature: a wrong signature on a body its model refuses is answered as the
route answers a wrong signature (Ecwid signs two fields of the body, so its body is read
first: a body without them is its own 422 naming the fields), in the documented Error
shape, never Powertools' validation 422 (``{"statusCode": 422, "detail": [...]}``).

In-process against moto; the description is the one ``partnero-bridge openapi`` builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from partnero_bridge.ecwid.signature import SIGNATURE_HEADER as ECWID_SIGNATURE
from partnero_bridge_cli.openapi import build
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.signup import signed_signup
from tests.support.stripe import signed as stripe_signed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "PARTNERO_API_URL": "http://127.0.0.1:9/v1",  # never called: nothing is accepted
    "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
    "SIGNUP_HMAC_SECRET": "the-real-signup-secret",
    "ECWID_CLIENT_SECRET": "the-real-ecwid-secret",
    "ECWID_STORE_TOKENS": '{"1003": "tok"}',
    "STRIPE_WEBHOOK_SECRETS": "whsec_the_real_one",
    "STRIPE_LIVEMODE": "false",
}
JSON = {"content-type": "application/json"}
# (path, raw body, headers, the answer's status and code): each body breaks its model
# (a missing required field, a wrong type, an unknown field where the model forbids them).
BAD: list[Any] = [
    pytest.param(
        "/webhooks/stripe",
        *stripe_signed({"id": "", "type": 7, "object": "event"}, "whsec_someone_else"),
        400,
        "invalid_signature",
        id="stripe",
    ),
    pytest.param(
        "/signup",
        *signed_signup({"name": "no email", "favourite": "x"}, "someone-elses-secret"),
        401,
        "invalid_signature",
        id="signup-signed",
    ),
    pytest.param(
        "/signup",
        json.dumps({"name": "no email"}).encode(),
        JSON,
        401,
        "signature_required",
        id="signup-unsigned-no-origin",
    ),
    pytest.param(
        "/webhooks/ecwid",
        json.dumps({"storeId": "not-a-number", "eventType": "order.created"}).encode(),
        {**JSON, ECWID_SIGNATURE: "bm90IHRoZSBzaWduYXR1cmU="},
        422,
        "invalid_request",
        id="ecwid",
    ),
]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build(ROOT)


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessBridge]:
    with in_process_bridge(monkeypatch, ENV) as bridge:
        yield bridge


@pytest.mark.parametrize(("path", "raw", "headers", "status", "code"), BAD)
def test_a_wrong_signature_is_answered_before_any_body_model(
    bridge: InProcessBridge,
    spec: dict[str, Any],
    path: str,
    raw: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    documented = spec["paths"][path]["post"]["responses"]
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Error"}

    answer = bridge.call("POST", path, raw, headers)

    assert (answer.status, answer.body["error"]) == (status, code), answer
    error = Draft202012Validator({**schema, "components": spec["components"]})
    assert not list(error.iter_errors(answer.body)), answer.body
    assert set(answer.body) <= {"error", "message", "fields"}
    if code == "invalid_request":
        assert {f["field"] for f in answer.body["fields"]} >= {"eventId", "storeId"}
    assert bridge.queue_depth(bridge.work_queue(path.rpartition("/")[2])) == 0

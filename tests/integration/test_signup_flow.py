"""Sign-up: from POST /signup to Partnero, with the functions in-process on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from partnero_bridge.signup import signature
from partnero_bridge_cli.local.aws import client
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import ROOT, ApiAnswer, InProcessBridge, in_process_bridge

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"
HMAC_SECRET = "test-signup-hmac-secret-9d2e"
JANE = {"email": "Jane.Doe@Example.com", "name": "Jane", "partner_key": "demo-partner"}


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "SIGNUP_ALLOWED_ORIGINS": f"{SHOP},http://localhost:8000",
        "SIGNUP_HMAC_SECRET": HMAC_SECRET,
        "BRIDGE_MAX_RECEIVES": "3",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def from_shop(
    bridge: InProcessBridge,
    body: bytes | str | dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> ApiAnswer:
    """``POST /signup`` as the shop's page sends it: unsigned, from its allowed origin."""
    return bridge.call("POST", "/signup", body, {"origin": SHOP, **(headers or {})})


def customer_posts(sandbox: PartneroSandbox) -> list[dict[str, object]]:
    return [r.body for r in sandbox.requests() if r.method == "POST" and r.path == "/v1/customers"]


def test_referred_signup_creates_one_partnero_customer(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    answer = from_shop(bridge, JANE)
    assert (answer.status, answer.body) == (202, {"status": "accepted"})
    assert bridge.queue_depth("SignupQueue") == 1

    bridge.drain("signup")

    [request] = sandbox.requests()
    assert (request.method, request.path) == ("POST", "/v1/customers")
    assert request.headers["authorization"] == f"Bearer {SANDBOX_KEY}"
    assert request.body == {
        "partner": {"key": "demo-partner"},
        "key": "jane.doe@example.com",
        "email": "Jane.Doe@Example.com",
        "name": "Jane",
    }
    assert [c["key"] for c in sandbox.customers()] == ["jane.doe@example.com"]
    entry = bridge.ledger_item("customer#jane.doe@example.com")
    assert entry is not None
    assert (entry["status"], entry["partner_key"]) == ("created", "demo-partner")


def test_repeated_identical_signup_sends_nothing_more(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    for _ in range(3):
        assert from_shop(bridge, JANE).status == 202
        bridge.drain("signup")
    assert len(customer_posts(sandbox)) == 1
    assert bridge.messages("SignupDeadLetterQueue") == []


def test_same_customer_through_another_partner_stays_one_customer(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    from_shop(bridge, JANE)
    from_shop(bridge, {**JANE, "partner_key": "acme"})
    bridge.drain("signup")
    # Partnero refuses the second key (422 duplicate): an outcome, not a failure.
    assert len(sandbox.customers()) == 1
    assert bridge.messages("SignupDeadLetterQueue") == []


def test_partner_key_from_cookie(bridge: InProcessBridge, sandbox: PartneroSandbox) -> None:
    body = {"email": "sam@example.com"}
    answer = from_shop(bridge, body, {"cookie": "theme=dark; partnero_partner=acme"})
    assert answer.status == 202
    bridge.drain("signup")
    assert customer_posts(sandbox) == [
        {"partner": {"key": "acme"}, "key": "sam@example.com", "email": "sam@example.com"}
    ]


def test_unreferred_signup_is_accepted_and_sends_nothing(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    answer = from_shop(bridge, {"email": "nobody@example.com"})
    assert (answer.status, answer.body) == (202, {"status": "accepted"})
    assert bridge.queue_depth("SignupQueue") == 0
    assert sandbox.requests() == []


def test_invalid_partner_key_is_an_outcome_and_looks_the_same_to_the_caller(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    valid = from_shop(bridge, JANE)
    invalid = from_shop(
        bridge, {**JANE, "email": "x@example.com", "partner_key": "no-such-partner"}
    )
    assert (invalid.status, invalid.body) == (valid.status, valid.body)
    bridge.drain("signup")
    assert len(customer_posts(sandbox)) == 2
    assert [c["key"] for c in sandbox.customers()] == ["jane.doe@example.com"]
    entry = bridge.ledger_item("customer#x@example.com")
    assert entry is not None
    assert entry["status"] == "not_referred"
    assert bridge.messages("SignupDeadLetterQueue") == []


def test_partnero_failing_lands_in_dlq_with_request_and_last_error(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    sandbox.inject_fault(Fault(status=500, count=-1))
    from_shop(bridge, JANE)
    bridge.drain("signup")

    assert len(customer_posts(sandbox)) == 3  # BRIDGE_MAX_RECEIVES
    [dead] = bridge.messages("SignupDeadLetterQueue")
    envelope = json.loads(dead["Body"])
    assert envelope["source"] == "signup"
    assert envelope["payload"]["customer_key"] == "jane.doe@example.com"
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert "500" in attributes["error"]
    assert attributes["error_kind"] == "retryable"
    assert attributes["receive_count"] == "3"
    assert attributes["delivery_id"] == envelope["delivery_id"]

    # Once Partnero is back, replaying the same body processes it exactly once.
    sandbox.clear_faults()
    bridge.sqs.send_message(QueueUrl=bridge.queue_url("SignupQueue"), MessageBody=dead["Body"])
    bridge.drain("signup")
    assert [c["key"] for c in sandbox.customers()] == ["jane.doe@example.com"]


def test_request_partnero_rejects_as_invalid_is_dead_lettered_at_once(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    sandbox.inject_fault(Fault(status=422, count=1))
    from_shop(bridge, JANE)
    bridge.drain("signup")
    assert len(customer_posts(sandbox)) == 1
    [dead] = bridge.messages("SignupDeadLetterQueue")
    assert dead["MessageAttributes"]["error_kind"]["StringValue"] == "permanent"


def test_wrong_partnero_key_is_retried_as_configuration_error(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    # The bridge reads the key from Secrets Manager: put a wrong one there.
    client("secretsmanager", None).put_secret_value(  # type: ignore[arg-type]
        SecretId=bridge.resources.refs["PartneroSecret"],
        SecretString=json.dumps({"api_key": "wrong"}),
    )
    from_shop(bridge, JANE)
    bridge.drain("signup")
    [dead] = bridge.messages("SignupDeadLetterQueue")
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error_kind"] == "configuration"
    assert "401" in attributes["error"]
    assert "wrong" not in attributes["error"]
    assert sandbox.customers() == []


def test_retry_after_is_honoured_then_processed_once(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    sandbox.inject_fault(Fault(status=429, retry_after="1", count=1))
    from_shop(bridge, JANE)
    bridge.drain("signup")
    statuses = [r.status for r in sandbox.requests()]
    assert statuses == [429, 200]
    assert len(sandbox.customers()) == 1


# -- refusals: each is a 4xx JSON naming the problem, and nothing is queued ----------------


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ("{not json", 400, "malformed_json", None),
        ("", 400, "empty_body", None),
        ("[1, 2]", 400, "malformed_json", None),
        (json.dumps({"name": "Jane"}), 422, "invalid_request", "email"),
        (json.dumps({"email": "not-an-email"}), 422, "invalid_request", "email"),
        (
            json.dumps({"email": "a@b.co", "partner_key": "has space"}),
            422,
            "invalid_request",
            "partner_key",
        ),
        (
            json.dumps({"email": "a@b.co", "referral_url": "javascript:alert(1)"}),
            422,
            "invalid_request",
            "referral_url",
        ),
        (json.dumps({"email": "a@b.co", "favourite": "x"}), 422, "invalid_request", "favourite"),
        (json.dumps({"email": "a@b.co", "name": "x" * 5000}), 413, "body_too_large", None),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    bridge: InProcessBridge,
    sandbox: PartneroSandbox,
    body: str,
    status: int,
    error: str,
    field: str | None,
) -> None:
    answer = from_shop(bridge, body)
    assert answer.status == status
    assert answer.body["error"] == error
    assert answer.body["message"]
    if field:
        assert field in [f["field"] for f in answer.body["fields"]]
    assert bridge.queue_depth("SignupQueue") == 0
    assert sandbox.requests() == []


def test_form_encoded_body_is_refused(bridge: InProcessBridge) -> None:
    answer = from_shop(
        bridge, "email=a%40b.co", {"content-type": "application/x-www-form-urlencoded"}
    )
    assert (answer.status, answer.body["error"]) == (415, "unsupported_media_type")
    assert bridge.queue_depth("SignupQueue") == 0


def test_preflight_from_allowed_origin(bridge: InProcessBridge) -> None:
    answer = bridge.call(
        "OPTIONS",
        "/signup",
        None,
        {
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"]


def test_preflight_and_post_from_other_origin_are_refused(bridge: InProcessBridge) -> None:
    evil = "https://evil.example"
    preflight = bridge.call(
        "OPTIONS", "/signup", None, {"origin": evil, "access-control-request-method": "POST"}
    )
    assert (preflight.status, preflight.body["error"]) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in preflight.headers
    post = bridge.call("POST", "/signup", JANE, {"origin": evil})
    assert post.status == 403
    assert bridge.queue_depth("SignupQueue") == 0


def test_allowed_origin_gets_cors_headers_on_success_and_errors(bridge: InProcessBridge) -> None:
    ok = bridge.call("POST", "/signup", JANE, {"origin": SHOP})
    assert (ok.status, ok.headers["access-control-allow-origin"]) == (202, SHOP)
    bad = bridge.call("POST", "/signup", {"email": "nope"}, {"origin": SHOP})
    assert (bad.status, bad.headers["access-control-allow-origin"]) == (422, SHOP)


def test_signed_server_call_is_trusted(bridge: InProcessBridge) -> None:
    raw = json.dumps(JANE).encode()
    answer = bridge.call(
        "POST", "/signup", raw, {signature.SIGNATURE_HEADER: signature.sign(HMAC_SECRET, raw)}
    )
    assert answer.status == 202
    [message] = bridge.messages("SignupQueue")
    assert json.loads(message["Body"])["payload"]["trusted"] is True


def test_bad_signature_is_refused(bridge: InProcessBridge) -> None:
    raw = json.dumps(JANE).encode()
    answer = bridge.call(
        "POST", "/signup", raw, {signature.SIGNATURE_HEADER: signature.sign("not-the-secret", raw)}
    )
    assert (answer.status, answer.body["error"]) == (401, "invalid_signature")
    assert HMAC_SECRET not in json.dumps(answer.body)
    assert bridge.queue_depth("SignupQueue") == 0


def test_unsigned_call_without_a_browser_origin_is_refused(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    # What `curl` sends: it would otherwise create a customer for any email and partner.
    answer = bridge.call("POST", "/signup", JANE)
    assert (answer.status, answer.body["error"]) == (401, "signature_required")
    assert bridge.queue_depth("SignupQueue") == 0
    assert sandbox.requests() == []


def test_queue_unavailable_at_ingest_is_a_503_not_a_202(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_shop(bridge, {"email": "warmup@example.com"})  # activate the function
    bridge.sqs.delete_queue(QueueUrl=bridge.queue_url("SignupQueue"))
    answer = from_shop(bridge, JANE)
    assert (answer.status, answer.body["error"]) == (503, "temporarily_unavailable")


def test_sample_events_run_through_the_function(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """events/signup/*.json are valid input for the function (and for sam local invoke -e)."""
    events = ROOT / "events" / "signup"
    api = bridge.invoke(
        "SignupIngestFunction", json.loads((events / "api-post-signup.json").read_text())
    )
    assert api.payload["statusCode"] == 202
    assert bridge.queue_depth("SignupQueue") == 1
    preflight = bridge.invoke(
        "SignupIngestFunction", json.loads((events / "api-preflight.json").read_text())
    )
    assert preflight.payload["statusCode"] == 204

    batch = bridge.invoke(
        "SignupProcessFunction", json.loads((events / "sqs-batch.json").read_text())
    )
    assert batch.payload == {"batchItemFailures": []}
    assert [c["key"] for c in sandbox.customers()] == ["jane@example.com"]


def test_a_repeated_delivery_is_logged_and_counted_as_a_duplicate(
    bridge: InProcessBridge,
    sandbox: PartneroSandbox,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from_shop(bridge, JANE)
    bridge.drain("signup")
    capsys.readouterr()
    caplog.clear()
    from_shop(bridge, JANE)
    bridge.drain("signup")
    out = capsys.readouterr().out  # metrics (EMF) are printed
    assert "duplicate delivery: already processed" in caplog.text
    assert '"Duplicate":[1.0]' in out
    assert '"Processed"' not in out

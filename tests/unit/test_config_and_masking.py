"""Settings from the environment, PII masking for logs, and the queue envelope on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from partnero_bridge.config import BridgeSettings
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError, RetryableError
from partnero_bridge.observability import mask_email, mask_key

pytestmark = pytest.mark.unit

# --- BridgeSettings ----------------------------------------------------------------------


def test_defaults_from_an_empty_environment() -> None:
    settings = BridgeSettings.from_environ({})

    assert settings.stage == "dev"
    # Retried for 72 h (like Stripe), at most hourly; receives only a high backstop.
    assert settings.retry_window_seconds == 72 * 3600
    assert settings.max_receives == 200
    assert settings.retry_base_seconds == 30
    assert settings.retry_max_seconds == 3600
    assert settings.idempotency_ttl_seconds == 4 * 24 * 3600
    assert settings.secret_cache_seconds == 300
    assert settings.partnero_api_url == "https://api.partnero.com/v1"
    assert settings.partnero_timeout_seconds == 8.0
    # Longer than the processing function's 120 s timeout: only a dead holder loses it.
    assert settings.ledger_lease_seconds == 150
    assert settings.signup_allowed_origins == []
    assert settings.signup_require_signature is False
    assert settings.signup_max_body_bytes == 4096
    assert settings.ecwid_api_url == "https://app.ecwid.com/api/v3"
    for arn in (
        settings.partnero_secret_arn,
        settings.signup_secret_arn,
        settings.ecwid_webhook_secret_arn,
        settings.ecwid_api_secret_arn,
        settings.stripe_secret_arn,
    ):
        assert arn == ""


def test_values_are_read_from_their_variables() -> None:
    settings = BridgeSettings.from_environ(
        {
            "BRIDGE_STAGE": "prod",
            "BRIDGE_MAX_RECEIVES": "8",
            "BRIDGE_RETRY_BASE_SECONDS": "0",
            "BRIDGE_RETRY_WINDOW_SECONDS": "40",
            "PARTNERO_TIMEOUT_SECONDS": "2.5",
            "SIGNUP_REQUIRE_SIGNATURE": "true",
            "PARTNERO_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:p",
            "UNRELATED_VARIABLE": "ignored",
        }
    )

    assert settings.stage == "prod"
    assert settings.max_receives == 8
    assert settings.retry_base_seconds == 0
    assert settings.retry_window_seconds == 40
    assert settings.partnero_timeout_seconds == 2.5
    assert settings.signup_require_signature is True
    assert settings.partnero_secret_arn.endswith(":secret:p")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("   ", [], id="blank"),
        pytest.param("https://a.example", ["https://a.example"], id="one"),
        pytest.param(
            "https://a.example,https://b.example",
            ["https://a.example", "https://b.example"],
            id="two",
        ),
        pytest.param(
            " https://a.example , https://b.example ",
            ["https://a.example", "https://b.example"],
            id="spaces",
        ),
        pytest.param(
            "https://a.example,,https://b.example,",
            ["https://a.example", "https://b.example"],
            id="empty-items",
        ),
        pytest.param("*", ["*"], id="star"),
    ],
)
def test_allowed_origins_from_csv(value: str, expected: list[str]) -> None:
    settings = BridgeSettings.from_environ({"SIGNUP_ALLOWED_ORIGINS": value})

    assert settings.signup_allowed_origins == expected


@pytest.mark.parametrize(
    ("variable", "attribute"),
    [
        ("PARTNERO_API_URL", "partnero_api_url"),
        ("ECWID_API_URL", "ecwid_api_url"),
        ("STRIPE_API_URL", "stripe_api_url"),
    ],
)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:4010/v1/", "http://127.0.0.1:4010/v1"),
        ("http://127.0.0.1:4010/v1", "http://127.0.0.1:4010/v1"),
        ("http://127.0.0.1:4010/v1//", "http://127.0.0.1:4010/v1"),
    ],
)
def test_trailing_slash_is_stripped_from_urls(
    variable: str, attribute: str, value: str, expected: str
) -> None:
    settings = BridgeSettings.from_environ({variable: value})

    assert getattr(settings, attribute) == expected


API_URLS = ["PARTNERO_API_URL", "ECWID_API_URL", "STRIPE_API_URL"]


@pytest.mark.parametrize("variable", API_URLS)
@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize(
    "value",
    [
        "https://api.example.com/v1",
        "HTTPS://api.example.com",
        "https://127.0.0.1:4010/v1",
    ],
)
def test_https_api_urls_are_accepted_everywhere(variable: str, stage: str, value: str) -> None:
    settings = BridgeSettings.from_environ({"BRIDGE_STAGE": stage, variable: value})

    assert settings.stage == stage


@pytest.mark.parametrize("variable", API_URLS)
@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1:4010/v1",
        "http://127.8.9.10:4010",
        "http://localhost:4020/api/v3",
        "http://[::1]:4030",
    ],
)
def test_plain_http_to_this_machine_is_for_the_local_stack_only(variable: str, value: str) -> None:
    assert BridgeSettings.from_environ({variable: value}) is not None

    with pytest.raises(ConfigurationError) as caught:
        BridgeSettings.from_environ({"BRIDGE_STAGE": "prod", variable: value})
    assert caught.value.reason == (
        f"invalid settings: {variable} must be https:// "
        "(http:// only to this machine and never for prod)"
    )


@pytest.mark.parametrize("variable", API_URLS)
@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize(
    "value",
    [
        # A deployed dev stack reaches nothing on its loopback: it needs HTTPS too.
        "http://partnero.example-SENSITIVE/v1",
        "http://10.0.0.5:8080",
        "http://user:token-SENSITIVE@127.0.0.1.example.com/v1",
        "ftp://127.0.0.1/SENSITIVE",
        "//api.example.com/SENSITIVE",
        "api.partnero.com/SENSITIVE",
        "https:///SENSITIVE-no-host",
        "http://[::1/SENSITIVE",
        "",
    ],
)
def test_other_api_urls_are_refused_naming_the_setting_not_the_url(
    variable: str, stage: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BridgeSettings.from_environ({"BRIDGE_STAGE": stage, variable: value})

    assert variable in caught.value.reason
    assert "https://" in caught.value.reason
    assert "SENSITIVE" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BRIDGE_MAX_RECEIVES", "lots-SENSITIVE-1"),
        ("BRIDGE_MAX_RECEIVES", "0"),
        ("BRIDGE_RETRY_BASE_SECONDS", "-1"),
        ("BRIDGE_RETRY_MAX_SECONDS", "99999"),
        ("BRIDGE_RETRY_WINDOW_SECONDS", "-1"),
        ("BRIDGE_RETRY_WINDOW_SECONDS", "a-week-SENSITIVE-7"),
        # Past 13.5 days the work queues (14 days) could drop a message still retrying.
        ("BRIDGE_RETRY_WINDOW_SECONDS", str(14 * 86400)),
        ("BRIDGE_MAX_RECEIVES", "1001"),
        ("BRIDGE_IDEMPOTENCY_TTL_SECONDS", "59"),
        ("PARTNERO_TIMEOUT_SECONDS", "ten-SENSITIVE-2"),
        ("PARTNERO_TIMEOUT_SECONDS", "0"),
        ("PARTNERO_TIMEOUT_SECONDS", "30"),
        ("SIGNUP_MAX_BODY_BYTES", "100"),
        ("SIGNUP_REQUIRE_SIGNATURE", "maybe-SENSITIVE-3"),
        ("ECWID_STORE_IDS", "1003,store-SENSITIVE-4"),
        ("ECWID_STORE_IDS", "-5"),
        ("ECWID_MAX_EVENT_AGE_SECONDS", "600"),
        ("ECWID_MAX_EVENT_AGE_SECONDS", "345600"),
        ("ECWID_PARKED_MAX_PER_STORE", "0"),
        ("BRIDGE_SIGNUP_WAIT_SECONDS", "-1"),
        ("BRIDGE_RETRIGGER_DAYS", "366"),
        ("PARTNERO_PROGRAM_CURRENCY", "EURO"),
        ("PARTNERO_CONVERTS_CURRENCIES", "perhaps-SENSITIVE-5"),
        ("STRIPE_TIMEOUT_SECONDS", "0"),
        ("STRIPE_TIMEOUT_SECONDS", "26"),
        ("STRIPE_TIMEOUT_SECONDS", "slow-SENSITIVE-6"),
    ],
)
def test_invalid_value_names_the_variable_not_the_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BridgeSettings.from_environ({variable: value})

    assert isinstance(caught.value, RetryableError)
    assert variable in str(caught.value)
    assert variable in caught.value.reason
    assert value not in str(caught.value)
    assert value not in caught.value.reason


def test_every_invalid_variable_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        BridgeSettings.from_environ({"BRIDGE_MAX_RECEIVES": "x", "SIGNUP_MAX_BODY_BYTES": "y"})

    assert "BRIDGE_MAX_RECEIVES" in caught.value.reason
    assert "SIGNUP_MAX_BODY_BYTES" in caught.value.reason


def test_stripe_api_defaults() -> None:
    settings = BridgeSettings.from_environ({})

    assert settings.stripe_api_url == "https://api.stripe.com"
    assert settings.stripe_api_secret_arn == ""
    # Short: a sale may read Stripe 7 times within the function's 120 s.
    assert settings.stripe_timeout_seconds == 5.0


def test_stripe_api_values_are_read_from_their_variables() -> None:
    settings = BridgeSettings.from_environ(
        {
            "STRIPE_API_URL": "http://127.0.0.1:4030",
            "STRIPE_API_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s",
            "STRIPE_TIMEOUT_SECONDS": "2.5",
        }
    )

    assert settings.stripe_api_url == "http://127.0.0.1:4030"
    assert settings.stripe_api_secret_arn.endswith(":secret:s")
    assert settings.stripe_timeout_seconds == 2.5


def test_ecwid_ingest_defaults() -> None:
    settings = BridgeSettings.from_environ({})

    assert settings.ecwid_store_ids == []
    # Longer than Ecwid's ~24 h of redeliveries, shorter than the 4-day idempotency TTL.
    assert settings.ecwid_max_event_age_seconds == 48 * 3600
    assert settings.ecwid_parked_max_per_store == 1000
    assert settings.ecwid_parked_retention_days == 14
    assert settings.parked_table == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("1003", ["1003"], id="one"),
        pytest.param(" 1003 , 2042,,", ["1003", "2042"], id="spaces-and-empty-items"),
        pytest.param("007", ["7"], id="leading-zeros-as-ecwid-sends-numbers"),
    ],
)
def test_store_ids_from_csv(value: str, expected: list[str]) -> None:
    assert BridgeSettings.from_environ({"ECWID_STORE_IDS": value}).ecwid_store_ids == expected


def test_event_age_must_stay_below_the_idempotency_ttl() -> None:
    environ = {"BRIDGE_IDEMPOTENCY_TTL_SECONDS": str(10 * 24 * 3600)}
    longer = BridgeSettings.from_environ({**environ, "ECWID_MAX_EVENT_AGE_SECONDS": "500000"})
    assert longer.ecwid_max_event_age_seconds == 500000

    with pytest.raises(ConfigurationError, match="ECWID_MAX_EVENT_AGE_SECONDS"):
        BridgeSettings.from_environ(
            {"BRIDGE_IDEMPOTENCY_TTL_SECONDS": "7200", "ECWID_MAX_EVENT_AGE_SECONDS": "7200"}
        )


def test_settings_for_the_money_core() -> None:
    defaults = BridgeSettings.from_environ({})
    assert defaults.signup_wait_seconds == 900
    assert defaults.retrigger_days == 30
    assert defaults.partnero_program_currency == ""
    assert defaults.partnero_converts_currencies is False
    assert (defaults.ecwid_queue_url, defaults.stripe_queue_url) == ("", "")

    settings = BridgeSettings.from_environ(
        {
            "BRIDGE_SIGNUP_WAIT_SECONDS": "60",
            "BRIDGE_RETRIGGER_DAYS": "7",
            "PARTNERO_PROGRAM_CURRENCY": "EUR",
            "PARTNERO_CONVERTS_CURRENCIES": "true",
            "BRIDGE_ECWID_QUEUE_URL": "https://sqs.example/ecwid",
            "BRIDGE_STRIPE_QUEUE_URL": "https://sqs.example/stripe",
        }
    )
    assert settings.signup_wait_seconds == 60
    assert settings.retrigger_days == 7
    assert settings.partnero_program_currency == "EUR"
    assert settings.partnero_converts_currencies is True
    assert settings.ecwid_queue_url.endswith("/ecwid")
    assert settings.stripe_queue_url.endswith("/stripe")


def test_settings_are_frozen() -> None:
    settings = BridgeSettings.from_environ({})

    with pytest.raises(ValidationError):
        settings.stage = "prod"  # type: ignore[misc]


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("jane.doe@example.com", "ja***@example.com", id="documented"),
        pytest.param("j@example.com", "***@example.com", id="one-letter"),
        pytest.param("@example.com", "***", id="no-local-part"),
        pytest.param("Jane+Shop@Sub.Example.COM", "Ja***@Sub.Example.COM", id="domain-kept"),
        pytest.param("not-an-email", "***", id="not-an-email"),
        pytest.param("jane@", "***", id="no-domain"),
        pytest.param("a@b@c.example", "***", id="two-ats"),
        pytest.param("jane doe@example.com", "***", id="space"),
        pytest.param("", "", id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_mask_email(value: str | None, expected: str | None) -> None:
    assert mask_email(value) == expected


def test_mask_email_hides_the_local_part() -> None:
    masked = mask_email("jane.doe.private@example.com")

    assert masked is not None
    assert "doe" not in masked
    assert "private" not in masked


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("jane.doe@example.com", "ja***@example.com", id="email-key"),
        pytest.param("cus_123", "cus_123", id="plain-key"),
        pytest.param("signup-abc", "signup-abc", id="delivery-like"),
        pytest.param("weird@", "***", id="at-but-not-email"),
        pytest.param(
            "customer#jane.doe@example.com", "customer#ja***@example.com", id="ledger-key"
        ),
        pytest.param("customer#cus_123", "customer#cus_123", id="ledger-key-not-email"),
        pytest.param("", "", id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_mask_key(value: str | None, expected: str | None) -> None:
    assert mask_key(value) == expected


# --- QueueEnvelope -----------------------------------------------------------------------

RECEIVED = datetime(2025, 3, 14, 12, 0, 0, 123456, tzinfo=UTC)
PAYLOAD = {
    "customer_key": "jane@example.com",
    "partner_key": "acme",
    "email": "Jane@Example.com",
    "tags": ["vip"],
    "nested": {"amount": 99.99, "count": 2, "flag": True, "nothing": None},
}


@pytest.mark.parametrize("source", list(Source))
def test_envelope_round_trips_through_json(source: Source) -> None:
    envelope = QueueEnvelope.new(
        source, "delivery-42", PAYLOAD, meta={"request_id": "r-1"}, received_at=RECEIVED
    )

    wire = envelope.model_dump_json()
    back = QueueEnvelope.model_validate_json(wire)

    assert back == envelope
    assert back.delivery_id == "delivery-42"
    assert back.payload == PAYLOAD
    assert back.source is source
    assert back.received_at == RECEIVED
    assert back.meta == {"request_id": "r-1"}
    assert json.loads(wire)["version"] == 1


def test_new_envelope_defaults() -> None:
    envelope = QueueEnvelope.new(Source.SIGNUP, "d-1", {})

    assert envelope.meta == {}
    assert envelope.received_at.tzinfo is not None
    assert envelope.version == 1


def _wire(**changes: object) -> str:
    body: dict[str, object] = {
        "version": 1,
        "source": "stripe",
        "delivery_id": "evt_1",
        "received_at": "2025-03-14T12:00:00Z",
        "payload": {"id": "evt_1"},
        "meta": {},
    }
    body.update(changes)
    return json.dumps(body)


def test_a_hand_written_envelope_is_read() -> None:
    envelope = QueueEnvelope.model_validate_json(_wire())

    assert envelope.source is Source.STRIPE
    assert envelope.delivery_id == "evt_1"
    assert envelope.payload == {"id": "evt_1"}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"unexpected": "x"}, id="unknown-field"),
        pytest.param({"version": 2}, id="other-version"),
        pytest.param({"source": "paypal"}, id="unknown-source"),
        pytest.param({"delivery_id": ""}, id="empty-delivery-id"),
        pytest.param({"delivery_id": "d" * 257}, id="delivery-id-too-long"),
        pytest.param({"payload": ["not", "an", "object"]}, id="payload-not-object"),
        pytest.param({"received_at": "yesterday"}, id="bad-date"),
    ],
)
def test_malformed_envelopes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        QueueEnvelope.model_validate_json(_wire(**changes))


def test_envelope_without_delivery_id_is_refused() -> None:
    body = json.loads(_wire())
    del body["delivery_id"]

    with pytest.raises(ValidationError):
        QueueEnvelope.model_validate_json(json.dumps(body))

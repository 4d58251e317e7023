"""Ecwid's webhook signature and the webhook envelope the bridge reads."""

from __future__ import annotations

import hmac
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from partnero_bridge.config import BridgeSettings
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.ecwid.secrets import ecwid_store_tokens, webhook_client_secrets
from partnero_bridge.ecwid.signature import SIGNATURE_HEADER, expected_signature, verify
from partnero_bridge.errors import ConfigurationError

pytestmark = pytest.mark.unit

# Published test vector (ecwid-webhooks.md, from the Go SDK's tests, recomputed with openssl).
SECRET = "test_client_secret"
EVENT_CREATED = 1234567
EVENT_ID = "80aece08-40e8-4145-8764-6c2f0d38678"
SIGNATURE = "ekmGPQc/IpCwO6woAiM+L8uvY6chew4n6JVQCiDrEVw="
WEBHOOKS = Path(__file__).resolve().parents[2] / "events" / "ecwid" / "webhooks"


# --- signature ---------------------------------------------------------------------------


@pytest.mark.parametrize("created", [EVENT_CREATED, str(EVENT_CREATED)], ids=["int", "str"])
def test_expected_signature_matches_the_published_vector(created: int | str) -> None:
    assert expected_signature(SECRET, created, EVENT_ID) == SIGNATURE


@pytest.mark.parametrize("created", [EVENT_CREATED, str(EVENT_CREATED)], ids=["int", "str"])
def test_verify_accepts_the_published_vector(created: int | str) -> None:
    assert verify(SIGNATURE, SECRET, created, EVENT_ID) is True


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f" {SIGNATURE} ", id="spaces"),
        pytest.param(f"{SIGNATURE}\n", id="newline"),
        pytest.param(f"\t{SIGNATURE}\r\n", id="tab-crlf"),
    ],
)
def test_verify_accepts_surrounding_whitespace(header: str) -> None:
    assert verify(header, SECRET, EVENT_CREATED, EVENT_ID) is True


@pytest.mark.parametrize(
    ("header", "secret", "created", "event_id"),
    [
        pytest.param(SIGNATURE, "other_client_secret", EVENT_CREATED, EVENT_ID, id="wrong-secret"),
        pytest.param(
            SIGNATURE, SECRET, EVENT_CREATED, "80aece08-40e8-4145-8764-6c2f0d38679", id="event-id"
        ),
        pytest.param(SIGNATURE, SECRET, EVENT_CREATED + 1, EVENT_ID, id="event-created"),
        pytest.param(SIGNATURE, SECRET, "1234567 ", EVENT_ID, id="event-created-padded"),
        pytest.param(None, SECRET, EVENT_CREATED, EVENT_ID, id="header-none"),
        pytest.param("", SECRET, EVENT_CREATED, EVENT_ID, id="header-empty"),
        pytest.param("   ", SECRET, EVENT_CREATED, EVENT_ID, id="header-blank"),
        pytest.param(SIGNATURE, "", EVENT_CREATED, EVENT_ID, id="secret-empty"),
        pytest.param(SIGNATURE[:-1], SECRET, EVENT_CREATED, EVENT_ID, id="truncated"),
        pytest.param(SIGNATURE.lower(), SECRET, EVENT_CREATED, EVENT_ID, id="case-changed"),
        pytest.param(
            "ekmGPQc/IpCwO6woAiM+L8uvY6chew4n6JVQCiDrEVw", SECRET, EVENT_CREATED, EVENT_ID, id="pad"
        ),
        pytest.param("é" + SIGNATURE[1:], SECRET, EVENT_CREATED, EVENT_ID, id="non-ascii"),
    ],
)
def test_verify_rejects(header: str | None, secret: str, created: int | str, event_id: str) -> None:
    assert verify(header, secret, created, event_id) is False


def test_empty_secret_never_verifies_even_its_own_signature() -> None:
    header = expected_signature("", EVENT_CREATED, EVENT_ID)

    assert verify(header, "", EVENT_CREATED, EVENT_ID) is False


@pytest.mark.parametrize(
    ("header", "event_id"),
    [
        pytest.param(SIGNATURE + "\x00", EVENT_ID, id="nul"),
        pytest.param("\ud800" + SIGNATURE[1:], EVENT_ID, id="lone-surrogate"),
        pytest.param(SIGNATURE * 1000, EVENT_ID, id="repeated-44k"),
        pytest.param(" " * 2000 + SIGNATURE, EVENT_ID, id="padded-over-the-cap"),
        pytest.param("\x7f" * 100, EVENT_ID, id="control-chars"),
        # The signed event id comes from the body: not-text there must not raise either.
        pytest.param(SIGNATURE, "\ud800", id="event-id-lone-surrogate"),
    ],
)
def test_headers_of_any_shape_are_refused_without_raising(header: str, event_id: str) -> None:
    assert verify(header, [SECRET], EVENT_CREATED, event_id) is False


@settings(max_examples=300, deadline=None, derandomize=True)
@given(header=st.text(max_size=2000), event_id=st.text(max_size=60), created=st.integers())
def test_any_header_is_a_bool_never_an_exception(header: str, event_id: str, created: int) -> None:
    assert verify(header, [SECRET], created, event_id) is False


# --- several client secrets (rotation with overlap) ----------------------------------------


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param([SECRET], id="only"),
        pytest.param([SECRET, "new_client_secret"], id="old-first"),
        pytest.param(["new_client_secret", SECRET], id="new-first"),
        pytest.param(["", "other", SECRET], id="empty-entry-skipped"),
        pytest.param((s for s in ["other", SECRET]), id="any-iterable"),
    ],
)
def test_verify_accepts_a_signature_under_any_listed_secret(secrets: Any) -> None:
    assert verify(SIGNATURE, secrets, EVENT_CREATED, EVENT_ID) is True


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param([], id="none"),
        pytest.param([""], id="only-empty"),
        pytest.param(["other", "yet_another"], id="none-matches"),
    ],
)
def test_verify_refuses_when_no_listed_secret_signed_it(secrets: list[str]) -> None:
    assert verify(SIGNATURE, secrets, EVENT_CREATED, EVENT_ID) is False


def test_verify_compares_every_candidate_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify(SIGNATURE, [SECRET, "second", "third"], EVENT_CREATED, EVENT_ID) is True
    # No early exit once one matched: the time taken does not tell which secret it was.
    assert len(compared) == 3


# --- the two Ecwid secrets ---------------------------------------------------------------


def _runtime(webhook: dict[str, Any], api: dict[str, Any] | None = None) -> Any:
    values = {"arn:webhook": webhook, "arn:api": api or {}}
    settings = BridgeSettings.from_environ(
        {"ECWID_WEBHOOK_SECRET_ARN": "arn:webhook", "ECWID_API_SECRET_ARN": "arn:api"}
    )
    read: list[str] = []

    def reader(arn: str) -> dict[str, Any]:
        read.append(arn)
        return values[arn]

    return SimpleNamespace(settings=settings, secrets=SimpleNamespace(read=reader), read=read)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param({"client_secrets": ["a", "b"]}, ["a", "b"], id="list"),
        pytest.param({"client_secret": "legacy"}, ["legacy"], id="legacy-single"),
        pytest.param(
            {"client_secrets": ["a"], "client_secret": "legacy"}, ["a", "legacy"], id="both"
        ),
        pytest.param({"client_secrets": ["a", " a ", ""], "client_secret": "a"}, ["a"], id="dedup"),
        pytest.param({"client_secrets": []}, [], id="placeholder"),
        pytest.param({}, [], id="empty-object"),
    ],
)
def test_webhook_client_secrets(secret: dict[str, Any], expected: list[str]) -> None:
    runtime = _runtime(secret)

    assert webhook_client_secrets(runtime) == expected
    assert runtime.read == ["arn:webhook"]  # never the API secret


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param({"client_secrets": "a-SENSITIVE"}, id="string-not-list"),
        pytest.param({"client_secrets": ["a", 5]}, id="number-in-list"),
        pytest.param({"client_secret": ["a-SENSITIVE"]}, id="legacy-not-string"),
    ],
)
def test_malformed_webhook_secret_is_a_configuration_error(secret: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        webhook_client_secrets(_runtime(secret))

    assert "SENSITIVE" not in str(caught.value)


def test_store_tokens_come_from_the_api_secret_only() -> None:
    runtime = _runtime({"client_secrets": ["x"]}, {"store_tokens": {"1003": "secret_t"}})

    assert ecwid_store_tokens(runtime) == {"1003": "secret_t"}
    assert runtime.read == ["arn:api"]


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param({}, {}, id="none"),
        pytest.param({"client_secret": "", "store_tokens": {}}, {}, id="template-placeholder"),
        pytest.param({"store_tokens": {1003: "t"}}, {"1003": "t"}, id="numeric-key"),
    ],
)
def test_store_tokens_shapes(secret: dict[str, Any], expected: dict[str, str]) -> None:
    assert ecwid_store_tokens(_runtime({}, secret)) == expected


def test_malformed_store_tokens_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="store_tokens"):
        ecwid_store_tokens(_runtime({}, {"store_tokens": ["secret_t"]}))


def test_signature_header_name_is_lower_case() -> None:
    # Handlers match header names case-insensitively by lower-casing them.
    assert SIGNATURE_HEADER == "x-ecwid-webhook-signature"


# --- EcwidWebhook ------------------------------------------------------------------------


_MISSING = object()  # drops a key from the body


def _webhook(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": EVENT_ID,
        "eventCreated": EVENT_CREATED,
        "storeId": 1003,
        "entityId": 103878161,
        "eventType": "order.created",
        "data": {
            "orderId": "XJ12H",
            "oldPaymentStatus": "AWAITING_PAYMENT",
            "newPaymentStatus": "PAID",
            "oldFulfillmentStatus": "AWAITING_PROCESSING",
            "newFulfillmentStatus": "PROCESSING",
        },
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not _MISSING}


def test_webhook_parses_the_documented_body() -> None:
    hook = EcwidWebhook.model_validate(_webhook())

    assert hook.eventId == EVENT_ID
    assert hook.eventCreated == EVENT_CREATED
    assert hook.storeId == 1003
    assert hook.entityId == 103878161
    assert hook.eventType == "order.created"
    assert hook.data is not None
    assert hook.data.newPaymentStatus == "PAID"
    assert hook.order_id == "XJ12H"


def test_webhook_parses_from_json_text() -> None:
    text = (
        '{"eventId": "80aece08-40e8-4145-8764-6c2f0d38678", "eventCreated": 1234567,'
        ' "storeId": 1003, "entityId": 103878161, "eventType": "order.updated",'
        ' "data": {"orderId": "XJ12H", "newPaymentStatus": "PAID"}}'
    )

    hook = EcwidWebhook.model_validate_json(text)

    assert hook.order_id == "XJ12H"
    assert hook.is_order_event is True
    assert verify(SIGNATURE, SECRET, hook.eventCreated, hook.eventId) is True


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, "XJ12H", id="data-order-id-preferred"),
        pytest.param({"data": {"orderId": 42}}, "42", id="numeric-order-id-str"),
        pytest.param({"data": _MISSING, "eventType": "order.deleted"}, "103878161", id="no-data"),
        pytest.param({"data": None}, "103878161", id="data-null"),
        pytest.param({"data": {"newPaymentStatus": "PAID"}}, "103878161", id="data-no-order-id"),
        pytest.param({"data": {"orderId": ""}}, "103878161", id="data-empty-order-id"),
        pytest.param({"data": _MISSING, "entityId": _MISSING}, None, id="nothing"),
    ],
)
def test_order_id(overrides: dict[str, Any], expected: str | None) -> None:
    hook = EcwidWebhook.model_validate(_webhook(**overrides))

    assert hook.order_id == expected


def test_numeric_order_id_is_coerced_to_str() -> None:
    hook = EcwidWebhook.model_validate(_webhook(data={"orderId": 12345}))

    assert hook.data is not None
    assert hook.data.orderId == "12345"
    assert isinstance(hook.order_id, str)


def test_old_order_deleted_shape_with_entity_id_only() -> None:
    hook = EcwidWebhook.model_validate_json(
        '{"eventId": "e-1", "eventCreated": 1700000000, "storeId": 1003,'
        ' "entityId": 777, "eventType": "order.deleted"}'
    )

    assert hook.data is None
    assert hook.order_id == "777"
    assert hook.is_order_event is True


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("order.created", True),
        ("order.updated", True),
        ("order.deleted", True),
        ("unfinished_order.created", False),
        ("unfinished_order.updated", False),
        ("unfinished_order.deleted", False),
        ("product.updated", False),
        ("customer.created", False),
        ("application.installed", False),
        ("ORDER.CREATED", False),
    ],
)
def test_is_order_event(event_type: str, expected: bool) -> None:
    hook = EcwidWebhook.model_validate(_webhook(eventType=event_type))

    assert hook.is_order_event is expected


@pytest.mark.parametrize(
    "event_id",
    [
        EVENT_ID,  # 35 characters: not a valid UUID, as in the published vector
        "not-a-uuid",
        "12345",
        "f0b1c2d3-e4f5-6789-abcd-ef0123456789",
    ],
)
def test_event_id_need_not_be_a_uuid(event_id: str) -> None:
    hook = EcwidWebhook.model_validate(_webhook(eventId=event_id))

    assert hook.eventId == event_id


def test_extra_fields_are_ignored() -> None:
    hook = EcwidWebhook.model_validate(_webhook(somethingNew={"a": 1}))

    assert not hasattr(hook, "somethingNew")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"eventId": ""}, id="empty-event-id"),
        pytest.param({"eventId": _MISSING}, id="no-event-id"),
        pytest.param({"eventType": ""}, id="empty-event-type"),
        pytest.param({"storeId": _MISSING}, id="no-store-id"),
        pytest.param({"eventCreated": "yesterday"}, id="event-created-text"),
    ],
)
def test_webhook_refuses_malformed_envelopes(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EcwidWebhook.model_validate(_webhook(**overrides))


# --- the colleagues' webhook fixtures ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "is_order", "order_id"),
    [
        ("order-created", True, "Q7MXT"),
        ("order-updated", True, "R6KPD"),
        ("order-deleted", True, "612807777"),  # old shape: entityId only
        ("unfinished-order-created", False, "X2CQE"),
        ("product-updated", False, "707311841"),
        ("application-installed", False, "1003"),
    ],
)
def test_webhook_fixtures(name: str, is_order: bool, order_id: str) -> None:
    path = WEBHOOKS / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"fixture {name}.json not written yet")

    hook = EcwidWebhook.model_validate_json(path.read_text())

    assert hook.is_order_event is is_order
    assert hook.order_id == order_id

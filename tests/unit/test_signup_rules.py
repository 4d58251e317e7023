"""Sign-up rules: what a body may contain, who referred it, and what reaches Partnero."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from partnero_bridge.api import validation_error
from partnero_bridge.signup.mapping import (
    customer_request,
    delivery_id,
    partner_from_cookies,
    to_delivery,
)
from partnero_bridge.signup.models import SignupDelivery, SignupRequest

pytestmark = pytest.mark.unit

EMAIL = "jane@example.com"


def _fields_of(body: dict[str, Any]) -> list[str]:
    """The field names a 422 would list for ``body`` (fails if the body is accepted)."""
    with pytest.raises(ValidationError) as caught:
        SignupRequest.model_validate(body)
    error = validation_error(caught.value)
    assert error.status_code == 422
    assert error.fields
    return [field["field"] for field in error.fields]


# --- SignupRequest -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": EMAIL}, id="minimal"),
        pytest.param({"email": "a@b.co"}, id="short-email"),
        pytest.param({"email": "  Jane.Doe+shop@Example.COM  "}, id="spaces-around-email"),
        pytest.param(
            {
                "email": EMAIL,
                "key": "cus_123",
                "name": "Jane",
                "surname": "Doe",
                "partner_key": "acme",
                "referral_url": "https://shop.example/?ref=acme",
                "tags": ["newsletter", "vip"],
            },
            id="every-field",
        ),
        pytest.param({"email": EMAIL, "referral_url": "http://shop.example"}, id="http-url"),
        pytest.param({"email": EMAIL, "referral_url": "HTTPS://SHOP.EXAMPLE/x"}, id="upper-url"),
        pytest.param({"email": EMAIL, "tags": ["t"] * 20}, id="twenty-tags"),
        pytest.param({"email": EMAIL, "tags": ["x" * 50]}, id="tag-of-50"),
        pytest.param({"email": EMAIL, "tags": []}, id="no-tags"),
        pytest.param({"email": EMAIL, "name": "n" * 100}, id="name-of-100"),
        pytest.param({"email": EMAIL, "key": "k" * 255}, id="key-of-255"),
        pytest.param({"email": EMAIL, "key": None, "partner_key": None}, id="explicit-nulls"),
        pytest.param({"email": "x" * 240 + "@example.com"}, id="email-of-252"),
    ],
)
def test_valid_bodies_are_accepted(body: dict[str, Any]) -> None:
    request = SignupRequest.model_validate(body)

    assert request.email == body["email"].strip()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "email", id="email-missing"),
        pytest.param({"name": "Jane"}, "email", id="email-missing-with-name"),
        pytest.param({"email": ""}, "email", id="email-empty"),
        pytest.param({"email": "jane"}, "email", id="email-without-at"),
        pytest.param({"email": "jane@example"}, "email", id="email-without-dot"),
        pytest.param({"email": "jane@@example.com"}, "email", id="email-double-at"),
        pytest.param({"email": "ja ne@example.com"}, "email", id="email-with-space"),
        pytest.param({"email": "<jane@example.com>"}, "email", id="email-with-brackets"),
        pytest.param({"email": "x" * 250 + "@example.com"}, "email", id="email-too-long"),
        pytest.param({"email": 123}, "email", id="email-a-number"),
        pytest.param({"email": ["jane@example.com"]}, "email", id="email-a-list"),
        pytest.param({"email": None}, "email", id="email-null"),
        pytest.param({"email": EMAIL, "e_mail": "x"}, "e_mail", id="unknown-field"),
        pytest.param({"email": EMAIL, "partner": "acme"}, "partner", id="unknown-partner-field"),
        pytest.param({"email": EMAIL, "key": "cus 123"}, "key", id="key-with-space"),
        pytest.param({"email": EMAIL, "key": "cus\t1"}, "key", id="key-with-tab"),
        pytest.param({"email": EMAIL, "key": "cus\x001"}, "key", id="key-with-nul"),
        pytest.param({"email": EMAIL, "key": ""}, "key", id="key-empty"),
        pytest.param({"email": EMAIL, "key": "k" * 256}, "key", id="key-too-long"),
        pytest.param({"email": EMAIL, "key": 42}, "key", id="key-a-number"),
        pytest.param({"email": EMAIL, "partner_key": "ac me"}, "partner_key", id="partner-space"),
        pytest.param({"email": EMAIL, "partner_key": "   "}, "partner_key", id="partner-blank"),
        pytest.param(
            {"email": EMAIL, "partner_key": "acme\nx"}, "partner_key", id="partner-newline"
        ),
        pytest.param(
            {"email": EMAIL, "referral_url": "ftp://shop.example"}, "referral_url", id="url-ftp"
        ),
        pytest.param(
            {"email": EMAIL, "referral_url": "javascript:alert(1)"},
            "referral_url",
            id="url-javascript",
        ),
        pytest.param(
            {"email": EMAIL, "referral_url": "shop.example/x"}, "referral_url", id="url-no-scheme"
        ),
        pytest.param({"email": EMAIL, "referral_url": "https://"}, "referral_url", id="url-bare"),
        pytest.param(
            {"email": EMAIL, "referral_url": "https://shop.example/a b"},
            "referral_url",
            id="url-with-space",
        ),
        pytest.param(
            {"email": EMAIL, "referral_url": "https://shop.example/" + "a" * 2048},
            "referral_url",
            id="url-too-long",
        ),
        pytest.param({"email": EMAIL, "tags": ["t"] * 21}, "tags", id="too-many-tags"),
        pytest.param({"email": EMAIL, "tags": "vip"}, "tags", id="tags-a-string"),
        pytest.param({"email": EMAIL, "tags": ["ok", "x" * 51]}, "tags.1", id="tag-too-long"),
        pytest.param({"email": EMAIL, "tags": [""]}, "tags.0", id="tag-empty"),
        pytest.param({"email": EMAIL, "tags": [7]}, "tags.0", id="tag-a-number"),
        pytest.param({"email": EMAIL, "name": "n" * 101}, "name", id="name-too-long"),
        pytest.param({"email": EMAIL, "surname": "s" * 101}, "surname", id="surname-too-long"),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    assert _fields_of(body) == [field]


def test_every_wrong_field_is_named() -> None:
    fields = _fields_of({"email": "nope", "key": "a b", "colour": "red"})

    assert sorted(fields) == ["colour", "email", "key"]


def test_whitespace_around_values_is_stripped() -> None:
    request = SignupRequest.model_validate(
        {"email": f" {EMAIL} ", "key": " cus_1 ", "partner_key": " acme ", "tags": [" vip "]}
    )

    assert request.email == EMAIL
    assert request.key == "cus_1"
    assert request.partner_key == "acme"
    assert request.tags == ["vip"]


# --- to_delivery -------------------------------------------------------------------------


def _request(**fields: Any) -> SignupRequest:
    return SignupRequest.model_validate({"email": EMAIL, **fields})


@pytest.mark.parametrize("cookie", [None, ""])
def test_no_partner_anywhere_means_nothing_to_send(cookie: str | None) -> None:
    assert to_delivery(_request(), cookie, trusted=False) is None


@pytest.mark.parametrize(
    ("body_partner", "cookie_partner", "expected"),
    [
        pytest.param("from-body", "from-cookie", "from-body", id="body-wins"),
        pytest.param("from-body", None, "from-body", id="body-only"),
        pytest.param(None, "from-cookie", "from-cookie", id="cookie-only"),
    ],
)
def test_which_partner_referred_the_sign_up(
    body_partner: str | None, cookie_partner: str | None, expected: str
) -> None:
    delivery = to_delivery(_request(partner_key=body_partner), cookie_partner, trusted=False)

    assert delivery is not None
    assert delivery.partner_key == expected


@pytest.mark.parametrize(
    ("email", "key", "expected_key"),
    [
        pytest.param("Jane.Doe@Example.COM", None, "jane.doe@example.com", id="default-lower"),
        pytest.param(EMAIL, None, EMAIL, id="default-already-lower"),
        pytest.param("Jane@Example.com", "CUS_Mixed-1", "CUS_Mixed-1", id="explicit-kept"),
    ],
)
def test_customer_key(email: str, key: str | None, expected_key: str) -> None:
    request = SignupRequest(email=email, key=key, partner_key="acme")

    delivery = to_delivery(request, None, trusted=False)

    assert delivery is not None
    assert delivery.customer_key == expected_key
    # The email itself is sent as the person typed it.
    assert delivery.email == email


@pytest.mark.parametrize("trusted", [True, False])
def test_delivery_carries_the_details(trusted: bool) -> None:
    request = _request(
        name="Jane",
        surname="Doe",
        referral_url="https://shop.example/?ref=acme",
        tags=["vip"],
    )

    delivery = to_delivery(request, "acme", trusted=trusted)

    assert delivery == SignupDelivery(
        customer_key=EMAIL,
        partner_key="acme",
        email=EMAIL,
        name="Jane",
        surname="Doe",
        referral_url="https://shop.example/?ref=acme",
        tags=["vip"],
        trusted=trusted,
    )


def test_empty_name_and_tags_are_left_out() -> None:
    delivery = to_delivery(_request(name="", surname="  ", tags=[]), "acme", trusted=False)

    assert delivery is not None
    assert delivery.name is None
    assert delivery.surname is None
    assert delivery.tags is None


# --- partner_from_cookies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        pytest.param(None, None, id="no-cookies"),
        pytest.param([], None, id="empty-list"),
        pytest.param(["partnero_partner=acme"], "acme", id="plain"),
        pytest.param(["partnero_partner=acme%2Bco%40x"], "acme+co@x", id="url-encoded"),
        pytest.param(['partnero_partner="acme"'], "acme", id="quoted"),
        pytest.param(['partnero_partner="acme%2Fco"'], "acme/co", id="quoted-encoded"),
        pytest.param(["a=1; partnero_partner=acme; b=2"], "acme", id="several-in-one-string"),
        pytest.param(["a=1;partnero_partner=acme"], "acme", id="no-space-after-semicolon"),
        pytest.param(["a=1", "partnero_partner=acme", "b=2"], "acme", id="one-per-string"),
        pytest.param(["session=abc; theme=dark"], None, id="absent"),
        pytest.param(["partnero_partner="], None, id="empty-value"),
        pytest.param(['partnero_partner=""'], None, id="empty-quoted"),
        pytest.param(["partnero_partner"], None, id="name-without-value"),
        pytest.param(["partnero_partner=  acme  "], "acme", id="spaces-around"),
        pytest.param(["partnero_partner=   "], None, id="blank"),
        pytest.param(["partnero_partner=ac%20me"], None, id="encoded-space-inside"),
        pytest.param(["partnero_partner=ac%09me"], None, id="encoded-tab-inside"),
        pytest.param(["partnero_partner=" + "p" * 256], None, id="too-long"),
        pytest.param(["partnero_partner=" + "p" * 255], "p" * 255, id="longest"),
        pytest.param(["xpartnero_partner=acme"], None, id="other-name-suffix"),
        pytest.param(["partnero_partner_id=acme"], None, id="other-name-prefix"),
        pytest.param(["PARTNERO_PARTNER=acme"], None, id="name-is-case-sensitive"),
        pytest.param(["partnero_partner=; partnero_partner=acme"], "acme", id="empty-then-valid"),
        pytest.param(["partnero_partner=first", "partnero_partner=second"], "first", id="first"),
        pytest.param(["partnero_partner=a=b"], "a=b", id="equals-in-value"),
        # The same check as the body's partner_key: control characters are refused.
        pytest.param(["partnero_partner=ac%00me"], None, id="encoded-nul"),
        pytest.param(["partnero_partner=ac%01me"], None, id="encoded-control"),
        pytest.param(["partnero_partner=ac%1Bme"], None, id="encoded-escape"),
        pytest.param(["partnero_partner=ac%7Fme"], None, id="encoded-del"),
        pytest.param(["partnero_partner=ac%0Ame"], None, id="encoded-newline"),
        pytest.param(["partnero_partner=%E2%80%A8"], None, id="line-separator"),
        pytest.param(["partnero_partner=caf%C3%A9"], "café", id="non-ascii-letter"),
        pytest.param(
            ["partnero_partner=ac%00me; partnero_partner=acme"], "acme", id="invalid-then-valid"
        ),
    ],
)
def test_partner_from_cookies(cookies: list[str] | None, expected: str | None) -> None:
    assert partner_from_cookies(cookies) == expected


# --- delivery_id -------------------------------------------------------------------------


def _delivery(**fields: Any) -> SignupDelivery:
    values: dict[str, Any] = {"customer_key": EMAIL, "partner_key": "acme", "email": EMAIL}
    values.update(fields)
    return SignupDelivery(**values)


def test_delivery_id_is_stable_for_the_same_customer_and_partner() -> None:
    first = delivery_id(_delivery())
    again = delivery_id(_delivery())

    assert first == again
    assert first.startswith("signup-")
    assert len(first) == len("signup-") + 40


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": "Jane"}, id="name"),
        pytest.param({"surname": "Doe"}, id="surname"),
        pytest.param({"tags": ["vip"]}, id="tags"),
        pytest.param({"referral_url": "https://shop.example/"}, id="referral-url"),
        pytest.param({"email": "Jane@Example.com"}, id="email-spelling"),
    ],
)
def test_delivery_id_ignores_details(changes: dict[str, Any]) -> None:
    assert delivery_id(_delivery(**changes)) == delivery_id(_delivery())


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"partner_key": "other-partner"}, id="partner"),
        pytest.param({"customer_key": "someone@example.com"}, id="customer"),
        # An unsigned copy must not make the signed sign-up a duplicate.
        pytest.param({"trusted": True}, id="signed"),
    ],
)
def test_delivery_id_differs_for_another_customer_or_partner_or_a_signed_call(
    changes: dict[str, Any],
) -> None:
    assert delivery_id(_delivery(**changes)) != delivery_id(_delivery())


def test_delivery_id_does_not_confuse_key_and_partner_boundaries() -> None:
    assert delivery_id(_delivery(customer_key="ab", partner_key="c")) != delivery_id(
        _delivery(customer_key="a", partner_key="bc")
    )


def test_same_person_signing_up_twice_with_different_case_is_one_delivery() -> None:
    first = to_delivery(_request(email="Jane@Example.com", partner_key="acme"), None, False)
    second = to_delivery(_request(email="jane@example.com", partner_key="acme"), None, False)

    assert first is not None
    assert second is not None
    assert delivery_id(first) == delivery_id(second)


# --- customer_request --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {},
            {"partner": {"key": "acme"}, "key": EMAIL, "email": EMAIL},
            id="minimal",
        ),
        pytest.param(
            {
                "name": "Jane",
                "surname": "Doe",
                "tags": ["vip", "newsletter"],
                "referral_url": "https://shop.example/?ref=acme",
            },
            {
                "partner": {"key": "acme"},
                "key": EMAIL,
                "email": EMAIL,
                "name": "Jane",
                "surname": "Doe",
                "tags": ["vip", "newsletter"],
                "options": {"referral_url": "https://shop.example/?ref=acme"},
            },
            id="everything",
        ),
        pytest.param(
            {"name": "Jane"},
            {"partner": {"key": "acme"}, "key": EMAIL, "email": EMAIL, "name": "Jane"},
            id="name-only",
        ),
        pytest.param(
            {"surname": "Doe", "tags": []},
            {"partner": {"key": "acme"}, "key": EMAIL, "email": EMAIL, "surname": "Doe"},
            id="surname-and-empty-tags",
        ),
        pytest.param(
            {"customer_key": "cus_1", "trusted": True},
            {"partner": {"key": "acme"}, "key": "cus_1", "email": EMAIL},
            id="explicit-key-trusted-not-sent",
        ),
    ],
)
def test_customer_request_is_partnero_flat_body(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert customer_request(_delivery(**fields)) == expected


def test_customer_request_from_a_sign_up_end_to_end() -> None:
    request = SignupRequest.model_validate(
        {"email": "Jane@Example.com", "tags": ["vip"], "referral_url": "https://s.example/"}
    )
    delivery = to_delivery(request, "cookie-partner", trusted=False)

    assert delivery is not None
    assert customer_request(delivery) == {
        "partner": {"key": "cookie-partner"},
        "key": "jane@example.com",
        "email": "Jane@Example.com",
        "tags": ["vip"],
        "options": {"referral_url": "https://s.example/"},
    }

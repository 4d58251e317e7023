"""Who may sign up: signed server calls, unsigned browser calls from allowed origins within
the per-address rate limit; everything else refused with a JSON error naming the problem."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from partnero_bridge.api import ApiError
from partnero_bridge.config import BridgeSettings
from partnero_bridge.envelope import QueueEnvelope
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.observability import metrics
from partnero_bridge.runtime import Runtime
from partnero_bridge.signup import signature
from partnero_bridge.signup.ingest import ADDRESS_LIMIT, accept_signup, origin_policy
from partnero_bridge_cli.local.gateway import build_event
from partnero_bridge_cli.local.template import HttpRoute
from tests.support.signup import FakeCounters

pytestmark = pytest.mark.unit

SHOP = "https://shop.example"
FOREIGN = "https://evil.example"
SECRET = "signup-hmac-secret-for-tests"
JANE = {"email": "jane@example.com", "partner_key": "acme"}
PEER = "203.0.113.9"


# --- fakes -------------------------------------------------------------------------------


class FakeQueues:
    def __init__(self) -> None:
        self.accepted: list[QueueEnvelope] = []

    def accept(self, envelope: QueueEnvelope) -> None:
        self.accepted.append(envelope)


class FakeSecrets:
    """The sign-up secret as Secrets Manager holds it; ``None``: it cannot be read."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def read(self, arn: str) -> dict[str, Any]:
        if self.secret is None:
            raise ConfigurationError("secret could not be read")
        return {"hmac_secret": self.secret}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class Bridge:
    """Sign-up ingest with fake queues, counters and secrets."""

    def __init__(self, secret: str | None = SECRET, **env: str) -> None:
        settings = BridgeSettings.from_environ(
            {"SIGNUP_ALLOWED_ORIGINS": SHOP, "SIGNUP_SECRET_ARN": "arn:signup", **env}
        )
        self.queues = FakeQueues()
        self.counters = FakeCounters()
        self.runtime = Runtime(
            settings,
            queues=self.queues,
            rate_limits=self.counters,
            secrets=FakeSecrets(secret),
        )

    def post(
        self,
        body: Mapping[str, Any] = JANE,
        headers: Mapping[str, str] | None = None,
        *,
        origin: str | None = SHOP,
        signed_with: str | None = None,
        source_ip: str = PEER,
    ) -> Answer:
        raw = json.dumps(body).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        if origin is not None:
            all_headers["origin"] = origin
        if signed_with is not None:
            all_headers[signature.SIGNATURE_HEADER] = signature.sign(signed_with, raw)
        route = HttpRoute("POST", "/signup", "SignupFunction")
        event = APIGatewayProxyEventV2(
            build_event(route, "POST", "/signup", list(all_headers.items()), raw, source_ip, {})
        )
        try:
            response = accept_signup(event, self.runtime, origin_policy(self.runtime))
        except ApiError as error:
            return Answer(error.status_code, error.body(), error.headers)
        return Answer(response.status_code, json.loads(response.body or "null"), response.headers)

    def trusted_flags(self) -> list[str]:
        return [envelope.meta["trusted"] for envelope in self.queues.accepted]


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def counted(name: str) -> float:
    return sum(metrics.metric_set.get(name, {}).get("Value", []))


# --- trust -------------------------------------------------------------------------------


@pytest.mark.parametrize("require_signature", ["false", "true"])
@pytest.mark.parametrize("origin", [SHOP, FOREIGN, None], ids=["allowed", "foreign", "missing"])
def test_a_signed_call_is_accepted_and_trusted_whatever_its_origin(
    origin: str | None, require_signature: str
) -> None:
    bridge = Bridge(SIGNUP_REQUIRE_SIGNATURE=require_signature)

    answer = bridge.post(origin=origin, signed_with=SECRET)

    assert (answer.status, answer.body) == (202, {"status": "accepted"})
    assert bridge.trusted_flags() == ["True"]
    assert bridge.queues.accepted[0].payload["trusted"] is True
    # A signed call is never counted against the rate limit.
    assert bridge.counters.subjects == []
    # CORS headers only for an allowed browser origin.
    assert ("Access-Control-Allow-Origin" in answer.headers) is (origin == SHOP)


@pytest.mark.parametrize(
    ("origin", "require_signature", "status", "error"),
    [
        pytest.param(SHOP, "false", 202, None, id="allowed-origin"),
        pytest.param(FOREIGN, "false", 403, "origin_not_allowed", id="foreign-origin"),
        pytest.param(None, "false", 401, "signature_required", id="no-origin"),
        pytest.param("", "false", 401, "signature_required", id="empty-origin"),
        pytest.param(SHOP, "true", 401, "signature_required", id="allowed-but-required"),
        pytest.param(FOREIGN, "true", 401, "signature_required", id="foreign-required"),
        pytest.param(None, "true", 401, "signature_required", id="no-origin-required"),
    ],
)
def test_an_unsigned_call_needs_an_allowed_browser_origin(
    origin: str | None, require_signature: str, status: int, error: str | None
) -> None:
    bridge = Bridge(SIGNUP_REQUIRE_SIGNATURE=require_signature)

    answer = bridge.post(origin=origin)

    assert answer.status == status
    if error is None:
        assert bridge.trusted_flags() == ["False"]
        assert bridge.queues.accepted[0].payload["trusted"] is False
    else:
        assert answer.body["error"] == error
        assert answer.body["message"]
        assert bridge.queues.accepted == []
        # Refused before the rate limit is counted: no store write for refusals.
        assert bridge.counters.subjects == []


@pytest.mark.parametrize("origin", [SHOP, None], ids=["allowed", "missing"])
def test_an_unreadable_secret_is_the_uniform_503(origin: str | None) -> None:
    bridge = Bridge(secret=None)

    answer = bridge.post(origin=origin, signed_with=SECRET)

    # The backend retries later; nothing says what is wrong inside.
    assert (answer.status, answer.body["error"]) == (503, "temporarily_unavailable")
    assert "secret" not in answer.body["message"]
    assert answer.headers["Retry-After"]
    assert bridge.queues.accepted == []


def test_the_refusal_of_a_call_without_origin_says_how_to_get_in() -> None:
    answer = Bridge().post(origin=None)

    assert answer.status == 401
    assert "allowed origin" in answer.body["message"]
    assert "X-Partnero-Bridge-Signature".lower() in answer.body["message"].lower()


@pytest.mark.parametrize("origin", [SHOP, FOREIGN, None], ids=["allowed", "foreign", "missing"])
@pytest.mark.parametrize("secret", ["not-the-secret", ""], ids=["wrong-secret", "no-secret"])
def test_a_wrong_signature_is_refused_whatever_the_origin(origin: str | None, secret: str) -> None:
    bridge = Bridge(secret=SECRET if secret else "")

    answer = bridge.post(origin=origin, signed_with=secret or SECRET)

    assert (answer.status, answer.body["error"]) == (401, "invalid_signature")
    assert bridge.queues.accepted == []


def test_a_star_still_admits_any_browser_origin_outside_prod() -> None:
    bridge = Bridge(SIGNUP_ALLOWED_ORIGINS="*", BRIDGE_STAGE="dev")

    assert bridge.post(origin="https://anywhere.example").status == 202
    assert bridge.post(origin=None).status == 401


@pytest.mark.parametrize("origins", ["*", f"{SHOP},*"])
def test_a_star_origin_is_a_settings_error_in_prod(origins: str) -> None:
    with pytest.raises(ConfigurationError, match="SIGNUP_ALLOWED_ORIGINS"):
        BridgeSettings.from_environ({"SIGNUP_ALLOWED_ORIGINS": origins, "BRIDGE_STAGE": "prod"})


def test_listed_origins_are_fine_in_prod() -> None:
    settings = BridgeSettings.from_environ({"SIGNUP_ALLOWED_ORIGINS": SHOP, "BRIDGE_STAGE": "prod"})
    assert settings.signup_allowed_origins == [SHOP]


# --- rate limit --------------------------------------------------------------------------


def test_unsigned_calls_past_the_limit_get_429_with_retry_after() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="3")

    answers = [bridge.post({**JANE, "email": f"u{i}@example.com"}) for i in range(5)]

    assert [a.status for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.body["error"] == "rate_limited"
    assert "3 unsigned sign-ups a minute" in refused.body["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(bridge.queues.accepted) == 3
    assert counted("RateLimited") == 2
    assert counted("RateLimitUnavailable") == 0


def test_the_default_limit_is_ten_a_minute() -> None:
    bridge = Bridge()

    statuses = [bridge.post({**JANE, "email": f"u{i}@example.com"}).status for i in range(11)]

    assert statuses == [202] * 10 + [429]


def test_the_limit_is_per_address() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="1")

    assert bridge.post(source_ip="198.51.100.1").status == 202
    assert bridge.post(source_ip="198.51.100.1").status == 429
    assert bridge.post(source_ip="198.51.100.2").status == 202


def test_signed_calls_are_never_limited_nor_counted() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="1")
    assert bridge.post().status == 202
    assert bridge.post().status == 429

    signed = [bridge.post(signed_with=SECRET, origin=None).status for _ in range(5)]

    assert signed == [202] * 5
    assert bridge.counters.subjects == [PEER, PEER]


def test_a_failing_store_lets_the_call_through_and_is_counted() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="1")
    bridge.counters.failing = True

    statuses = [bridge.post({**JANE, "email": f"u{i}@example.com"}).status for i in range(3)]

    assert statuses == [202, 202, 202]
    assert len(bridge.queues.accepted) == 3
    assert counted("RateLimitUnavailable") == 3
    assert counted("RateLimited") == 0


def test_zero_disables_the_limit() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="0")

    statuses = [bridge.post({**JANE, "email": f"u{i}@example.com"}).status for i in range(30)]

    assert statuses == [202] * 30
    assert bridge.counters.subjects == []  # the store is not even asked


def test_invalid_bodies_count_against_the_limit_too() -> None:
    # The limit bounds the work a script can cause, valid or not.
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="2")

    statuses = [bridge.post({"email": "nope"}).status for _ in range(3)]

    assert statuses == [422, 422, 429]


def test_the_429_is_readable_by_the_page_that_sent_it() -> None:
    # The resolver adds the CORS headers of the request's origin to every refusal; the
    # 429 is a refusal like the others (see the integration test for the headers).
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="1")
    bridge.post()

    answer = bridge.post()

    assert answer.status == 429
    assert set(answer.headers) == {"Retry-After"}


def test_x_forwarded_for_is_ignored() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="2")

    statuses = [
        bridge.post(headers={"x-forwarded-for": f"198.51.100.{i}"}).status for i in range(4)
    ]

    assert statuses == [202, 202, 429, 429]
    assert set(bridge.counters.subjects) == {PEER}


def test_x_forwarded_for_cannot_be_named_as_the_proxy_header() -> None:
    for name in ("X-Forwarded-For", "forwarded"):
        with pytest.raises(ConfigurationError, match="SIGNUP_TRUSTED_PROXY_HEADER"):
            BridgeSettings.from_environ({"SIGNUP_TRUSTED_PROXY_HEADER": name})


@pytest.mark.parametrize(
    ("value", "subject"),
    [
        pytest.param("198.51.100.7:46532", "198.51.100.7", id="ipv4-port"),
        pytest.param("198.51.100.7", "198.51.100.7", id="ipv4-bare"),
        pytest.param("2001:db8:1:2:3:4:5:6:443", "2001:db8:1:2::/64", id="ipv6-port"),
        pytest.param("2001:db8:1:2::9:443", "2001:db8:1:2::/64", id="ipv6-compressed-port"),
        pytest.param("[2001:db8:1:2::9]:443", "2001:db8:1:2::/64", id="ipv6-brackets"),
        pytest.param("not-an-address", PEER, id="garbage-falls-back"),
        pytest.param("198.51.100.7:1,198.51.100.8:2", PEER, id="two-values-fall-back"),
        pytest.param(None, PEER, id="absent-falls-back"),
    ],
)
def test_the_trusted_proxy_header_names_the_client(value: str | None, subject: str) -> None:
    bridge = Bridge(SIGNUP_TRUSTED_PROXY_HEADER="CloudFront-Viewer-Address")
    headers = {"cloudfront-viewer-address": value} if value is not None else {}

    assert bridge.post(headers=headers).status == 202

    assert bridge.counters.subjects == [subject]


def test_behind_the_proxy_each_viewer_has_its_own_limit() -> None:
    bridge = Bridge(
        SIGNUP_TRUSTED_PROXY_HEADER="CloudFront-Viewer-Address", SIGNUP_RATE_LIMIT_PER_MINUTE="1"
    )
    edge = "130.176.0.1"  # every call reaches API Gateway from the same CloudFront edge

    first = bridge.post(headers={"cloudfront-viewer-address": "198.51.100.1:1000"}, source_ip=edge)
    again = bridge.post(headers={"cloudfront-viewer-address": "198.51.100.1:2000"}, source_ip=edge)
    other = bridge.post(headers={"cloudfront-viewer-address": "198.51.100.2:1000"}, source_ip=edge)

    assert [first.status, again.status, other.status] == [202, 429, 202]


def test_ipv6_clients_are_limited_per_64() -> None:
    bridge = Bridge(SIGNUP_RATE_LIMIT_PER_MINUTE="1")

    assert bridge.post(source_ip="2001:db8:1:2::1").status == 202
    assert bridge.post(source_ip="2001:db8:1:2:ffff::9").status == 429
    assert bridge.post(source_ip="2001:db8:1:3::1").status == 202


def test_the_counter_kind_is_the_sign_up_address_limit() -> None:
    bridge = Bridge()
    bridge.post()

    assert [limit for limit, _subject, _start in bridge.counters.counts] == [ADDRESS_LIMIT]


# --- cookie ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "body_partner", "queued_partner"),
    [
        pytest.param("partnero_partner=acme", None, "acme", id="valid-cookie"),
        pytest.param("partnero_partner=ac%00me", None, None, id="nul-in-cookie-is-no-cookie"),
        pytest.param("partnero_partner=ac%7Fme", None, None, id="del-in-cookie-is-no-cookie"),
        pytest.param("partnero_partner=" + "p" * 256, None, None, id="long-cookie-is-no-cookie"),
        pytest.param("partnero_partner=ac%00me", "beta", "beta", id="body-wins-over-bad-cookie"),
        pytest.param("partnero_partner=acme", "beta", "beta", id="body-wins-over-good-cookie"),
    ],
)
def test_a_cookie_partner_passes_the_body_fields_check(
    cookie: str, body_partner: str | None, queued_partner: str | None
) -> None:
    bridge = Bridge()
    body: dict[str, Any] = {"email": "sam@example.com"}
    if body_partner:
        body["partner_key"] = body_partner

    answer = bridge.post(body, headers={"cookie": cookie})

    # Never refused for a cookie the visitor cannot fix.
    assert (answer.status, answer.body) == (202, {"status": "accepted"})
    partners = [envelope.payload["partner_key"] for envelope in bridge.queues.accepted]
    assert partners == ([queued_partner] if queued_partner else [])

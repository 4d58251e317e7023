"""Ingest side of ``POST /signup``: check, validate, queue, answer 202 in milliseconds.

Nothing here calls Partnero. The answer is the same whether or not the sign-up was
referred, so the endpoint never reveals whether a partner key is valid.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from partnero_bridge.api import (
    ApiError,
    json_response,
    parse_json_object,
    retry_later_on_failure,
    unavailable,
    validation_error,
)
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.http_input import raw_body, text_body
from partnero_bridge.observability import logger, mask_key, metrics
from partnero_bridge.openapi import UNAVAILABLE, cookie, header, route_doc
from partnero_bridge.ratelimit import RateLimitUnavailable
from partnero_bridge.signup import signature
from partnero_bridge.signup.client_address import client_address, rate_limit_subject
from partnero_bridge.signup.cors import OriginPolicy
from partnero_bridge.signup.mapping import (
    PARTNER_COOKIE,
    delivery_id,
    partner_from_cookies,
    to_delivery,
)
from partnero_bridge.signup.models import SignupRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    from partnero_bridge.runtime import Runtime

ACCEPTED = {"status": "accepted"}
# The limit of unsigned calls per client address (its counters' key prefix in the table).
ADDRESS_LIMIT = "signup-ip"
_JSON_TYPES = ("application/json", "text/plain")

SIGNUP_ROUTE = route_doc(
    "Accept a sign-up from a shop's form or backend",
    {
        202: "accepted",
        400: "not a JSON object",
        401: "bad signature, or unsigned without an allowed Origin",
        403: "browser origin not allowed",
        413: "body too large",
        415: "not JSON",
        422: "a field is missing or wrong",
        429: "too many unsigned calls from this address this minute",
        **UNAVAILABLE,
    },
    description="Answers 202 for every valid request, referred or not, so the endpoint never "
    "reveals whether a partner key is valid. Server callers must sign; unsigned calls are "
    "accepted only from an allowed browser Origin (a filter for browsers, not "
    "authentication), at most SIGNUP_RATE_LIMIT_PER_MINUTE a minute per client address.",
    parameters=[
        header("Origin", "unsigned (browser) callers: must be in SIGNUP_ALLOWED_ORIGINS"),
        header(
            signature.SIGNATURE_HEADER,
            "server callers (required without an allowed Origin): "
            "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
        ),
        cookie(PARTNER_COOKIE, "the partner key when the body has none"),
    ],
    request=SignupRequest,
)
PREFLIGHT_ROUTE = route_doc(
    "CORS preflight for browser callers",
    {204: "allowed origin: CORS headers", 400: "no Origin header", 403: "origin not allowed"},
    parameters=[header("Origin", "the calling page's origin", required=True)],
)


def origin_policy(runtime: Runtime) -> OriginPolicy:
    return OriginPolicy(runtime.settings.signup_allowed_origins)


def check_origin(event: APIGatewayProxyEventV2, policy: OriginPolicy) -> str | None:
    """The caller's browser origin, or a 403 when a browser calls from a foreign site."""
    origin = event.headers.get("origin")
    if origin and not policy.allows(origin):
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin[:200]} is not allowed to call this endpoint"
        )
    return origin


def preflight(event: APIGatewayProxyEventV2, policy: OriginPolicy) -> Response[str]:
    origin = check_origin(event, policy)
    if not origin:
        raise ApiError(400, "not_a_preflight", "a preflight request needs an Origin header")
    return json_response(204, None, policy.preflight_headers(origin))


def admit_unsigned(event: APIGatewayProxyEventV2, runtime: Runtime, policy: OriginPolicy) -> None:
    """An unsigned call passes only from a browser on an allowed origin, within the rate
    limit of its address; otherwise a 401, 403 or 429 that names the problem.

    The Origin check is a filter for browsers, not authentication: any script can send
    any Origin header. What bounds abuse by scripts is the per-address rate limit.
    """
    if runtime.settings.signup_require_signature:
        raise ApiError(
            401,
            "signature_required",
            f"this endpoint only accepts signed calls ({signature.SIGNATURE_HEADER})",
        )
    origin = check_origin(event, policy)
    if not origin:
        raise ApiError(
            401,
            "signature_required",
            "unsigned sign-ups are accepted only from a browser on an allowed origin; "
            f"a server must sign its calls ({signature.SIGNATURE_HEADER})",
        )
    limit_rate(event, runtime)


def limit_rate(event: APIGatewayProxyEventV2, runtime: Runtime) -> None:
    """Count this unsigned call against its address; a 429 past the limit of the minute.

    If the counter store fails, the call is let through (and counted as
    ``RateLimitUnavailable``): losing a real sign-up is worse than a minute without a limit.
    """
    settings = runtime.settings
    limit = settings.signup_rate_limit_per_minute
    if limit == 0:
        return
    address = client_address(event, settings.signup_trusted_proxy_header)
    try:
        count = runtime.rate_limits.hit(ADDRESS_LIMIT, rate_limit_subject(address), 60)
    except RateLimitUnavailable as exc:
        logger.warning("sign-up rate limit unavailable: call accepted", extra={"error": str(exc)})
        metrics.add_metric(name="RateLimitUnavailable", unit=MetricUnit.Count, value=1)
        return
    if count.hits > limit:
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        wait = count.window.seconds_left(time.time())
        raise ApiError(
            429,
            "rate_limited",
            f"more than {limit} unsigned sign-ups a minute from this address; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def verify_signed(sent: str, raw: bytes, runtime: Runtime) -> None:
    """A 401 unless ``sent`` is a fresh signature of ``raw`` under the sign-up secret.

    A secret that cannot be read is the uniform 503 (the caller retries; nothing about
    the configuration is revealed); an empty ``hmac_secret`` verifies nothing (401).
    """
    try:
        value = runtime.secrets.read(runtime.settings.signup_secret_arn).get("hmac_secret")
    except ConfigurationError:
        logger.exception("the sign-up secret is not readable: signed calls cannot be verified")
        raise unavailable() from None
    secret = value if isinstance(value, str) else ""
    if not secret:
        logger.error(
            "the sign-up secret has no hmac_secret: every signed call is refused",
            extra={"secret": "SIGNUP_SECRET_ARN", "field": "hmac_secret"},
        )
    if not signature.verify(sent, raw, secret):
        raise ApiError(
            401,
            "invalid_signature",
            f"{signature.SIGNATURE_HEADER} is not a valid, fresh signature of the body",
        )


def _body_text(event: APIGatewayProxyEventV2, runtime: Runtime) -> tuple[bytes, str]:
    """The exact bytes and their text: a 413 over the size limit, a 415 when not JSON."""
    raw = raw_body(event)
    limit = runtime.settings.signup_max_body_bytes
    if len(raw) > limit:
        raise ApiError(413, "body_too_large", f"the body is {len(raw)} bytes; the limit is {limit}")
    content_type = (event.headers.get("content-type") or "application/json").split(";")[0].strip()
    if content_type.lower() not in _JSON_TYPES:
        raise ApiError(
            415, "unsupported_media_type", f"send application/json, not {content_type[:100]}"
        )
    return raw, text_body(raw)


def checked_request(
    event: APIGatewayProxyEventV2, runtime: Runtime, policy: OriginPolicy
) -> tuple[SignupRequest, bool]:
    """The sign-up and whether it was signed (trusted), once the caller is admitted.

    Signed: a shop's backend, whatever its Origin header, verified over the exact bytes
    before the body is parsed. Unsigned: a browser, admitted (or refused) before the body
    is even read.
    """
    sent = event.headers.get(signature.SIGNATURE_HEADER)
    if sent is None:
        admit_unsigned(event, runtime, policy)
    raw, text = _body_text(event, runtime)
    if sent is not None:
        verify_signed(sent, raw, runtime)
    body = parse_json_object(text)
    try:
        return SignupRequest.model_validate(body), sent is not None
    except ValidationError as exc:
        raise validation_error(exc) from None


def accept_signup(
    event: APIGatewayProxyEventV2, runtime: Runtime, policy: OriginPolicy
) -> Response[str]:
    """``POST /signup``: a 202 once a referred sign-up is queued (or when not referred)."""
    cors = policy.response_headers(event.headers.get("origin"))
    request, trusted = checked_request(event, runtime, policy)
    delivery = to_delivery(request, partner_from_cookies(event.cookies), trusted)
    if delivery is None:
        metrics.add_metric(name="NotReferred", unit=MetricUnit.Count, value=1)
        logger.info("sign-up without a partner key: nothing to send")
        return json_response(202, ACCEPTED, cors)

    envelope = QueueEnvelope.new(
        Source.SIGNUP,
        delivery_id(delivery),
        delivery.model_dump(mode="json"),
        meta={"request_id": event.request_context.request_id or "", "trusted": str(trusted)},
    )
    with retry_later_on_failure("sign-up"):
        runtime.queues.accept(envelope)
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.info(
        "sign-up accepted",
        extra={
            "delivery_id": envelope.delivery_id,
            "customer_key": mask_key(delivery.customer_key),
            "trusted": trusted,
        },
    )
    return json_response(202, ACCEPTED, cors)

"""Ingest side of ``POST /signup``: check, validate, queue, answer 202 in milliseconds.

Nothing here calls Partnero. The answer is the same whether or not the sign-up was
referred, so the endpoint never reveals whether a partner key is valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from partnero_bridge.api import (
    ApiError,
    json_response,
    parse_json_object,
    retry_later_on_failure,
    validation_error,
)
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.http_input import header, raw_body, text_body
from partnero_bridge.observability import logger, mask_key, metrics
from partnero_bridge.signup import signature
from partnero_bridge.signup.cors import OriginPolicy
from partnero_bridge.signup.mapping import delivery_id, partner_from_cookies, to_delivery
from partnero_bridge.signup.models import SignupRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    from partnero_bridge.runtime import Runtime

ACCEPTED = {"status": "accepted"}
_JSON_TYPES = ("application/json", "text/plain")


def origin_policy(runtime: Runtime) -> OriginPolicy:
    return OriginPolicy(runtime.settings.signup_allowed_origins)


def check_origin(event: APIGatewayProxyEventV2, policy: OriginPolicy) -> str | None:
    """The caller's browser origin, or a 403 when a browser calls from a foreign site."""
    origin = header(event, "origin")
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


def _is_trusted(event: APIGatewayProxyEventV2, raw: bytes, runtime: Runtime) -> bool:
    sent = header(event, signature.SIGNATURE_HEADER)
    if sent is None:
        if runtime.settings.signup_require_signature:
            raise ApiError(
                401,
                "signature_required",
                f"this endpoint only accepts signed calls ({signature.SIGNATURE_HEADER})",
            )
        return False
    try:
        secret = runtime.secrets.field(runtime.settings.signup_secret_arn, "hmac_secret")
    except ConfigurationError:
        logger.error("sign-up signature sent but no sign-up secret is configured")
        secret = ""
    if not signature.verify(sent, raw, secret):
        raise ApiError(
            401,
            "invalid_signature",
            f"{signature.SIGNATURE_HEADER} is not a valid, fresh signature of the body",
        )
    return True


def accept_signup(
    event: APIGatewayProxyEventV2, runtime: Runtime, policy: OriginPolicy
) -> Response[str]:
    origin = check_origin(event, policy)
    cors = policy.response_headers(origin)

    raw = raw_body(event)
    limit = runtime.settings.signup_max_body_bytes
    if len(raw) > limit:
        raise ApiError(413, "body_too_large", f"the body is {len(raw)} bytes; the limit is {limit}")
    content_type = (header(event, "content-type") or "application/json").split(";")[0].strip()
    if content_type.lower() not in _JSON_TYPES:
        raise ApiError(
            415, "unsupported_media_type", f"send application/json, not {content_type[:100]}"
        )
    text = text_body(raw)

    trusted = _is_trusted(event, raw, runtime)
    body = parse_json_object(text)
    try:
        request = SignupRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None

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

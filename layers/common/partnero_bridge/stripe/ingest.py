"""Ingest side of ``POST /webhooks/stripe``: verify the exact bytes, filter, queue, 200.

The signature is checked over the raw body before anything parses it (400 when it does
not verify, also when no endpoint secret is configured); a secret that cannot be read, or
SQS refusing the event, is the uniform 503 of :func:`partnero_bridge.api.unavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from partnero_bridge.observability import count_by_reason, logger, metrics
from partnero_bridge.openapi import UNAVAILABLE, header, route_doc
from partnero_bridge.stripe import signature
from partnero_bridge.stripe.events import HANDLED_EVENTS

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    from partnero_bridge.runtime import Runtime

# Stripe events are rarely over a few tens of kilobytes.
MAX_BODY_BYTES = 1024 * 1024


class EventHead(BaseModel):
    """The fields every Stripe event has that ingest needs."""

    model_config = ConfigDict(
        extra="ignore",
        title="StripeEvent",
        json_schema_extra={
            "description": "A Stripe Event object; see Stripe's API reference.",
            "additionalProperties": True,
        },
    )

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=255)
    livemode: bool
    # Set on events of connected accounts (Stripe Connect), which may share the URL.
    account: str | None = Field(None, max_length=255)


ROUTE = route_doc(
    "Receive a Stripe event",
    {
        200: "queued, or acknowledged and ignored",
        400: "bad signature, stale timestamp or not JSON",
        413: "body too large",
        422: "not a Stripe event",
        **UNAVAILABLE,
    },
    parameters=[
        header(
            signature.SIGNATURE_HEADER,
            "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
            required=True,
        )
    ],
    request=EventHead,
)


def webhook_secrets(runtime: Runtime) -> list[str]:
    value = runtime.secrets.read(runtime.settings.stripe_secret_arn).get("webhook_secrets")
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise ConfigurationError("stripe secret: webhook_secrets is not a list")
    return [str(s).strip() for s in value if str(s).strip()]


def _endpoint_secrets(runtime: Runtime) -> list[str]:
    """The endpoint's signing secrets; the uniform 503 when they cannot be read (logged).

    None listed (the deployed placeholder: Stripe not connected) is an empty list, so
    every event is refused like a wrong signature: a stranger learns nothing and cannot
    cause a 5xx at will.
    """
    try:
        secrets = webhook_secrets(runtime)
    except ConfigurationError:
        logger.exception("Stripe secret is not readable: events cannot be verified")
        raise unavailable() from None
    if not secrets:
        logger.error(
            "the Stripe secret lists no webhook secret: every event is refused",
            extra={"secret": "STRIPE_SECRET_ARN", "field": "webhook_secrets"},
        )
    return secrets


def verified_body(event: APIGatewayProxyEventV2, runtime: Runtime) -> dict[str, Any]:
    """The event's JSON object, once its exact bytes verify under an endpoint secret.

    Errors: 413 ``body_too_large``; 400 ``invalid_signature`` (Stripe's own libraries
    answer 400: the signature, timestamp or body is wrong); 400 when not a JSON object.
    """
    raw = raw_body(event)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    secrets = _endpoint_secrets(runtime)
    if not signature.verify(event.headers.get(signature.SIGNATURE_HEADER), raw, secrets):
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
        raise ApiError(
            400,
            "invalid_signature",
            "Stripe-Signature does not match this body with any endpoint secret, "
            "or its timestamp is more than 5 minutes off",
        )
    return parse_json_object(text_body(raw))


def ignored(head: EventHead, runtime: Runtime) -> Response[str] | None:
    """The 200 for an event the bridge does not handle (counted, logged); None otherwise."""
    if head.account:
        # A connected account's own payment, not the platform's: never read or queued.
        logger.info(
            "Stripe event of a connected account ignored",
            extra={"event_type": head.type, "account": head.account},
        )
        count_by_reason("IgnoredByReason", "connected_account")
        return json_response(200, {"status": "ignored", "reason": "connected_account"})
    if head.livemode != runtime.settings.stripe_livemode:
        logger.info(
            "Stripe event from the other mode ignored",
            extra={"event_type": head.type, "livemode": head.livemode},
        )
        count_by_reason("IgnoredByReason", "other_mode")
        return json_response(200, {"status": "ignored", "reason": "livemode does not match"})
    if head.type not in HANDLED_EVENTS:
        logger.debug("Stripe event type not handled", extra={"event_type": head.type})
        return json_response(200, {"status": "ignored", "reason": "event type not handled"})
    return None


def accept_event(event: APIGatewayProxyEventV2, runtime: Runtime) -> Response[str]:
    """``POST /webhooks/stripe``: verify, then ignore or queue (see the module's docstring)."""
    body = verified_body(event, runtime)
    try:
        head = EventHead.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    answer = ignored(head, runtime)
    if answer is not None:
        return answer

    envelope = QueueEnvelope.new(
        Source.STRIPE,
        f"stripe-{head.id}",
        body,
        meta={"request_id": event.request_context.request_id or ""},
    )
    with retry_later_on_failure("Stripe event"):
        runtime.queues.accept(envelope)
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.info(
        "Stripe event accepted",
        extra={"delivery_id": envelope.delivery_id, "event_type": head.type},
    )
    return json_response(200, {"status": "accepted"})

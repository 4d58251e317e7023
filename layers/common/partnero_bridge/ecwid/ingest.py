"""Ingest side of ``POST /webhooks/ecwid``: verify, filter, queue, answer 200.

The answer comes only after the webhook is on the work queue (or, for a store that is
not configured, on the dead-letter queue), so an accepted webhook is never lost.
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
from partnero_bridge.ecwid import signature
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.http_input import header, raw_body, text_body
from partnero_bridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    from partnero_bridge.runtime import Runtime

# Ecwid retries forever on errors; a body this large is not an Ecwid webhook.
MAX_BODY_BYTES = 64 * 1024


def ecwid_secret(runtime: Runtime) -> tuple[str, dict[str, str]]:
    """The app's client secret and the store tokens (store id -> token)."""
    secret = runtime.secrets.read(runtime.settings.ecwid_secret_arn)
    tokens = secret.get("store_tokens") or {}
    if not isinstance(tokens, dict):
        raise ConfigurationError("ecwid secret: store_tokens is not an object")
    return str(secret.get("client_secret") or ""), {str(k): str(v) for k, v in tokens.items()}


def accept_webhook(event: APIGatewayProxyEventV2, runtime: Runtime) -> Response[str]:
    raw = raw_body(event)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    body = parse_json_object(text_body(raw))
    try:
        webhook = EcwidWebhook.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None

    try:
        client_secret, store_tokens = ecwid_secret(runtime)
    except ConfigurationError:
        logger.exception("Ecwid secret is not readable: webhooks cannot be verified")
        raise ApiError(
            503, "not_configured", "the bridge cannot verify Ecwid webhooks yet"
        ) from None
    if not client_secret:
        logger.error("Ecwid client_secret is empty: webhooks cannot be verified")
        raise ApiError(503, "not_configured", "the bridge cannot verify Ecwid webhooks yet")
    if not signature.verify(
        header(event, signature.SIGNATURE_HEADER),
        client_secret,
        webhook.eventCreated,
        webhook.eventId,
    ):
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
        raise ApiError(
            401, "invalid_signature", f"{signature.SIGNATURE_HEADER} is missing or does not match"
        )

    if not webhook.is_order_event:
        logger.debug("Ecwid event ignored", extra={"event_type": webhook.eventType})
        return json_response(200, {"status": "ignored", "reason": "not an order event"})

    envelope = QueueEnvelope.new(
        Source.ECWID,
        f"ecwid-{webhook.eventId}",
        body,
        meta={"request_id": event.request_context.request_id or ""},
    )
    store = str(webhook.storeId)
    with retry_later_on_failure("Ecwid webhook"):
        if store not in store_tokens:
            # Kept, not dropped: replayable once the store's token is configured.
            runtime.queues.dead_letter(
                envelope.model_dump_json(),
                source=Source.ECWID.value,
                delivery_id=envelope.delivery_id,
                error_kind="unknown_store",
                error=f"store {store} is not configured (no token in the Ecwid secret)",
                receive_count=0,
            )
            metrics.add_metric(name="UnknownStore", unit=MetricUnit.Count, value=1)
            logger.warning(
                "webhook for an unconfigured store kept in the DLQ",
                extra={"store_id": store, "delivery_id": envelope.delivery_id},
            )
            return json_response(200, {"status": "accepted"})
        runtime.queues.accept(envelope)
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.info(
        "Ecwid webhook accepted",
        extra={
            "delivery_id": envelope.delivery_id,
            "event_type": webhook.eventType,
            "store_id": store,
        },
    )
    return json_response(200, {"status": "accepted"})

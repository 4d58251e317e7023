"""Ingest side of ``POST /webhooks/ecwid``: verify, check freshness and store, queue, answer.

In order:

1. the body is an Ecwid webhook (at most ``MAX_BODY_BYTES``, JSON nested at most
   ``MAX_JSON_DEPTH`` deep, the documented fields), else 4xx. Ecwid signs two fields of
   the body, not its bytes, so the body is parsed first: bounded in size and depth;
2. ``X-Ecwid-Webhook-Signature`` verifies under one of the app's client secrets (the
   webhook secret; ingest reads no other Ecwid secret), else 401 (also when none is
   configured); a secret that cannot be read is the uniform 503;
3. events other than ``order.*`` are acknowledged and dropped;
4. the signed ``eventCreated`` is fresh: a webhook older than
   ``ECWID_MAX_EVENT_AGE_SECONDS`` at receipt is refused with a 2xx (so Ecwid stops
   retrying it), counted as ``StaleWebhook`` and logged, never queued; one dated more than
   ``MAX_CLOCK_SKEW_SECONDS`` ahead is a 422 (see ``_check_freshness``). Only ingest looks
   at this: queue retries and replays never re-check it;
5. the store is in ``ECWID_STORE_IDS``: the webhook is queued (200 once SQS has it, the
   uniform 503 if not). Otherwise it is parked (``ParkedWebhook``, replayable once the store is
   configured), or over the store's cap, counted and dropped (``ParkedWebhookDropped``).

The answer comes only after the webhook is on the work queue or in the parked table, so
an accepted webhook is never lost.
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
from partnero_bridge.ecwid import signature
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.ecwid.parking import ParkedWebhooks, ParkResult
from partnero_bridge.ecwid.secrets import webhook_client_secrets
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.http_input import raw_body, text_body
from partnero_bridge.observability import logger, metrics
from partnero_bridge.openapi import UNAVAILABLE, header, route_doc

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

    from partnero_bridge.runtime import Runtime

# Ecwid retries forever on errors; a body this large is not an Ecwid webhook.
MAX_BODY_BYTES = 64 * 1024
# How far ahead of our clock a signed eventCreated may be (clocks drift a little).
MAX_CLOCK_SKEW_SECONDS = 300

ROUTE = route_doc(
    "Receive an Ecwid webhook",
    {
        200: "queued, parked, or acknowledged and not processed",
        400: "not a JSON object",
        401: "bad or missing signature",
        413: "body too large",
        422: "not an Ecwid webhook, or eventCreated more than 5 minutes ahead",
        **UNAVAILABLE,
    },
    description="Answers 200 once the webhook is queued (or parked, for a store not in "
    "ECWID_STORE_IDS); a webhook whose signed eventCreated is older than "
    "ECWID_MAX_EVENT_AGE_SECONDS (48 hours) is answered 200 with status refused, so Ecwid "
    "stops retrying it, and is not processed.",
    parameters=[
        header(
            signature.SIGNATURE_HEADER,
            "base64 HMAC-SHA256 of '{eventCreated}.{eventId}'",
            required=True,
        )
    ],
    request=EcwidWebhook,
)


def _now() -> float:
    """The time of receipt (a function, so tests can move the clock)."""
    return time.time()


def ecwid_envelope(
    webhook_body: dict[str, object], event_id: str, request_id: str
) -> QueueEnvelope:
    """The queue envelope of a verified Ecwid webhook (parked ones keep it for replay)."""
    return QueueEnvelope.new(
        Source.ECWID, f"ecwid-{event_id}", dict(webhook_body), meta={"request_id": request_id}
    )


def _client_secrets(runtime: Runtime) -> list[str]:
    """The client secrets; the uniform 503 when the secret cannot be read (logged).

    None configured (the deployed placeholder: Ecwid not connected) is an empty list, so
    every webhook is refused exactly like a wrong signature: a stranger learns nothing of
    the configuration and cannot make the bridge answer 5xx (and page anyone) at will.
    """
    try:
        secrets = webhook_client_secrets(runtime)
    except ConfigurationError:
        logger.exception("Ecwid webhook secret is not readable: webhooks cannot be verified")
        raise unavailable() from None
    if not secrets:
        logger.error(
            "the Ecwid webhook secret lists no client secret: every webhook is refused",
            extra={"secret": "ECWID_WEBHOOK_SECRET_ARN", "field": "client_secrets"},
        )
    return secrets


def _check_freshness(webhook: EcwidWebhook, runtime: Runtime, now: float) -> Response[str] | None:
    """None when fresh; the answer to give otherwise.

    Too old: Ecwid's redeliveries (about 24 h, same eventCreated) are over, so this is a
    replay of a captured webhook or a very late copy; answered 2xx so nobody retries it.
    From the future beyond the skew: refused with a 422, not accepted (it would stay
    replayable for longer than the window allows) and not answered 2xx as stale (if
    Ecwid's clock or ours is off, the sale would be lost for good): Ecwid retries for a
    day and the webhook gets in once the clocks agree; meanwhile the refusals are counted.
    """
    age = int(now) - webhook.eventCreated
    max_age = runtime.settings.ecwid_max_event_age_seconds
    details = {
        "event_id": webhook.eventId,
        "store_id": str(webhook.storeId),
        "event_type": webhook.eventType,
        "event_created": webhook.eventCreated,
        "age_seconds": age,
        "max_age_seconds": max_age,
    }
    if age < -MAX_CLOCK_SKEW_SECONDS:
        metrics.add_metric(name="FutureWebhook", unit=MetricUnit.Count, value=1)
        logger.warning("Ecwid webhook dated in the future refused", extra=details)
        raise ApiError(
            422,
            "event_created_in_the_future",
            f"eventCreated is {-age} s ahead of the bridge's clock (at most "
            f"{MAX_CLOCK_SKEW_SECONDS} s accepted); retry later",
        )
    if age > max_age:
        metrics.add_metric(name="StaleWebhook", unit=MetricUnit.Count, value=1)
        logger.warning("stale Ecwid webhook refused, not queued", extra=details)
        return json_response(
            200,
            {
                "status": "refused",
                "reason": "stale",
                "message": f"eventCreated is {age} s old, over the {max_age} s accepted; "
                "not processed",
            },
        )
    return None


def _park(webhook: EcwidWebhook, envelope: QueueEnvelope, runtime: Runtime) -> Response[str]:
    """Keep a webhook of a store not in ECWID_STORE_IDS for replay (or drop it over the
    store's cap): a 200 either way, once the parked table has it."""
    settings = runtime.settings
    parked = ParkedWebhooks(
        runtime.dynamodb,
        settings.parked_table,
        settings.ecwid_parked_max_per_store,
        settings.ecwid_parked_retention_days,
    )
    store = str(webhook.storeId)
    with retry_later_on_failure("Ecwid webhook"):
        result = parked.park(
            envelope,
            store_id=store,
            event_id=webhook.eventId,
            event_type=webhook.eventType,
            order_id=webhook.order_id,
            event_created=webhook.eventCreated,
        )
    details = {
        "store_id": store,
        "delivery_id": envelope.delivery_id,
        "event_type": webhook.eventType,
        "order_id": webhook.order_id,
    }
    return _parked_answer(result, details, runtime)


def _parked_answer(
    result: ParkResult, details: dict[str, str | None], runtime: Runtime
) -> Response[str]:
    settings = runtime.settings
    if result is ParkResult.OVER_CAP:
        metrics.add_metric(name="ParkedWebhookDropped", unit=MetricUnit.Count, value=1)
        logger.warning(
            "webhook for an unconfigured store DROPPED: the store has reached its cap of "
            f"{settings.ecwid_parked_max_per_store} parked webhooks per "
            f"{settings.ecwid_parked_retention_days} days; add the store to ECWID_STORE_IDS",
            extra=details,
        )
        return json_response(
            200,
            {
                "status": "dropped",
                "reason": "store_not_configured",
                "message": "the store is not configured and its parked webhooks are at the cap",
            },
        )
    if result is ParkResult.ALREADY_PARKED:
        logger.info("webhook for an unconfigured store was already parked", extra=details)
    else:
        metrics.add_metric(name="ParkedWebhook", unit=MetricUnit.Count, value=1)
        logger.warning(
            "webhook for an unconfigured store parked; replay it once the store is in "
            "ECWID_STORE_IDS (partnero-bridge parked replay)",
            extra=details,
        )
    return json_response(200, {"status": "parked", "reason": "store_not_configured"})


def verified_webhook(
    event: APIGatewayProxyEventV2, runtime: Runtime
) -> tuple[dict[str, object], EcwidWebhook]:
    """The body and its webhook, once the signature of its two signed fields verifies.

    Ecwid signs ``eventCreated`` and ``eventId``, not the bytes, so the body is parsed
    (bounded) and read first. Errors: 413, 400 (not a JSON object), 422 (not an Ecwid
    webhook), 401 ``invalid_signature``; the uniform 503 when the secret is unreadable.
    """
    raw = raw_body(event)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    body = parse_json_object(text_body(raw))
    try:
        webhook = EcwidWebhook.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if not signature.verify(
        event.headers.get(signature.SIGNATURE_HEADER),
        _client_secrets(runtime),
        webhook.eventCreated,
        webhook.eventId,
    ):
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
        raise ApiError(
            401, "invalid_signature", f"{signature.SIGNATURE_HEADER} is missing or does not match"
        )
    return body, webhook


def accept_webhook(event: APIGatewayProxyEventV2, runtime: Runtime) -> Response[str]:
    """``POST /webhooks/ecwid``: the steps of the module's docstring, in order."""
    received = _now()
    body, webhook = verified_webhook(event, runtime)
    if not webhook.is_order_event:
        logger.debug("Ecwid event ignored", extra={"event_type": webhook.eventType})
        return json_response(200, {"status": "ignored", "reason": "not an order event"})

    refused = _check_freshness(webhook, runtime, received)
    if refused is not None:
        return refused

    envelope = ecwid_envelope(body, webhook.eventId, event.request_context.request_id or "")
    store = str(webhook.storeId)
    if store not in runtime.settings.ecwid_store_ids:
        return _park(webhook, envelope, runtime)
    with retry_later_on_failure("Ecwid webhook"):
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

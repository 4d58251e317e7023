"""Stripe events function: ``POST /webhooks/stripe`` and its work queue.

The route exists in the stack so the URL can be registered early; until this source's
processing lands it answers 501, and nothing is queued.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.api import json_response
from partnero_bridge.envelope import Outcome, QueueEnvelope, Source
from partnero_bridge.errors import RetryableError
from partnero_bridge.handlers import dispatch, new_resolver
from partnero_bridge.observability import logger, metrics, tracer
from partnero_bridge.runtime import Runtime

app = new_resolver()
metrics.set_default_dimensions(source=Source.STRIPE.value)


@app.post("/webhooks/stripe")
def webhook() -> Response[str]:
    return json_response(
        501, {"error": "not_implemented", "message": "this source is not supported yet"}
    )


def process(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    # Kept (retried, then dead-lettered) rather than dropped, should a message ever arrive.
    raise RetryableError("processing for this source is not available in this version")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch(event, context, app, Source.STRIPE, process)

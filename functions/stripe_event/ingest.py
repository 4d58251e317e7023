"""Stripe ingest function: ``POST /webhooks/stripe``.

Verifies the exact bytes with the endpoint's signing secrets, filters and queues the event,
and answers 200. It cannot read the Stripe API key or the Partnero key, nor write the
ledger (the process function does that).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.envelope import Source
from partnero_bridge.handlers import new_resolver, serve_api
from partnero_bridge.observability import logger, metrics, tracer
from partnero_bridge.runtime import get_runtime
from partnero_bridge.stripe.ingest import ROUTE, accept_event

SETTINGS = requiring(BridgeSettings, "work_queue_url", "stripe_secret_arn")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
app = new_resolver()
metrics.set_default_dimensions(source=Source.STRIPE.value)


@app.post("/webhooks/stripe", **ROUTE)
def webhook() -> Response[str]:
    return accept_event(app.current_event, get_runtime(SETTINGS))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve_api(event, context, app)

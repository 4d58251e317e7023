"""Stripe event function: ``POST /webhooks/stripe`` (ingest: verify the exact bytes and
queue, answer 200) and the Stripe work queue (process: sales, refunds, disputes)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.envelope import Outcome, QueueEnvelope, Source
from partnero_bridge.handlers import dispatch, new_resolver
from partnero_bridge.observability import logger, metrics, tracer
from partnero_bridge.runtime import Runtime, get_runtime
from partnero_bridge.stripe.ingest import accept_event

app = new_resolver()
metrics.set_default_dimensions(source=Source.STRIPE.value)


@app.post("/webhooks/stripe")
def webhook() -> Response[str]:
    return accept_event(app.current_event, get_runtime())


def process(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    # Imported on first use: API requests (ingest) never need the processing code.
    from partnero_bridge.stripe.process import process_stripe_event

    return process_stripe_event(envelope, runtime)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch(event, context, app, Source.STRIPE, process)

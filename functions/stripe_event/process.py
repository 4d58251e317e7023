"""Stripe process function: the Stripe work queue (SQS batches).

Reads the payment each event concerns from the Stripe API (read-only key) and records its
Partnero transaction, refunds and disputes through the ledger.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.envelope import Source
from partnero_bridge.observability import logger, metrics, trace_libraries, tracer
from partnero_bridge.processing import PROCESS_NEEDS, process_batch
from partnero_bridge.runtime import get_runtime
from partnero_bridge.stripe.process import process_stripe_event

SETTINGS = requiring(BridgeSettings, *PROCESS_NEEDS, "stripe_api_secret_arn")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
metrics.set_default_dimensions(source=Source.STRIPE.value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trace_libraries()
    return process_batch(event, context, Source.STRIPE, process_stripe_event, get_runtime(SETTINGS))

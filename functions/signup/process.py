"""Sign-up process function: the sign-up work queue (SQS batches).

Creates each sign-up's Partnero customer once, then sends the customer's waiting sales
back to the Ecwid and Stripe work queues to be decided again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.envelope import Source
from partnero_bridge.observability import logger, metrics, trace_libraries, tracer
from partnero_bridge.processing import PROCESS_NEEDS, process_batch
from partnero_bridge.runtime import get_runtime
from partnero_bridge.signup.process import process_signup

SETTINGS = requiring(
    BridgeSettings, *PROCESS_NEEDS, "ecwid_queue_url", "stripe_queue_url", "rate_limit_table"
)
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
metrics.set_default_dimensions(source=Source.SIGNUP.value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trace_libraries()
    return process_batch(event, context, Source.SIGNUP, process_signup, get_runtime(SETTINGS))

"""Ecwid process function: the Ecwid work queue (SQS batches).

Fetches each webhook's order from the Ecwid API with its store's token and reconciles the
order's Partnero transaction with the ledger.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.ecwid.process import process_order_event
from partnero_bridge.envelope import Source
from partnero_bridge.observability import logger, metrics, trace_libraries, tracer
from partnero_bridge.processing import PROCESS_NEEDS, process_batch
from partnero_bridge.runtime import get_runtime

SETTINGS = requiring(BridgeSettings, *PROCESS_NEEDS, "ecwid_api_secret_arn")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
metrics.set_default_dimensions(source=Source.ECWID.value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trace_libraries()
    return process_batch(event, context, Source.ECWID, process_order_event, get_runtime(SETTINGS))

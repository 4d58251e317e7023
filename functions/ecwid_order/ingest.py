"""Ecwid ingest function: ``POST /webhooks/ecwid``.

Verifies the webhook with the app's client secrets, then queues it (or parks it when its
store is not configured) and answers 200. It reads no store token and cannot read the
Partnero key or write the ledger (the process function does that).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.ecwid.ingest import ROUTE, accept_webhook
from partnero_bridge.envelope import Source
from partnero_bridge.handlers import new_resolver, serve_api
from partnero_bridge.observability import logger, metrics, tracer
from partnero_bridge.runtime import get_runtime

SETTINGS = requiring(BridgeSettings, "work_queue_url", "ecwid_webhook_secret_arn", "parked_table")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
app = new_resolver()
metrics.set_default_dimensions(source=Source.ECWID.value)


@app.post("/webhooks/ecwid", **ROUTE)
def webhook() -> Response[str]:
    return accept_webhook(app.current_event, get_runtime(SETTINGS))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve_api(event, context, app)

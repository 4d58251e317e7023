"""Sign-up ingest function: ``POST /signup`` and its CORS preflight (``OPTIONS /signup``).

Checks, validates and queues a sign-up, answering 202 in milliseconds; it never calls
Partnero and cannot read the Partnero key (the process function creates the customer).
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
from partnero_bridge.signup.ingest import (
    PREFLIGHT_ROUTE,
    SIGNUP_ROUTE,
    accept_signup,
    origin_policy,
    preflight,
)

SETTINGS = requiring(BridgeSettings, "work_queue_url", "signup_secret_arn", "rate_limit_table")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)
app = new_resolver(
    cors_headers=lambda event: origin_policy(get_runtime(SETTINGS)).response_headers(
        (event.headers or {}).get("origin")
    )
)
metrics.set_default_dimensions(source=Source.SIGNUP.value)


@app.post("/signup", **SIGNUP_ROUTE)
def signup() -> Response[str]:
    runtime = get_runtime(SETTINGS)
    return accept_signup(app.current_event, runtime, origin_policy(runtime))


@app.route("/signup", method="OPTIONS", **PREFLIGHT_ROUTE)
def signup_preflight() -> Response[str]:
    return preflight(app.current_event, origin_policy(get_runtime(SETTINGS)))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve_api(event, context, app)

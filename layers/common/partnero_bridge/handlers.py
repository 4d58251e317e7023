"""What every ingest function's entry point shares: the API resolver, whose refusals are
all JSON, and the entry that answers one API Gateway request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from partnero_bridge.api import ApiError, error_response, json_response
from partnero_bridge.observability import logger, trace_libraries

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
    from aws_lambda_powertools.utilities.typing import LambdaContext


CorsHeaders = Callable[["APIGatewayProxyEventV2"], dict[str, str]]


def _no_cors(_event: APIGatewayProxyEventV2) -> dict[str, str]:
    return {}


def new_resolver(cors_headers: CorsHeaders = _no_cors) -> APIGatewayHttpResolver:
    """A resolver whose refusals are all JSON: ApiError, unknown routes, and bugs."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _refuse(error: ApiError) -> Response[str]:
        logger.info(
            "request refused", extra={"status_code": error.status_code, "error": error.code}
        )
        return error_response(error, cors_headers(app.current_event))

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        event = app.current_event
        return json_response(
            404, {"error": "not_found", "message": f"no route for {event.http_method} {event.path}"}
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _internal(_exc: Exception) -> Response[str]:
        # Never a 2xx: the sender keeps the request and retries it.
        logger.exception("unhandled error in ingest")
        return json_response(
            500,
            {"error": "internal_error", "message": "the request could not be handled; retry later"},
        )

    return app


def serve_api(
    event: dict[str, Any], context: LambdaContext, app: APIGatewayHttpResolver
) -> dict[str, Any]:
    """An ingest function's whole job: answer one API Gateway HTTP API (v2) request.

    (A process function's whole job is ``partnero_bridge.processing.process_batch``; it
    never imports this module, whose API resolver it does not need.)
    """
    trace_libraries()
    return app.resolve(event, context)

"""What every ingest function's entry point shares: the API resolver, whose refusals are
all JSON, and the entry that answers one API Gateway request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from partnero_bridge.api import ApiError, error_response, unavailable
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.observability import logger, metrics, trace_libraries

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
    from aws_lambda_powertools.utilities.typing import LambdaContext


CorsHeaders = Callable[["APIGatewayProxyEventV2"], dict[str, str]]


def _no_cors(_event: APIGatewayProxyEventV2) -> dict[str, str]:
    return {}


def _not_text(value: object) -> bool:
    """A header or cookie that is not valid Unicode text (a lone surrogate, say)."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _count_server_error() -> None:
    metrics.add_metric(name="ServerError", unit=MetricUnit.Count, value=1)


def _text_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """A 400 before any route runs when a header or cookie is not valid text."""
    event = app.current_event
    values = [*(event.headers or {}).items(), *((c, "") for c in event.cookies or [])]
    if any(_not_text(name) or _not_text(value) for name, value in values):
        raise ApiError(400, "malformed_headers", "a header or cookie is not valid text")
    return next_middleware(app)


def new_resolver(cors_headers: CorsHeaders = _no_cors) -> APIGatewayHttpResolver:
    """A resolver whose refusals are all JSON: ApiError, unknown routes, and bugs.

    Every 5xx it answers is counted as ``ServerError`` (the alarm's source). A server-side
    cause (``ConfigurationError``: a secret missing or unreadable, invalid settings) is the
    uniform 503 of :func:`partnero_bridge.api.unavailable`; anything else unexpected is a
    500. Headers and cookies that are not valid text are a 400 before any route runs.
    Requests are never validated against the routes' documented models (see
    partnero_bridge.openapi): a webhook's signature comes first.
    """
    app = APIGatewayHttpResolver(enable_validation=False)
    app.use([_text_only])
    _answer_refusals(app, cors_headers)
    _answer_the_unexpected(app)
    return app


def _answer_refusals(app: APIGatewayHttpResolver, cors_headers: CorsHeaders) -> None:
    """A refusal (ApiError) or a server-side cause (the uniform 503), with CORS headers."""

    def _cors() -> dict[str, str]:
        # An error answer must never fail itself (the CORS policy reads the settings, which
        # may be what is broken): without CORS headers it is still an answer.
        try:
            return cors_headers(app.current_event)
        except Exception:
            logger.exception("CORS headers could not be computed for an error answer")
            return {}

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _refuse(error: ApiError) -> Response[str]:
        if error.status_code >= 500:
            _count_server_error()
        logger.info(
            "request refused", extra={"status_code": error.status_code, "error": error.code}
        )
        return error_response(error, _cors())

    @app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
    def _unavailable(_exc: ConfigurationError) -> Response[str]:
        # The reason names a setting or secret field, never a value: log it, answer nothing
        # of it.
        logger.exception("ingest is not configured correctly: answered 503")
        _count_server_error()
        return error_response(unavailable(), _cors())


def _answer_the_unexpected(app: APIGatewayHttpResolver) -> None:
    """An unknown route (404) and a bug (500, never a 2xx: the sender keeps the request and
    retries it), in the same JSON shape."""

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        event = app.current_event
        return error_response(
            ApiError(404, "not_found", f"no route for {event.http_method} {event.path}")
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _internal(_exc: Exception) -> Response[str]:
        logger.exception("unhandled error in ingest")
        _count_server_error()
        return error_response(
            ApiError(500, "internal_error", "the request could not be handled; retry later")
        )


def serve_api(
    event: dict[str, Any], context: LambdaContext, app: APIGatewayHttpResolver
) -> dict[str, Any]:
    """An ingest function's whole job: answer one API Gateway HTTP API (v2) request.

    (A process function's whole job is ``partnero_bridge.processing.process_batch``; it
    never imports this module, whose API resolver it does not need.)
    """
    trace_libraries()
    return app.resolve(event, context)

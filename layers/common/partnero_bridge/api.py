"""HTTP answers of the ingest side: one JSON error shape, raised as exceptions.

Every refusal is ``{"error": <code>, "message": <text>}`` plus ``"fields"`` for
validation problems, so a caller can tell what to fix without reading logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import ValidationError

from partnero_bridge.observability import logger


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


def json_response(
    status_code: int, body: Mapping[str, Any] | None, headers: Mapping[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")) if body is not None else "",
        headers=dict(headers or {}),
    )


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> Response[str]:
    return json_response(error.status_code, error.body(), {**error.headers, **(headers or {})})


def _field_name(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def validation_error(exc: ValidationError) -> ApiError:
    """A 422 that names every field that is wrong, without echoing the values back."""
    fields = [
        # pydantic prefixes messages from our own validators with "Value error, ".
        {"field": _field_name(err["loc"]), "problem": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    return ApiError(422, "invalid_request", summary, fields)


def parse_json_object(raw: str) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says why it is not one."""
    if not raw.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send a JSON object")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None
    except RecursionError:
        # Nested deeper than the parser's stack: no real webhook or sign-up is.
        raise ApiError(400, "malformed_json", "the request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the request body must be a JSON object")
    return value


@contextmanager
def retry_later_on_failure(what: str) -> Iterator[None]:
    """Anything failing inside (SQS unreachable, say) becomes a 503, never a 2xx: what was
    not durably queued is not accepted, and the sender keeps it and retries."""
    try:
        yield
    except ApiError:
        raise
    except Exception:
        logger.exception(f"could not queue the {what}")
        raise ApiError(
            503,
            "temporarily_unavailable",
            f"the {what} could not be accepted right now; retry shortly",
            headers={"Retry-After": "5"},
        ) from None

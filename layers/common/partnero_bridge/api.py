"""HTTP answers of the ingest side: one JSON error shape, raised as exceptions.

Every refusal is ``{"error": <code>, "message": <text>}`` plus ``"fields"`` for
validation problems, so a caller can tell what to fix without reading logs. A bad request
is a 4xx (bodies are parsed within a size and depth bound); every server-side cause is the
one 503 of :func:`unavailable`, which says nothing about the cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from partnero_bridge.observability import logger
from partnero_bridge.queues import TooLargeToQueue


class FieldProblem(BaseModel):
    field: str = Field(description="where in the body, dotted: address.city, items.0")
    problem: str


class Error(BaseModel):
    """Every refusal's body (4xx and 5xx alike)."""

    error: str = Field(description="a stable code, e.g. invalid_request")
    message: str = Field(description="what is wrong, for a person")
    # Absent, never null, when there is nothing to list.
    fields: list[FieldProblem] | SkipJsonSchema[None] = Field(
        None, description="for validation errors: each field and its problem"
    )


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
        """The answer's JSON: the :class:`Error` shape, ``fields`` only when there are any."""
        error = Error.model_validate(
            {"error": self.code, "message": self.message, "fields": self.fields or None}
        )
        return error.model_dump(exclude_none=True)


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


# How deeply a request body may nest. Real webhooks and sign-ups stay under 10 levels
# (Stripe's deepest sample is 9); the bound keeps parsing, validating and re-serialising a
# body cheap and far from any recursion limit.
MAX_JSON_DEPTH = 64
# A JSON string (to its closing quote, or to the end when unterminated) or a bracket. The
# two alternatives of a string's body start differently and a string may end anywhere, so
# matching never backtracks: one linear pass whatever the text.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.?)*"?|[\[\]{}]', re.DOTALL)


def json_depth_exceeds(raw: str, max_depth: int) -> bool:
    """True when ``raw`` opens more than ``max_depth`` nested arrays or objects.

    Counted on the text before parsing (brackets inside strings do not count), so a body
    nested 10,000 deep costs one linear scan, never a recursion. Malformed text is counted
    as well as it can be; the parser refuses it afterwards anyway.
    """
    if raw.count("[") + raw.count("{") <= max_depth:
        return False  # cannot nest deeper than it has openers
    depth = 0
    for match in _TOKEN.finditer(raw):
        first = match.group()[0]
        if first in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif first in "]}":
            depth -= 1
    return False


def parse_json_object(raw: str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says why it is not one.

    Errors: ``empty_body``; ``malformed_json`` (not JSON, not an object, or nested deeper
    than ``max_depth``).
    """
    if not raw.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send a JSON object")
    if json_depth_exceeds(raw, max_depth):
        raise ApiError(
            400, "malformed_json", f"the request body is nested deeper than {max_depth} levels"
        )
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None
    except RecursionError:
        # Unreachable after the depth check; kept so a parser change can never make it a 500.
        raise ApiError(400, "malformed_json", "the request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw) and not _is_text(value):
        # "\ud800" alone is valid JSON but no text: every later encode of it would fail.
        raise ApiError(
            400, "malformed_json", "the request body has a string that is not valid Unicode"
        )
    return value


# A JSON escape of a UTF-16 surrogate: a pair is one character, a lone one is not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _is_text(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The one answer to every server-side cause (a secret missing or unreadable, invalid
# settings, SQS or DynamoDB failing): the same code and message whatever the cause, so an
# unauthenticated caller learns nothing about the bridge's configuration. The cause goes
# to the log.
UNAVAILABLE_CODE = "temporarily_unavailable"
UNAVAILABLE_MESSAGE = "the request could not be accepted right now; retry later"
RETRY_AFTER_SECONDS = 5


def unavailable() -> ApiError:
    """The uniform ``503 temporarily_unavailable`` (with ``Retry-After``); log the cause
    before raising it."""
    return ApiError(
        503,
        UNAVAILABLE_CODE,
        UNAVAILABLE_MESSAGE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@contextmanager
def retry_later_on_failure(what: str) -> Iterator[None]:
    """Anything failing inside (SQS or DynamoDB unreachable, say) becomes the uniform 503,
    never a 2xx: what was not durably kept is not accepted, and the sender retries. An
    envelope too large for one SQS message is a 413 (retrying cannot help)."""
    try:
        yield
    except ApiError:
        raise
    except TooLargeToQueue as exc:
        # Not a server-side failure: this request can never fit one queue message.
        logger.warning(f"the {what} is too large to queue: refused", extra={"reason": str(exc)})
        raise ApiError(
            413, "body_too_large", f"the {what} is too large to be queued ({exc})"
        ) from None
    except Exception:
        logger.exception(f"could not keep the {what}: answered 503")
        raise unavailable() from None

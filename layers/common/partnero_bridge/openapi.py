"""What each ingest route declares for its OpenAPI description: the answers it can give
(a 2xx is a :class:`Status`, every refusal the one :class:`~partnero_bridge.api.Error`
shape), the headers it reads and the model of its body.

Documentation only: the resolvers never validate a request against these (Powertools'
validation is off), so a webhook's signature is always checked, over the exact bytes,
before anything judges its body. ``partnero-bridge openapi`` assembles the description
from the resolvers' ``get_openapi_schema()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from partnero_bridge.api import Error

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

# Where a schema named in a route's declaration is found in the assembled description.
SCHEMAS = "#/components/schemas/"


class Status(BaseModel):
    """Every 2xx answer's body (a preflight's 204 has none)."""

    status: Literal["accepted", "ignored", "parked", "refused", "dropped"] = Field(
        description="accepted = queued; ignored = not an event the bridge handles; parked = "
        "an Ecwid store that is not configured, kept for replay; refused = an Ecwid webhook "
        "too old to process (stale); dropped = not kept (the store's parked webhooks are at "
        "their cap). All but accepted are counted and logged."
    )
    reason: str | SkipJsonSchema[None] = None
    message: str | SkipJsonSchema[None] = None


class RouteDoc(TypedDict):
    """The OpenAPI keywords of a route decorator: ``@app.post(path, **doc)``."""

    summary: str
    description: str
    responses: dict[int, OpenAPIResponse]
    openapi_extensions: dict[str, Any]


_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
# The uniform answer to every server-side cause (see partnero_bridge.api.unavailable).
UNAVAILABLE = {503: "could not be queued right now (or not configured); retry later"}


def schema_name(model: type[BaseModel]) -> str:
    """A request model's name among the description's schemas: its title, else its class."""
    return model.model_config.get("title") or model.__name__


def header(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    """A request header, named as people write it (header names are case-insensitive)."""
    return {
        "name": "-".join(word.capitalize() for word in name.split("-")),
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def cookie(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "cookie", "schema": {"type": "string"}, "description": description}


def _answer(status: int, description: str) -> OpenAPIResponse:
    if status == 204:
        return {"description": description, "content": {}}
    model = Status if status < 400 else Error
    answer: OpenAPIResponse = {
        "description": description,
        "content": {"application/json": {"model": model}},
    }
    if status in (429, 503):
        answer["headers"] = _RETRY_AFTER  # type: ignore[typeddict-item]
    return answer


def route_doc(
    summary: str,
    answers: dict[int, str],
    *,
    description: str = "",
    parameters: Sequence[dict[str, Any]] = (),
    request: type[BaseModel] | None = None,
) -> RouteDoc:
    """A route's declaration: ``answers`` maps every status it can answer to what it means."""
    extensions: dict[str, Any] = {}
    if parameters:
        extensions["parameters"] = list(parameters)
    if request is not None:
        schema = {"$ref": SCHEMAS + schema_name(request)}
        extensions["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return RouteDoc(
        summary=summary,
        description=description,
        responses={status: _answer(status, text) for status, text in sorted(answers.items())},
        openapi_extensions=extensions,
    )

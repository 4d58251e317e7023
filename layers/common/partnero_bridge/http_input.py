"""Reading an API Gateway (HTTP API v2) request: headers and the exact body bytes."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from partnero_bridge.api import ApiError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2


def header(event: APIGatewayProxyEventV2, name: str) -> str | None:
    """A header by lower-case name (API Gateway lower-cases them; tests may not)."""
    for key, value in (event.headers or {}).items():
        if key.lower() == name:
            return value
    return None


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body exactly as sent: signatures are checked over these bytes."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "malformed_body", "the body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")


def text_body(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_body", "the body is not UTF-8 text") from None

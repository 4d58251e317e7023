"""Reading an API Gateway (HTTP API v2) request's body: the exact bytes, and them as text.

Headers need nothing of their own: Powertools' ``event.headers`` is case-insensitive.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from partnero_bridge.api import ApiError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2


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

"""Reading fields of Stripe's JSON, which may be missing, null, ids or expanded objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stripe_id(value: Any) -> str | None:
    """An id field that may be a bare id or an expanded object (``{"id": ...}``)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str) and value["id"]:
        return str(value["id"])
    return None


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_int(value: Any) -> int:
    """An integer field (amounts in minor units, Unix seconds); anything else is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""

"""Which browser origins may call the sign-up endpoint, and the CORS headers they get.

Handled in the function rather than by API Gateway so that a refused origin gets a clear
403 (API Gateway would only leave out the headers) and one list drives both preflight and
the actual request.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFLIGHT_MAX_AGE_SECONDS = 600
_ALLOWED_HEADERS = "content-type,x-partnero-bridge-signature"


class OriginPolicy:
    def __init__(self, allowed_origins: Sequence[str]) -> None:
        self._any = "*" in allowed_origins
        self._allowed = {origin.rstrip("/").lower() for origin in allowed_origins}

    def allows(self, origin: str) -> bool:
        return self._any or origin.rstrip("/").lower() in self._allowed

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an answer to an allowed browser origin (empty for server callers)."""
        if not origin or not self.allows(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def preflight_headers(self, origin: str) -> dict[str, str]:
        return {
            **self.response_headers(origin),
            "Access-Control-Allow-Methods": "POST,OPTIONS",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        }

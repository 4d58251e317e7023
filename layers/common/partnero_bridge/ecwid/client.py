"""Ecwid REST API client: the order behind a webhook, and the store's currency.

Ecwid answers, and what they mean here:
- 200: the order; 404: the order no longer exists (deleted): an outcome;
- 429 (Retry-After honoured), 402 (store suspended), 401/403 (token), 408, 5xx,
  timeouts: retried until the dead-letter queue;
- other 4xx: permanent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from partnero_bridge.ecwid.models import EcwidOrder
from partnero_bridge.errors import ConfigurationError, PermanentError, RetryableError
from partnero_bridge.http_client import pooled_client, send
from partnero_bridge.observability import logger
from partnero_bridge.partnero import parse_retry_after

# A store's currency hardly ever changes: one profile call per container per hour.
CURRENCY_CACHE_SECONDS = 3600


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return str(body.get("errorCode") or body.get("errorMessage") or "")[:200]
    return ""


class EcwidClient:
    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = pooled_client(base_url, timeout_seconds, {}, transport)
        self._clock = clock
        self._currencies: dict[str, tuple[float, str]] = {}

    def order(self, store_id: int | str, order_id: str, token: str) -> EcwidOrder | None:
        """The order as it is now, or None when Ecwid no longer has it."""
        response = self._get(f"{store_id}/orders/{quote(order_id, safe='')}", token)
        if response.status_code == 404:
            return None
        try:
            return EcwidOrder.model_validate_json(response.content)
        except ValidationError as exc:
            # Field paths only, never values (an order carries personal data).
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise PermanentError(
                f"Ecwid order {order_id[:100]} is not in the expected shape: "
                f"{', '.join(fields[:10]) or 'not an object'}"
            ) from None

    def currency(self, store_id: int | str, token: str) -> str:
        cached = self._currencies.get(str(store_id))
        if cached and self._clock() - cached[0] < CURRENCY_CACHE_SECONDS:
            return cached[1]
        response = self._get(f"{store_id}/profile", token)
        try:
            currency = str(response.json()["formatsAndUnits"]["currency"]).upper()
        except (ValueError, KeyError, TypeError):
            raise RetryableError("Ecwid store profile has no formatsAndUnits.currency") from None
        if len(currency) != 3:
            raise PermanentError(f"Ecwid store currency {currency[:10]!r} is not a currency code")
        self._currencies[str(store_id)] = (self._clock(), currency)
        return currency

    def _get(self, path: str, token: str) -> httpx.Response:
        response = send(
            self._http, "Ecwid", "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        status = response.status_code
        logger.info("ecwid call", extra={"operation": path.split("/")[1], "status_code": status})
        if status == 200 or status == 404:
            if status == 404 and "orders" not in path:
                raise ConfigurationError("Ecwid answered 404 for a store profile: check the store")
            return response
        reason = f"Ecwid answered {status} {_error_text(response)}".strip()
        if status in (401, 402, 403):
            raise ConfigurationError(reason)
        if status in (408, 429) or status >= 500:
            raise RetryableError(reason, parse_retry_after(response.headers.get("retry-after")))
        raise PermanentError(reason)

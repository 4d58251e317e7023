"""Ecwid REST API client: the order behind a webhook, the store's currency, and (to
reconcile a window) pages of the order search and of the deleted orders' history.

Ecwid answers, and what they mean here:
- 200: the order; 404: the order no longer exists (deleted): an outcome;
- 429 (Retry-After honoured), 402 (store suspended), 401/403 (token), 408, 5xx,
  timeouts: retried until the dead-letter queue;
- other 4xx: permanent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
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
# Ecwid's order search and deleted-items history answer at most 100 items a page.
SEARCH_PAGE_SIZE = 100


@dataclass(frozen=True)
class OrderPage:
    """One page of an Ecwid list: its items, Ecwid's total, and the next page's offset."""

    items: list[dict[str, Any]]
    total: int
    next_offset: int

    @property
    def has_more(self) -> bool:
        return bool(self.items) and self.next_offset < self.total


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

    def search_orders(
        self,
        store_id: int | str,
        token: str,
        *,
        by: Literal["updated", "created"],
        date_from: int,
        date_to: int,
        offset: int = 0,
        limit: int = SEARCH_PAGE_SIZE,
    ) -> OrderPage:
        """One page of ``GET /{storeId}/orders?updatedFrom=&updatedTo=&offset=&limit=``
        (``by="updated"``: the orders last updated in ``[date_from, date_to]``) or
        ``?createdFrom=&createdTo=`` (``by="created"``), Unix seconds, both inclusive, as
        Ecwid's search takes them. Items are the orders as JSON objects, not yet validated
        (one order in an odd shape must not hide the others)."""
        params = {
            f"{by}From": str(int(date_from)),
            f"{by}To": str(int(date_to)),
            "offset": str(offset),
            "limit": str(limit),
        }
        return self._page(f"{store_id}/orders", token, params, offset)

    def deleted_orders(
        self,
        store_id: int | str,
        token: str,
        *,
        deleted_from: int,
        deleted_to: int,
        offset: int = 0,
        limit: int = SEARCH_PAGE_SIZE,
    ) -> OrderPage:
        """One page of ``GET /{storeId}/orders/deleted?from_date=&to_date=``: the orders
        deleted in ``[deleted_from, deleted_to]`` (Unix seconds). Items are
        ``{"id": <order number>, "orderId": <public id>, "date": ...}``; Ecwid keeps them
        for 6 months."""
        params = {
            "from_date": str(int(deleted_from)),
            "to_date": str(int(deleted_to)),
            "offset": str(offset),
            "limit": str(limit),
        }
        return self._page(f"{store_id}/orders/deleted", token, params, offset)

    def _page(self, path: str, token: str, params: dict[str, str], offset: int) -> OrderPage:
        response = self._get(path, token, params)
        if response.status_code == 404:
            raise ConfigurationError("Ecwid answered 404 for a list: check the store")
        try:
            body = response.json()
        except ValueError:
            raise RetryableError("Ecwid answered a list with a body that is not JSON") from None
        items = body.get("items") if isinstance(body, dict) else None
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(items, list) or not isinstance(total, int):
            raise RetryableError("Ecwid's list has no items and total")
        found = [item for item in items if isinstance(item, dict)]
        return OrderPage(found, total, offset + len(items))

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

    def _get(self, path: str, token: str, params: dict[str, str] | None = None) -> httpx.Response:
        response = send(
            self._http,
            "Ecwid",
            "GET",
            path,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
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

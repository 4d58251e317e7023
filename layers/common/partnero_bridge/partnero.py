"""Partnero REST client: sends requests and classifies every answer.

Classification is the heart of the failure path, so it is a pure function
(:func:`classify_answer`) tested without a network. The client only adds HTTP:
a shared httpx connection pool, the Bearer key, timeouts and transport errors.

What an answer means (see docs/operating.md, "What a failure does"):
- 2xx: done.
- 400 naming the partner, 422 naming an unknown customer: *not referred*, an outcome.
- 422 for a key that already exists: *duplicate*, an outcome.
- 404 on a keyed resource (GET/DELETE): *not found*, an outcome.
- 401/403: configuration (key wrong, rotated or without API access): retried.
- 408, 429 (honouring Retry-After), 5xx, timeouts, connection errors, a 2xx whose body is
  not JSON: retried.
- any other 4xx: permanent, with Partnero's message kept for the dead-letter queue.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from partnero_bridge.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RetryableError,
)
from partnero_bridge.http_client import pooled_client, send
from partnero_bridge.money import parse_amount
from partnero_bridge.observability import logger
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS


class AnswerMeaning(StrEnum):
    """What one Partnero answer means when it is no failure (the module docstring's list)."""

    OK = "ok"
    NOT_REFERRED = "not_referred"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class PartneroAnswer:
    """One classified answer: its meaning, Partnero's status and message, and ``data``."""

    meaning: AnswerMeaning
    status_code: int
    message: str = ""
    data: Any = None


@dataclass(frozen=True)
class Holding:
    """A live transaction as Partnero holds it (``GET /v1/transactions/{key}``)."""

    amount: Decimal  # major units
    reward_paid: bool  # a reward on it was already paid to the partner


def _rewards(data: Mapping[str, Any]) -> list[Any]:
    rewards = data.get("rewards")
    if isinstance(rewards, Mapping):  # a paginated list: {"data": [...]}
        rewards = rewards.get("data")
    return rewards if isinstance(rewards, list) else []


def _is_paid(reward: Any) -> bool:
    if not isinstance(reward, Mapping):
        return False
    return (
        str(reward.get("status") or "").lower() == "paid"
        or reward.get("is_paid") is True
        or bool(reward.get("paid_at"))
    )


def read_holding(answer: PartneroAnswer) -> Holding | None:
    """What a transaction GET says Partnero holds; None for nothing (404, deleted, archived).

    Partnero documents reward states created -> approved -> paid (its webhook events) but
    not their JSON on a transaction, so a reward counts as paid when its ``status`` is
    "paid", ``is_paid`` is true or ``paid_at`` is set.

    Raises RetryableError when a live transaction has no readable amount.
    """
    if answer.meaning == AnswerMeaning.NOT_FOUND:
        return None
    data = answer.data if isinstance(answer.data, Mapping) else {}
    if data.get("deleted") or data.get("deleted_at") or data.get("archived"):
        return None
    try:
        amount = parse_amount(data.get("amount"))
    except ValueError:
        raise RetryableError("Partnero's transaction has no readable amount") from None
    return Holding(amount=amount, reward_paid=any(_is_paid(r) for r in _rewards(data)))


_PARTNER = re.compile(r"partner", re.IGNORECASE)
_DUPLICATE = re.compile(r"already (exists|been taken)|duplicate", re.IGNORECASE)
_UNKNOWN_CUSTOMER = re.compile(
    r"customer.*(not (be )?found|does not exist|doesn't exist|not exist|invalid|unknown)"
    r"|(unknown|invalid|no such) customer",
    re.IGNORECASE,
)
_MAX_MESSAGE = 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf", "nan" or absurd values are not a wait time anyone meant.
        return max(0.0, min(seconds, MAX_VISIBILITY_SECONDS)) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, min((when - current).total_seconds(), MAX_VISIBILITY_SECONDS))


def _texts_of(body: Any) -> list[str]:
    """Partnero's error texts: ``message``, then each per-field ``errors`` entry."""
    if not isinstance(body, dict):
        return []
    texts = [str(body.get("message") or "")]
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, problems in errors.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                texts.append(f"{field}: {problem}")
    return [text for text in texts if text]


def _any_matches(pattern: re.Pattern[str], texts: list[str]) -> bool:
    # Each text on its own: joined, a pattern could match across two unrelated fields.
    return any(pattern.search(text) for text in texts)


# Refusals that are outcomes, not failures: the status, what a text says, what it means.
_REFUSALS = (
    (400, _PARTNER, AnswerMeaning.NOT_REFERRED),
    (422, _DUPLICATE, AnswerMeaning.DUPLICATE),
    (422, _UNKNOWN_CUSTOMER, AnswerMeaning.NOT_REFERRED),
)


def classify_answer(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    keyed_resource: bool = False,
) -> PartneroAnswer:
    """Turn one HTTP answer into an outcome, or raise the failure it stands for.

    ``keyed_resource`` is true for requests addressing one customer or transaction by key,
    where 404 means "no such thing" rather than a wrong base URL.
    """
    parsed = _json_body(status_code, body)
    texts = _texts_of(parsed)
    message = " | ".join(texts)[:_MAX_MESSAGE]
    if 200 <= status_code < 300:
        data = parsed.get("data") if isinstance(parsed, dict) else parsed
        return PartneroAnswer(AnswerMeaning.OK, status_code, message, data)
    if status_code == 404 and keyed_resource:
        return PartneroAnswer(AnswerMeaning.NOT_FOUND, status_code, message)
    for status, pattern, meaning in _REFUSALS:
        if status_code == status and _any_matches(pattern, texts):
            return PartneroAnswer(meaning, status_code, message)
    raise _failure(status_code, message or "no message", headers)


def _json_body(status_code: int, body: bytes) -> Any:
    """The body as JSON; None when empty or not JSON (RetryableError for a 2xx: a success
    whose body cannot be read is no success)."""
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        if 200 <= status_code < 300:
            raise RetryableError(
                f"Partnero answered {status_code} with a body that is not JSON"
            ) from None
        return None


def _failure(status_code: int, message: str, headers: Mapping[str, str]) -> DeliveryError:
    """The failure an answer that is no outcome stands for (see the module docstring)."""
    if status_code in (401, 403):
        return ConfigurationError(f"Partnero refused the API key ({status_code}): {message}")
    if status_code == 404:
        return ConfigurationError("Partnero answered 404 for a collection: check PARTNERO_API_URL")
    if status_code in (408, 425, 429) or status_code >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RetryableError(f"Partnero answered {status_code}: {message}", retry_after)
    return PermanentError(f"Partnero rejected the request ({status_code}): {message}")


def _key_path(collection: str, key: str) -> str:
    return f"{collection}/{quote(key, safe='')}"


class PartneroClient:
    """One per container: keeps the connection pool warm between invocations."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        timeout_seconds: float,
        on_unauthorized: Callable[[], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._on_unauthorized = on_unauthorized
        self._http = pooled_client(
            base_url, timeout_seconds, {"Content-Type": "application/json"}, transport
        )

    def close(self) -> None:
        self._http.close()

    def create_customer(self, body: Mapping[str, Any]) -> PartneroAnswer:
        return self._send("POST", "customers", body)

    def create_transaction(self, body: Mapping[str, Any]) -> PartneroAnswer:
        return self._send("POST", "transactions", body)

    def get_customer(self, key: str) -> PartneroAnswer:
        return self._send("GET", _key_path("customers", key), keyed=True)

    def get_transaction(self, key: str) -> PartneroAnswer:
        return self._send("GET", _key_path("transactions", key), keyed=True)

    def delete_transaction(self, key: str) -> PartneroAnswer:
        return self._send("DELETE", _key_path("transactions", key), keyed=True)

    def customer_transactions(self, customer_key: str, limit: int = 50) -> PartneroAnswer:
        """``GET /v1/transactions?customer.key=...``: the first page (oldest first) of the
        customer's live transactions, whoever made them."""
        return self._send(
            "GET", "transactions", params={"customer.key": customer_key, "limit": str(limit)}
        )

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        keyed: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> PartneroAnswer:
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self._api_key()}"}
        operation = f"{method} {path.split('/', 1)[0]}"
        started = time.perf_counter()
        response = send(
            self._http, "Partnero", method, path, content=content, headers=headers, params=params
        )
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info(
            "partnero call",
            extra={
                "operation": operation,
                "status_code": response.status_code,
                "elapsed_ms": elapsed_ms,
            },
        )
        try:
            return classify_answer(
                response.status_code, response.content, response.headers, keyed_resource=keyed
            )
        except ConfigurationError:
            if response.status_code == 401 and self._on_unauthorized is not None:
                self._on_unauthorized()
            raise

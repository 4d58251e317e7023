"""Fixed-window counters in DynamoDB, for limits that must hold across function instances.

Two uses: unsigned sign-ups per client address per minute (ingest) and sign-ups per
partner key per hour (processing). One item per subject and window, key
``pk = "<limit>#<hash of the subject>#<window start, unix seconds>"``, attribute ``hits``
(a number) raised by one ``UpdateItem ... ADD`` per call, so concurrent callers never lose
a count. ``expires_at`` (the table's TTL attribute) lets DynamoDB delete items after their
window; reads never need that, since a new window is a new key.

The subject is hashed: the table holds no client IP address and no partner key as such.

A fixed window lets a caller send up to twice the limit across a window boundary; that is
the usual price of one write per call, and enough to bound abuse.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Items outlive their window a little, so an item is never deleted while it still counts.
_TTL_MARGIN_SECONDS = 300


class RateLimitUnavailable(Exception):
    """The counter store could not be reached or did not answer (the limit is unknown)."""


@dataclass(frozen=True)
class Window:
    """One fixed window: ``[start, start + seconds)`` in unix seconds."""

    start: int
    seconds: int

    @property
    def end(self) -> int:
        return self.start + self.seconds

    def seconds_left(self, now: float) -> int:
        """Whole seconds until the next window starts (at least 1): a Retry-After value."""
        return max(1, math.ceil(self.end - now))


def window_of(now: float, seconds: int) -> Window:
    """The window of ``seconds`` that ``now`` falls in (windows start at multiples of it)."""
    start = int(now) - int(now) % seconds
    return Window(start, seconds)


def counter_key(limit: str, subject: str, window: Window) -> str:
    """The item key of ``subject``'s counter of the ``limit`` (its name) in ``window``."""
    digest = hashlib.sha256(f"{limit}\x1f{subject}".encode()).hexdigest()[:32]
    return f"{limit}#{digest}#{window.start}"


@dataclass(frozen=True)
class Count:
    """The number of calls in ``window`` so far, this one included."""

    hits: int
    window: Window


class CounterStore:
    """Fixed-window counters in the rate-limit table (``BRIDGE_RATE_LIMIT_TABLE``)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def hit(self, limit: str, subject: str, seconds: int, now: float | None = None) -> Count:
        """Count one call of ``subject`` in the current window of ``seconds``.

        Raises :class:`RateLimitUnavailable` when there is no table or DynamoDB fails
        (error answer, timeout, connection failure): callers decide what an unknown count
        means for them.
        """
        now = time.time() if now is None else now
        window = window_of(now, seconds)
        if not self._table:
            raise RateLimitUnavailable("no rate-limit table is configured")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": counter_key(limit, subject, window)}},
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":expires": {"N": str(window.end + _TTL_MARGIN_SECONDS)},
                },
                ReturnValues="UPDATED_NEW",
            )
            hits = int(answer["Attributes"]["hits"]["N"])
        except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
            raise RateLimitUnavailable(f"rate-limit store failed: {type(exc).__name__}") from exc
        return Count(hits, window)

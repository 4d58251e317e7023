"""Parked Ecwid webhooks: verified order webhooks of stores that are not configured (yet).

They are not dead letters (nothing failed: a shop installed the app before its store was
added to ``ECWID_STORE_IDS``, or someone replays a captured webhook with another storeId,
which the signature does not cover), so they live in a table of their own, without an
alarm, until ``partnero-bridge parked replay`` sends them to the work queue once their
store is configured, or their retention runs out (DynamoDB TTL).

- One item per eventId (``webhook#<eventId>``), written with ``attribute_not_exists``: a
  webhook redelivered or replayed is parked once. The key is the signed eventId alone, so
  one captured webhook can never be parked under many invented store ids.
- A cap per store: a counter item per store and retention period
  (``store#<storeId>#<period>``), incremented in the same transaction only while below
  the cap. A store therefore parks at most ``max_per_store`` webhooks per retention period
  (so at most about twice that many are alive at any time); over it, a webhook is dropped,
  and the caller counts and logs it.

The item keeps the queue envelope exactly as ingest built it, so a replay is that body
sent to the work queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from partnero_bridge.envelope import QueueEnvelope

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        ScanInputTypeDef,
        TransactWriteItemTypeDef,
    )

WEBHOOK_PREFIX = "webhook#"
COUNTER_PREFIX = "store#"
DAY_SECONDS = 24 * 3600


class ParkResult(StrEnum):
    PARKED = "parked"
    ALREADY_PARKED = "already_parked"
    OVER_CAP = "over_cap"


@dataclass(frozen=True)
class ParkedWebhook:
    """One parked webhook as stored."""

    event_id: str
    store_id: str
    event_type: str
    order_id: str
    event_created: int
    received_at: str
    parked_at: int
    expires_at: int
    envelope: str

    @property
    def key(self) -> str:
        return f"{WEBHOOK_PREFIX}{self.event_id}"

    def row(self) -> dict[str, Any]:
        """What a listing shows (the envelope is left out)."""
        return {
            "event_id": self.event_id,
            "store_id": self.store_id,
            "event_type": self.event_type,
            "order_id": self.order_id,
            "event_created": self.event_created,
            "received_at": self.received_at,
            "parked_at": self.parked_at,
            "expires_at": self.expires_at,
        }

    def to_item(self) -> dict[str, AttributeValueTypeDef]:
        """The item as stored (``from_item`` reads it back)."""
        texts = ("event_id", "store_id", "event_type", "order_id", "received_at", "envelope")
        numbers = ("event_created", "parked_at", "expires_at")
        item: dict[str, AttributeValueTypeDef] = {"pk": {"S": self.key}}
        item |= {name: {"S": getattr(self, name)} for name in texts}
        item |= {name: {"N": str(getattr(self, name))} for name in numbers}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ParkedWebhook:
        def text(name: str) -> str:
            return str(item.get(name, {}).get("S", ""))

        def number(name: str) -> int:
            return int(item.get(name, {}).get("N", "0"))

        return cls(
            event_id=text("event_id"),
            store_id=text("store_id"),
            event_type=text("event_type"),
            order_id=text("order_id"),
            event_created=number("event_created"),
            received_at=text("received_at"),
            parked_at=number("parked_at"),
            expires_at=number("expires_at"),
            envelope=text("envelope"),
        )


def _cancellation_codes(error: Exception) -> list[str]:
    response: dict[str, Any] = getattr(error, "response", {}) or {}
    return [str(reason.get("Code") or "None") for reason in response.get("CancellationReasons", [])]


class ParkedWebhooks:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        max_per_store: int = 1000,
        retention_days: int = 14,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self.table = table
        self.max_per_store = max_per_store
        self.retention_seconds = retention_days * DAY_SECONDS
        self._clock = clock

    def counter_key(self, store_id: str, now: int) -> str:
        return f"{COUNTER_PREFIX}{store_id}#{now // self.retention_seconds}"

    def park(
        self,
        envelope: QueueEnvelope,
        *,
        store_id: str,
        event_id: str,
        event_type: str,
        order_id: str | None,
        event_created: int,
    ) -> ParkResult:
        """Keep the webhook once per eventId, within the store's cap.

        Raises on anything but the two refusals it reports (DynamoDB unreachable, say):
        the caller then answers 503, so Ecwid keeps the webhook and retries.
        """
        from botocore.exceptions import ClientError

        now = int(self._clock())
        webhook = ParkedWebhook(
            event_id=event_id,
            store_id=store_id,
            event_type=event_type,
            order_id=order_id or "",
            event_created=event_created,
            received_at=envelope.received_at.isoformat(),
            parked_at=now,
            expires_at=now + self.retention_seconds,
            envelope=envelope.model_dump_json(),
        )
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table,
                "Item": webhook.to_item(),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        try:
            self._dynamodb.transact_write_items(TransactItems=[put, self._counted(store_id, now)])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(error)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return ParkResult.ALREADY_PARKED
            if codes[1:2] == ["ConditionalCheckFailed"]:
                return ParkResult.OVER_CAP
            raise
        return ParkResult.PARKED

    def _counted(self, store_id: str, now: int) -> TransactWriteItemTypeDef:
        """The store's counter of this period, one up while below the cap; it lives until
        the period after next has begun (every webhook it counted has expired by then)."""
        period_end = (now // self.retention_seconds + 2) * self.retention_seconds
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": self.counter_key(store_id, now)}},
                "UpdateExpression": "ADD parked :one SET expires_at = :expires",
                "ConditionExpression": "attribute_not_exists(parked) OR parked < :cap",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":cap": {"N": str(self.max_per_store)},
                    ":expires": {"N": str(period_end)},
                },
            }
        }

    # -- for the operator's CLI (its own credentials; the function can only park) ----------
    def scan(self) -> Iterator[ParkedWebhook]:
        """Every parked webhook that has not expired, oldest first."""
        now = int(self._clock())
        found: list[ParkedWebhook] = []
        request: ScanInputTypeDef = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": WEBHOOK_PREFIX}},
        }
        while True:
            page = self._dynamodb.scan(**request)
            found += [ParkedWebhook.from_item(dict(item)) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
            request["ExclusiveStartKey"] = start
        # TTL deletes lazily: an expired item may still be read for a while.
        alive = [parked for parked in found if parked.expires_at > now]
        yield from sorted(alive, key=lambda parked: (parked.parked_at, parked.event_id))

    def remove(self, parked: ParkedWebhook) -> None:
        self._dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": parked.key}})

"""The ledger: what the bridge has told Partnero, keyed by the business object.

Powertools idempotency deduplicates deliveries; the ledger deduplicates *business facts*
(a customer, later an order or a payment) across different deliveries about the same thing
and survives the expiry of idempotency records.

Keys: ``customer#<customer key>`` for customers created from sign-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def customer_ledger_key(customer_key: str) -> str:
    return f"customer#{customer_key}"


@dataclass(frozen=True)
class CustomerRecord:
    customer_key: str
    status: str
    partner_key: str
    delivery_id: str
    detail: str = ""


class Ledger:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def record_customer(self, record: CustomerRecord) -> None:
        """Write what happened to a customer in one call (no read first).

        No intent is needed before the Partnero call: Partnero refuses a second customer
        with the same key, so a retry after a crash is harmless.
        """
        now = datetime.now(UTC).isoformat()
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": customer_ledger_key(record.customer_key)}},
            UpdateExpression=(
                "SET entity = :entity, #status = :status, partner_key = :partner, "
                "last_delivery_id = :delivery, detail = :detail, updated_at = :now, "
                "created_at = if_not_exists(created_at, :now) ADD deliveries :one"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":entity": {"S": "customer"},
                ":status": {"S": record.status},
                ":partner": {"S": record.partner_key},
                ":delivery": {"S": record.delivery_id},
                ":detail": {"S": record.detail[:500]},
                ":now": {"S": now},
                ":one": {"N": "1"},
            },
        )

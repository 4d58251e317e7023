"""The identity map: Stripe customer id -> Partnero customer key (and partner, opt-out).

Learned from ``customer.created``/``customer.updated`` metadata and from checkout
sessions, so a renewal invoice that carries no metadata still finds its customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


@dataclass(frozen=True)
class Identity:
    customer_key: str | None = None
    partner_key: str | None = None
    opted_out: bool = False


def identity_key(stripe_customer: str) -> str:
    return f"stripe-customer#{stripe_customer}"


class IdentityMap:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def get(self, stripe_customer: str) -> Identity | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": identity_key(stripe_customer)}}
        ).get("Item")
        if not item:
            return None
        return Identity(
            customer_key=item.get("customer_key", {}).get("S"),
            partner_key=item.get("partner_key", {}).get("S"),
            opted_out=item.get("opted_out", {}).get("BOOL", False),
        )

    def learn(self, stripe_customer: str, identity: Identity, *, replace_opt_out: bool) -> None:
        """Merge what is known; fields that are unknown now are kept as they were."""
        sets = ["entity = :entity", "updated_at = :now"]
        values: dict[str, AttributeValueTypeDef] = {
            ":entity": {"S": "stripe_customer"},
            ":now": {"S": datetime.now(UTC).isoformat()},
        }
        if identity.customer_key:
            sets.append("customer_key = :ckey")
            values[":ckey"] = {"S": identity.customer_key}
        if identity.partner_key:
            sets.append("partner_key = :pkey")
            values[":pkey"] = {"S": identity.partner_key}
        if replace_opt_out:
            sets.append("opted_out = :out")
            values[":out"] = {"BOOL": identity.opted_out}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": identity_key(stripe_customer)}},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues=values,
        )

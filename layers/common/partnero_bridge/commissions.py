"""Exactly one Partnero transaction per business object, whatever arrives how often.

A *commission* is what Partnero should hold for one business key (an Ecwid order, a
Stripe payment): a transaction with an amount, or nothing (reversed). The reconciler
compares that target with what the ledger says Partnero holds and makes the difference:
create, delete, or delete and re-create with the original date (Partnero has no partial
refund). Partnero does not enforce unique transaction keys, so this is the only guard
against paying a commission twice.

Protocol per business key (one ledger item):
1. claim: a conditional write takes a lease on the item (no lease held, or it expired)
   and returns the previous state in the same call;
2. if the previous holder crashed or failed mid-way (lease expired or ``needs_check``),
   ask Partnero what it holds (GET the transaction key) instead of trusting the ledger;
3. send only the difference to Partnero;
4. record the new state and release the lease, conditional on still holding it.
A failure between 2 and 4 leaves ``needs_check`` (or an expiring lease), so the next
attempt looks before it sends again.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from partnero_bridge.envelope import Outcome, OutcomeStatus
from partnero_bridge.errors import DeliveryError, RetryableError
from partnero_bridge.money import json_number, parse_amount
from partnero_bridge.observability import logger, mask_key
from partnero_bridge.partnero import AnswerKind, PartneroClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


@dataclass(frozen=True)
class Commission:
    """The transaction Partnero should hold for one business object."""

    transaction_key: str
    amount: Decimal
    currency: str
    customer_key: str
    partner_key: str | None = None
    email: str | None = None
    name: str | None = None
    surname: str | None = None
    created_at: int | None = None  # the sale's time, kept when a transaction is re-created
    product_id: str | None = None
    product_type: str | None = None


def transaction_request(commission: Commission) -> dict[str, Any]:
    """Partnero's ``POST /v1/transactions`` body.

    With a partner key the customer is created in the same call (``create_customer``);
    without one the transaction goes to an existing customer (e.g. from a sign-up).
    """
    customer: dict[str, Any] = {"key": commission.customer_key}
    body: dict[str, Any] = {
        "customer": customer,
        "key": commission.transaction_key,
        "amount": json_number(commission.amount),
        "amount_units": commission.currency.upper(),
        "action": "sale",
    }
    if commission.partner_key:
        customer["partner"] = {"key": commission.partner_key}
        for field in ("email", "name", "surname"):
            value = getattr(commission, field)
            if value:
                customer[field] = value
        body["options"] = {"create_customer": True}
    if commission.product_id:
        body["product_id"] = commission.product_id
    if commission.product_type:
        body["product_type"] = commission.product_type
    if commission.created_at:
        body["created_at"] = commission.created_at
    return body


@dataclass(frozen=True)
class LedgerState:
    """What the ledger says Partnero holds for a business key."""

    exists: bool = False
    state: str = "absent"  # "recorded", "absent" or "not_referred"
    amount: Decimal | None = None
    currency: str | None = None
    transaction_key: str | None = None
    customer_key: str | None = None
    partner_key: str | None = None
    created_at: int | None = None
    uncertain: bool = False  # a previous attempt may have reached Partnero unrecorded

    @classmethod
    def from_item(cls, item: dict[str, AttributeValueTypeDef] | None, now: float) -> LedgerState:
        if not item:
            return cls()

        def text(name: str) -> str | None:
            value = item.get(name)
            return value.get("S") if value else None

        def number(name: str) -> str | None:
            value = item.get(name)
            return value.get("N") if value else None

        lease = number("lease_until")
        crashed = lease is not None and float(lease) < now
        amount = text("amount")
        created_at = number("created_at_epoch")
        return cls(
            exists=True,
            state=text("commission_state") or "absent",
            amount=parse_amount(amount) if amount else None,
            currency=text("currency"),
            transaction_key=text("transaction_key"),
            customer_key=text("customer_key"),
            partner_key=text("partner_key"),
            created_at=int(created_at) if created_at else None,
            uncertain=crashed or "needs_check" in item,
        )


class LeaseHeld(RetryableError):
    """Another invocation is working on the same business key right now."""


class TransactionLedger:
    """DynamoDB I/O of the reconciler: claim, release, record. Nothing else."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str, lease_seconds: int) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._lease_seconds = lease_seconds

    def claim(self, ledger_key: str, token: str, now: float) -> LedgerState:
        from botocore.exceptions import ClientError

        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ledger_key}},
                UpdateExpression="SET lease_token = :token, lease_until = :until, entity = :entity",
                ConditionExpression="attribute_not_exists(lease_token) OR lease_until < :now",
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": str(int(now) + self._lease_seconds)},
                    ":now": {"N": str(int(now))},
                    ":entity": {"S": "transaction"},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise LeaseHeld(
                    "another invocation is working on this order or payment", retry_after=5
                ) from None
            raise
        return LedgerState.from_item(answer.get("Attributes"), now)

    def release(self, ledger_key: str, token: str, needs_check: bool) -> None:
        """Give the lease back without a new state (nothing sent, or sending failed)."""
        expression = "REMOVE lease_token, lease_until"
        if needs_check:
            expression += " SET needs_check = :yes"
        values: dict[str, AttributeValueTypeDef] = {":token": {"S": token}}
        if needs_check:
            values[":yes"] = {"BOOL": True}
        self._conditional_update(ledger_key, token, expression, values)

    def record(
        self,
        ledger_key: str,
        token: str,
        state: str,
        commission: Commission | None,
        previous: LedgerState,
        delivery_id: str,
        detail: str,
    ) -> None:
        values: dict[str, AttributeValueTypeDef] = {
            ":token": {"S": token},
            ":state": {"S": state},
            ":delivery": {"S": delivery_id},
            ":detail": {"S": detail[:500]},
            ":now": {"S": datetime.now(UTC).isoformat()},
        }
        sets = [
            "commission_state = :state",
            "last_delivery_id = :delivery",
            "detail = :detail",
            "updated_at = :now",
        ]
        removes = ["lease_token", "lease_until", "needs_check"]
        if commission is not None:
            sets += ["transaction_key = :tkey", "customer_key = :ckey", "currency = :currency"]
            values[":tkey"] = {"S": commission.transaction_key}
            values[":ckey"] = {"S": commission.customer_key}
            values[":currency"] = {"S": commission.currency}
            if commission.partner_key:
                sets.append("partner_key = :pkey")
                values[":pkey"] = {"S": commission.partner_key}
            if commission.created_at and previous.created_at is None:
                sets.append("created_at_epoch = :created")
                values[":created"] = {"N": str(commission.created_at)}
        if state == "recorded" and commission is not None:
            sets.append("amount = :amount")
            values[":amount"] = {"S": str(commission.amount)}
        else:
            removes.append("amount")
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        self._conditional_update(ledger_key, token, expression, values)

    def _conditional_update(
        self,
        ledger_key: str,
        token: str,
        expression: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> None:
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ledger_key}},
                UpdateExpression=expression,
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Our lease ran out and another attempt took over: it will look at Partnero
            # before sending, so nothing is doubled; it records the state itself.
            logger.warning(
                "ledger lease lost before recording", extra={"ledger_key": mask_key(ledger_key)}
            )


class Reconciler:
    def __init__(self, ledger: TransactionLedger, partnero: PartneroClient) -> None:
        self._ledger = ledger
        self._partnero = partnero

    def apply(self, ledger_key: str, target: Commission | None, delivery_id: str) -> Outcome:
        """Make Partnero hold ``target`` (or nothing) for ``ledger_key``."""
        token = uuid.uuid4().hex
        previous = self._ledger.claim(ledger_key, token, time.time())
        try:
            return self._apply(ledger_key, target, delivery_id, token, previous)
        except DeliveryError:
            # Partnero may or may not have acted: the next attempt must look first.
            self._ledger.release(ledger_key, token, needs_check=True)
            raise

    def _apply(
        self,
        ledger_key: str,
        target: Commission | None,
        delivery_id: str,
        token: str,
        previous: LedgerState,
    ) -> Outcome:
        if target is None and previous.transaction_key is None:
            self._ledger.release(ledger_key, token, needs_check=False)
            return Outcome(
                status=OutcomeStatus.IGNORED,
                detail="no transaction to reverse",
                ledger_key=ledger_key,
            )
        key = target.transaction_key if target else previous.transaction_key
        assert key is not None
        held = self._held_amount(key, previous)

        if (
            target is not None
            and previous.state == "not_referred"
            and not previous.uncertain
            and (previous.customer_key, previous.partner_key)
            == (target.customer_key, target.partner_key)
        ):
            self._ledger.release(ledger_key, token, needs_check=False)
            return Outcome(
                status=OutcomeStatus.NOT_REFERRED,
                ledger_key=ledger_key,
                detail="Partnero already said this customer is not referred",
            )
        if target is not None and held == target.amount:
            self._ledger.record(
                ledger_key,
                token,
                "recorded",
                target,
                previous,
                delivery_id,
                "already held by Partnero",
            )
            return Outcome(
                status=OutcomeStatus.ALREADY_RECORDED,
                ledger_key=ledger_key,
                detail=f"Partnero holds {held} {target.currency}",
            )
        if target is None and held is None:
            self._ledger.record(
                ledger_key, token, "absent", None, previous, delivery_id, "nothing held by Partnero"
            )
            return Outcome(
                status=OutcomeStatus.ALREADY_RECORDED,
                ledger_key=ledger_key,
                detail="already reversed",
            )

        if held is not None:
            answer = self._partnero.delete_transaction(key)
            if answer.kind not in (AnswerKind.OK, AnswerKind.NOT_FOUND):
                raise RetryableError(f"unexpected answer {answer.kind} to a delete")
        if target is None:
            self._ledger.record(
                ledger_key, token, "absent", None, previous, delivery_id, f"reversed {held}"
            )
            return Outcome(
                status=OutcomeStatus.SENT,
                ledger_key=ledger_key,
                detail=f"reversed transaction {key}",
            )

        commission = target
        if previous.created_at and target.created_at != previous.created_at:
            # A re-created transaction keeps the sale's original date.
            commission = Commission(**{**target.__dict__, "created_at": previous.created_at})
        answer = self._partnero.create_transaction(transaction_request(commission))
        if answer.kind == AnswerKind.NOT_REFERRED:
            self._ledger.record(
                ledger_key, token, "not_referred", commission, previous, delivery_id, answer.message
            )
            return Outcome(
                status=OutcomeStatus.NOT_REFERRED,
                ledger_key=ledger_key,
                detail=answer.message or "not referred",
            )
        if answer.kind != AnswerKind.OK:
            raise RetryableError(f"unexpected answer {answer.kind} to a transaction create")
        self._ledger.record(
            ledger_key,
            token,
            "recorded",
            commission,
            previous,
            delivery_id,
            "replaced" if held is not None else "created",
        )
        verb = f"replaced {held} with" if held is not None else "created"
        return Outcome(
            status=OutcomeStatus.SENT,
            ledger_key=ledger_key,
            detail=f"{verb} {commission.amount} {commission.currency}",
        )

    def _held_amount(self, key: str, previous: LedgerState) -> Decimal | None:
        """What Partnero holds under ``key``: the ledger's word, or Partnero's when unsure."""
        if not previous.uncertain:
            return previous.amount if previous.state == "recorded" else None
        answer = self._partnero.get_transaction(key)
        if answer.kind == AnswerKind.NOT_FOUND:
            return None
        data = answer.data if isinstance(answer.data, dict) else {}
        if data.get("deleted") or data.get("deleted_at"):
            return None
        try:
            return parse_amount(data.get("amount"))
        except ValueError:
            raise RetryableError("Partnero's transaction has no readable amount") from None

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

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from partnero_bridge.envelope import Outcome, OutcomeStatus
from partnero_bridge.errors import RetryableError
from partnero_bridge.money import json_number, parse_amount
from partnero_bridge.observability import logger, mask_key
from partnero_bridge.partnero import AnswerKind, PartneroClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef


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
    facts: dict[str, Any] = field(default_factory=dict)  # source-specific (refunds, ...)
    alias_of: str | None = None  # this key only points at another business key

    @classmethod
    def from_item(cls, item: Mapping[str, AttributeValueTypeDef] | None, now: float) -> LedgerState:
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
        facts = text("facts")
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
            facts=json.loads(facts) if facts else {},
            alias_of=text("alias_of"),
        )

    def commission(self, amount: Decimal) -> Commission | None:
        """The recorded transaction again with another amount (after a refund, say)."""
        if not (self.transaction_key and self.customer_key and self.currency):
            return None
        return Commission(
            transaction_key=self.transaction_key,
            amount=amount,
            currency=self.currency,
            customer_key=self.customer_key,
            partner_key=self.partner_key,
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class Plan:
    """What Partnero should hold for a business key, decided knowing the ledger's state."""

    target: Commission | None  # None: nothing (reversed, refunded, opted out, zero)
    reason: str = ""
    facts: dict[str, Any] | None = None  # replaces the stored facts when given
    aliases: tuple[str, ...] = ()  # other ledger keys that should point at this one
    hold: bool = False  # leave Partnero as it is (e.g. a sale not paid yet)


Planner = Callable[[LedgerState], Plan]


class LeaseHeld(RetryableError):
    """Another invocation is working on the same business key right now."""


class TransactionLedger:
    """DynamoDB I/O of the reconciler: look up, claim, release, record. Nothing else."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str, lease_seconds: int) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._lease_seconds = lease_seconds

    def lookup(self, ledger_key: str) -> LedgerState:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": ledger_key}}, ConsistentRead=True
        ).get("Item")
        return LedgerState.from_item(item, time.time())

    def link(self, alias: str, ledger_key: str) -> None:
        """Make ``alias`` point at ``ledger_key`` (unless it is a real entry itself)."""
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={"pk": {"S": alias}, "alias_of": {"S": ledger_key}, "entity": {"S": "alias"}},
                ConditionExpression="attribute_not_exists(commission_state)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

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
        values: dict[str, AttributeValueTypeDef] = {":token": {"S": token}}
        if needs_check:
            expression += " SET needs_check = :yes"
            values[":yes"] = {"BOOL": True}
        self._update(ledger_key, expression, values)

    def record(
        self,
        ledger_key: str,
        token: str,
        state: str,
        commission: Commission | None,
        previous: LedgerState,
        delivery_id: str,
        detail: str,
        plan: Plan | None = None,
    ) -> None:
        """Store the new state and release the lease, in one conditional write.

        Aliases (other ids of the same payment) are written in the same transaction, so a
        refund that names only one of them finds this entry.
        """
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
        if plan is not None and plan.facts is not None:
            sets.append("facts = :facts")
            values[":facts"] = {"S": json.dumps(plan.facts, sort_keys=True, default=str)}
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        aliases = [a for a in (plan.aliases if plan else ()) if a != ledger_key]
        if not aliases:
            self._update(ledger_key, expression, values)
            return
        self._record_with_aliases(ledger_key, expression, values, aliases)

    def _record_with_aliases(
        self,
        ledger_key: str,
        expression: str,
        values: dict[str, AttributeValueTypeDef],
        aliases: list[str],
    ) -> None:
        from botocore.exceptions import ClientError

        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": ledger_key}},
                    "UpdateExpression": expression,
                    "ConditionExpression": "lease_token = :token",
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        for alias in aliases:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": alias},
                            "alias_of": {"S": ledger_key},
                            "entity": {"S": "alias"},
                        },
                        # Never turn a real entry into a pointer.
                        "ConditionExpression": "attribute_not_exists(commission_state)",
                    }
                }
            )
        try:
            self._dynamodb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                self._lost_lease(ledger_key)
                return
            # An alias collided with a real entry: keep the record, skip the pointers.
            logger.warning("ledger alias not written", extra={"ledger_key": mask_key(ledger_key)})
            self._update(ledger_key, expression, values)

    def _update(
        self, ledger_key: str, expression: str, values: dict[str, AttributeValueTypeDef]
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
            self._lost_lease(ledger_key)

    @staticmethod
    def _lost_lease(ledger_key: str) -> None:
        # Our lease ran out and another attempt took over: it looks at Partnero before
        # sending, so nothing is doubled, and it records the state itself.
        logger.warning(
            "ledger lease lost before recording", extra={"ledger_key": mask_key(ledger_key)}
        )


class Reconciler:
    def __init__(self, ledger: TransactionLedger, partnero: PartneroClient) -> None:
        self.ledger = ledger
        self._partnero = partnero

    def apply(
        self, ledger_key: str, target: Commission | Planner | None, delivery_id: str
    ) -> Outcome:
        """Make Partnero hold ``target`` (or nothing) for ``ledger_key``.

        ``target`` may be a planner: a function of the ledger's previous state, for
        decisions that depend on it (a refund reduces what was recorded).
        """
        planner: Planner = target if callable(target) else (lambda _state: Plan(target))
        token = uuid.uuid4().hex
        previous = self.ledger.claim(ledger_key, token, time.time())
        try:
            plan = planner(previous)
            return self._apply(ledger_key, plan, delivery_id, token, previous)
        except Exception:
            # Partnero may or may not have acted: the next attempt must look first.
            self.ledger.release(ledger_key, token, needs_check=True)
            raise

    def _apply(
        self, ledger_key: str, plan: Plan, delivery_id: str, token: str, previous: LedgerState
    ) -> Outcome:
        target = plan.target

        def done(
            state: str, commission: Commission | None, detail: str, status: OutcomeStatus
        ) -> Outcome:
            self.ledger.record(
                ledger_key, token, state, commission, previous, delivery_id, detail, plan
            )
            return Outcome(status=status, detail=detail, ledger_key=ledger_key)

        if plan.hold:
            if plan.facts is not None or plan.aliases:
                kept = previous.state if previous.exists else "absent"
                return done(
                    kept,
                    None
                    if kept != "recorded"
                    else previous.commission(previous.amount or Decimal(0)),
                    plan.reason or "unchanged",
                    OutcomeStatus.IGNORED,
                )
            self.ledger.release(ledger_key, token, needs_check=False)
            return Outcome(
                status=OutcomeStatus.IGNORED,
                detail=plan.reason or "unchanged",
                ledger_key=ledger_key,
            )
        if target is None and previous.transaction_key is None:
            if plan.facts is not None or plan.aliases:
                return done("absent", None, plan.reason or "nothing to send", OutcomeStatus.IGNORED)
            self.ledger.release(ledger_key, token, needs_check=False)
            return Outcome(
                status=OutcomeStatus.IGNORED,
                detail=plan.reason or "no transaction to reverse",
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
            == (target.customer_key, target.partner_key or previous.partner_key)
        ):
            return done(
                "not_referred",
                target,
                "Partnero already said this customer is not referred",
                OutcomeStatus.NOT_REFERRED,
            )
        if target is not None and held == target.amount:
            return done(
                "recorded",
                target,
                f"Partnero holds {held} {target.currency}",
                OutcomeStatus.ALREADY_RECORDED,
            )
        if target is None and held is None:
            return done(
                "absent", None, plan.reason or "already reversed", OutcomeStatus.ALREADY_RECORDED
            )

        if held is not None:
            answer = self._partnero.delete_transaction(key)
            if answer.kind not in (AnswerKind.OK, AnswerKind.NOT_FOUND):
                raise RetryableError(f"unexpected answer {answer.kind} to a delete")
        if target is None:
            return done(
                "absent", None, f"reversed {held}: {plan.reason}".rstrip(": "), OutcomeStatus.SENT
            )

        commission = target
        if previous.created_at and target.created_at != previous.created_at:
            # A re-created transaction keeps the sale's original date.
            commission = replace(target, created_at=previous.created_at)
        answer = self._partnero.create_transaction(transaction_request(commission))
        if answer.kind == AnswerKind.NOT_REFERRED:
            return done(
                "not_referred",
                commission,
                answer.message or "not referred",
                OutcomeStatus.NOT_REFERRED,
            )
        if answer.kind != AnswerKind.OK:
            raise RetryableError(f"unexpected answer {answer.kind} to a transaction create")
        verb = f"replaced {held} with" if held is not None else "created"
        return done(
            "recorded",
            commission,
            f"{verb} {commission.amount} {commission.currency}",
            OutcomeStatus.SENT,
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

"""The ledger table's I/O: the only code that reads or writes it.

Powertools idempotency deduplicates deliveries; the ledger deduplicates business facts
(a customer, an order, a payment) across different deliveries about the same thing, and
records what Partnero holds. Partnero does not enforce unique transaction keys, so the
claim protocol below is the only guard against paying a commission twice:

1. ``claim``: a conditional write takes a lease on the commission item (no lease held,
   or it expired) and returns the previous record in the same call;
2. the caller asks Partnero when the previous holder may have reached it unrecorded
   (``needs_check``, or an expired lease);
3. the caller sends only the difference to Partnero;
4. ``record`` stores the new state and releases the lease in one conditional write;
   ``release`` gives the lease back without a new state (marking ``needs_check`` when
   Partnero may have acted).

Both writes also append the delivery to the item's history (``HistoryEntry``), in the same
conditional write: no extra request, and never a history entry without the state it
explains. DynamoDB's ``list_append`` cannot drop the oldest entries, so the history is
read with the claim (``ALL_OLD``), appended and trimmed here, and written whole: the claim
makes this invocation the item's only writer until it records or releases, and the write
is conditional on still holding it, so no concurrent entry can be lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from partnero_bridge.errors import RetryableError
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import (
    AliasRecord,
    CommissionRecord,
    CustomerRecord,
    HistoryEntry,
    LedgerMeta,
    Recheck,
    StripeCustomerRecord,
    append_history,
    to_attribute,
)
from partnero_bridge.observability import logger, mask_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

# Fields the claim protocol owns: never written by ``record`` as data.
_LEASE_FIELDS = ("lease_token", "lease_until", "needs_check")
# A customer keeps at most this many not-referred sales waiting for its sign-up.
MAX_WAITING_SALES = 50
# Days a commission item keeps a delivery in its history (BRIDGE_HISTORY_RETENTION_DAYS).
DEFAULT_HISTORY_RETENTION_DAYS = 400


class LeaseHeld(RetryableError):
    """Another invocation is working on the same order or payment right now."""


@dataclass(frozen=True)
class Claim:
    """A held lease on a commission item, with the record as it was before."""

    ledger_key: str
    token: str
    previous: CommissionRecord | None
    # The previous holder may have reached Partnero without recording it (its lease ran
    # out, or it failed after sending and marked ``needs_check``): ask Partnero first.
    may_have_sent: bool


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _update_parts(
    values: Mapping[str, Any], remove: tuple[str, ...] = ()
) -> tuple[str, dict[str, str], dict[str, AttributeValueTypeDef]]:
    """``SET #a = :a, ... REMOVE #b`` with every name and value escaped."""
    names: dict[str, str] = {}
    attributes: dict[str, AttributeValueTypeDef] = {}
    sets: list[str] = []
    for index, (name, value) in enumerate(values.items()):
        names[f"#s{index}"] = name
        attributes[f":s{index}"] = to_attribute(value)
        sets.append(f"#s{index} = :s{index}")
    removes = []
    for index, name in enumerate(remove):
        names[f"#r{index}"] = name
        removes.append(f"#r{index}")
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return expression, names, attributes


class Ledger:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        lease_seconds: int,
        history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._lease_seconds = lease_seconds
        self.history_retention_days = history_retention_days
        self._since: int | None = None
        self.scanned = 0  # items read by the last items_naming scan

    # -- reading --------------------------------------------------------------------------
    def _get(self, pk: str) -> dict[str, AttributeValueTypeDef] | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return dict(item) if item else None

    def commission(self, ledger_key: str) -> CommissionRecord | AliasRecord | None:
        """The commission item (or the alias) stored under ``ledger_key``."""
        item = self._get(ledger_key)
        if item is None:
            return None
        if "alias_of" in item:
            return AliasRecord.from_item(item)
        return CommissionRecord.from_item(item)

    def customer(self, customer_key: str) -> CustomerRecord | None:
        item = self._get(keys.customer(customer_key))
        return CustomerRecord.from_item(item) if item else None

    def stripe_customer(self, stripe_customer_id: str) -> StripeCustomerRecord | None:
        item = self._get(keys.stripe_customer(stripe_customer_id))
        return StripeCustomerRecord.from_item(item) if item else None

    def meta(self) -> LedgerMeta | None:
        """The ledger's own facts, read only (None before its first write)."""
        item = self._get(keys.META)
        return LedgerMeta.from_item(item) if item else None

    def since(self) -> int:
        """When this release first wrote the ledger (read once per container)."""
        if self._since is None:
            from botocore.exceptions import ClientError

            meta = LedgerMeta(pk=keys.META, since=int(time.time()))
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item=meta.to_item(),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                self._since = meta.since
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                item = self._get(keys.META)
                self._since = LedgerMeta.from_item(item).since if item else meta.since
        return self._since

    # -- the claim protocol -----------------------------------------------------------------
    def claim(self, ledger_key: str, token: str, now: float) -> Claim:
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
                    ":entity": {"S": CommissionRecord.entity_name},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise LeaseHeld(
                    "another invocation is working on this order or payment", retry_after=5
                ) from None
            raise
        old = answer.get("Attributes")
        if not old:
            return Claim(ledger_key, token, None, may_have_sent=False)
        previous = CommissionRecord.from_item(old)
        crashed = previous.lease_until is not None and previous.lease_until < now
        return Claim(
            ledger_key, token, previous, may_have_sent=crashed or bool(previous.needs_check)
        )

    def release(self, claim: Claim, needs_check: bool, entry: HistoryEntry | None = None) -> None:
        """Give the lease back without a new state (nothing sent, or sending failed).

        ``entry``: the failed delivery, appended to the item's history in the same write.
        """
        expression = "REMOVE #token, #until"
        names = {"#token": "lease_token", "#until": "lease_until"}
        values: dict[str, AttributeValueTypeDef] = {":token": {"S": claim.token}}
        sets: list[str] = []
        if needs_check:
            sets.append("needs_check = :yes")
            values[":yes"] = {"BOOL": True}
        if entry is not None:
            history = self.history_with(claim.previous, entry)
            sets.append("#history = :history")
            names["#history"] = "history"
            values[":history"] = to_attribute(
                [old.model_dump(mode="json", exclude_none=True) for old in history]
            )
        if sets:
            expression += " SET " + ", ".join(sets)
        self._conditional_update(claim, expression, names, values)

    def history_with(
        self, previous: CommissionRecord | None, entry: HistoryEntry
    ) -> list[HistoryEntry]:
        """``previous``'s history with ``entry`` appended, trimmed to the most recent
        HISTORY_LIMIT entries and this ledger's retention: what ``record`` should write."""
        return append_history(
            previous.history if previous is not None else [], entry, self.history_retention_days
        )

    def record(self, claim: Claim, record: CommissionRecord) -> list[str]:
        """Store ``record`` (its history included, see ``history_with``) and release the
        lease, in one conditional write.

        Aliases not written before are put in the same transaction, so a later event that
        names only one of a payment's other ids finds this item. Returns the aliases that
        are real entries themselves (the same payment was recorded under another id before
        it was known to be this one's): the caller settles those.
        """
        data = {
            name: value
            for name, value in record.attributes().items()
            if name not in ("pk", *_LEASE_FIELDS)
        }
        data["updated_at"] = _now_iso()
        cleared = tuple(
            name
            for name in CommissionRecord.model_fields
            if name not in data and name not in ("pk", *_LEASE_FIELDS)
        )
        expression, names, values = _update_parts(data, (*_LEASE_FIELDS, *cleared))
        values[":token"] = {"S": claim.token}
        known = set(claim.previous.aliases if claim.previous else ())
        new_aliases = [a for a in record.aliases if a not in known and a != claim.ledger_key]
        if new_aliases:
            return self._record_with_aliases(claim, expression, names, values, new_aliases)
        self._conditional_update(claim, expression, names, values)
        return []

    def _record_with_aliases(
        self,
        claim: Claim,
        expression: str,
        names: dict[str, str],
        values: dict[str, AttributeValueTypeDef],
        aliases: list[str],
    ) -> list[str]:
        from botocore.exceptions import ClientError

        update: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": claim.ledger_key}},
                "UpdateExpression": expression,
                "ConditionExpression": "lease_token = :token",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        items = [update, *(self._alias_put(alias, claim.ledger_key) for alias in aliases)]
        try:
            self._dynamodb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                self._lost_lease(claim.ledger_key)
                return []
            # An alias collided with a real entry: keep the record, skip the pointers.
            collided = [
                alias
                for alias, code in zip(aliases, reasons[1:], strict=False)
                if code == "ConditionalCheckFailed"
            ]
            logger.warning(
                "ledger alias not written: the id is recorded on its own",
                extra={"ledger_key": mask_key(claim.ledger_key), "aliases": collided},
            )
            self._conditional_update(claim, expression, names, values)
            return collided
        return []

    def _alias_put(self, alias: str, ledger_key: str) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": AliasRecord(pk=alias, alias_of=ledger_key).to_item(),
                # Never turn a real entry into a pointer.
                "ConditionExpression": "attribute_not_exists(commission_state)",
            }
        }

    def _conditional_update(
        self,
        claim: Claim,
        expression: str,
        names: dict[str, str],
        values: dict[str, AttributeValueTypeDef],
    ) -> None:
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": claim.ledger_key}},
                UpdateExpression=expression,
                ConditionExpression="lease_token = :token",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            self._lost_lease(claim.ledger_key)

    @staticmethod
    def _lost_lease(ledger_key: str) -> None:
        # Our lease ran out and another attempt took over: it looks at Partnero before
        # sending, so nothing is doubled, and it records the state itself.
        logger.warning(
            "ledger lease lost before recording", extra={"ledger_key": mask_key(ledger_key)}
        )

    def link(self, alias: str, ledger_key: str) -> None:
        """Make ``alias`` point at ``ledger_key`` (unless it is a real entry itself)."""
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=AliasRecord(pk=alias, alias_of=ledger_key).to_item(),
                ConditionExpression="attribute_not_exists(commission_state)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def ask_partnero_next(self, ledger_key: str) -> bool:
        """Make the next delivery about ``ledger_key`` ask Partnero what it holds instead of
        trusting this item (``needs_check``, as after an attempt that may have reached
        Partnero unrecorded). A reconciliation that found Partnero differing from the item
        marks it before it queues the re-check, so the re-check decides from Partnero's
        word. False: there is no such commission item (nothing to mark)."""
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ledger_key}},
                UpdateExpression="SET needs_check = :yes",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(alias_of)",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # -- customers --------------------------------------------------------------------------
    def record_customer(
        self, customer_key: str, status: str, partner_key: str, delivery_id: str, detail: str
    ) -> CustomerRecord:
        """Write what a sign-up did to a customer in one call; returns the item as it is now.

        No intent is needed before the Partnero call: Partnero refuses a second customer
        with the same key, so a retry after a crash is harmless.
        """
        now = _now_iso()
        answer = self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": keys.customer(customer_key)}},
            UpdateExpression=(
                "SET entity = :entity, #status = :status, partner_key = :partner, "
                "last_delivery_id = :delivery, detail = :detail, updated_at = :now, "
                "created_at = if_not_exists(created_at, :now) ADD deliveries :one"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":entity": {"S": CustomerRecord.entity_name},
                ":status": {"S": status},
                ":partner": {"S": partner_key},
                ":delivery": {"S": delivery_id},
                ":detail": {"S": detail[:500]},
                ":now": {"S": now},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
        )
        return CustomerRecord.from_item(answer["Attributes"])

    def wait_for_signup(
        self, customer_key: str, ledger_key: str, recheck: Recheck
    ) -> CustomerRecord:
        """Remember a not-referred sale on its customer, for a later sign-up to re-check.

        Returns the customer item as it is after the write: a sign-up that landed between
        the caller's check and this write shows here, so the sale is not left waiting for
        a sign-up that already came.
        """
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": keys.customer(customer_key)}},
                UpdateExpression=(
                    "SET entity = if_not_exists(entity, :entity), "
                    "#status = if_not_exists(#status, :pending), "
                    "not_referred_sales = if_not_exists(not_referred_sales, :empty)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":entity": {"S": CustomerRecord.entity_name},
                    ":pending": {"S": "pending"},
                    ":empty": {"M": {}},
                },
            )
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": keys.customer(customer_key)}},
                UpdateExpression="SET not_referred_sales.#sale = :recheck",
                ConditionExpression="size(not_referred_sales) < :cap",
                ExpressionAttributeNames={"#sale": ledger_key},
                ExpressionAttributeValues={
                    ":recheck": to_attribute(recheck.model_dump(mode="json")),
                    ":cap": {"N": str(MAX_WAITING_SALES)},
                },
                ReturnValues="ALL_NEW",
            )
            return CustomerRecord.from_item(answer["Attributes"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            logger.warning(
                "too many not-referred sales wait for this customer: not remembered",
                extra={"ledger_key": mask_key(ledger_key)},
            )
            found = self.customer(customer_key)
            return found or CustomerRecord(pk=keys.customer(customer_key))

    def forget_waiting_sales(self, customer_key: str, ledger_keys: list[str]) -> None:
        if not ledger_keys:
            return
        names = {f"#k{i}": key for i, key in enumerate(ledger_keys)}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": keys.customer(customer_key)}},
            UpdateExpression="REMOVE " + ", ".join(f"not_referred_sales.{n}" for n in names),
            ExpressionAttributeNames=names,
        )

    # -- forgetting a person -------------------------------------------------------------------
    def items_naming(self, customer_key: str) -> Iterator[CommissionRecord | StripeCustomerRecord]:
        """Every commission item and identity-map item whose ``customer_key`` is this one.

        The table is keyed by payment, not by customer, so this is a paginated Scan of the
        whole table (read capacity for every item): an operator's command, never processing.
        ``scanned`` counts the items read so far.
        """
        self.scanned = 0
        paginator = self._dynamodb.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            FilterExpression="customer_key = :key",
            ExpressionAttributeValues={":key": {"S": customer_key}},
            ConsistentRead=True,
        )
        for page in pages:
            self.scanned += page.get("ScannedCount", 0)
            for item in page.get("Items", []):
                entity = item.get("entity", {}).get("S")
                if entity == StripeCustomerRecord.entity_name:
                    yield StripeCustomerRecord.from_item(item)
                elif entity == CommissionRecord.entity_name:
                    yield CommissionRecord.from_item(item)

    def delete_customer(self, customer_key: str) -> CustomerRecord | None:
        """Delete the customer item of ``customer_key``; returns it as it was (None: none)."""
        answer = self._dynamodb.delete_item(
            TableName=self._table,
            Key={"pk": {"S": keys.customer(customer_key)}},
            ReturnValues="ALL_OLD",
        )
        old = answer.get("Attributes")
        return CustomerRecord.from_item(old) if old else None

    def forget_stripe_customer_key(self, pk: str, customer_key: str) -> bool:
        """Remove the customer key from an identity-map item, if it still is this one
        (partner and opt-out are kept: they name no one). False: it changed meanwhile."""
        from botocore.exceptions import ClientError

        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression="REMOVE customer_key SET updated_at = :now",
                ConditionExpression="customer_key = :key",
                ExpressionAttributeValues={":key": {"S": customer_key}, ":now": {"S": _now_iso()}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def mask_commission_texts(self, record: CommissionRecord, now: float) -> bool:
        """Write ``record``'s readable texts (``detail``, its history) back with every
        e-mail address masked (a record read from the table has them masked already; the
        item may still hold them as an earlier release wrote them), unless a delivery holds
        the item now. Amounts, keys and states are not touched. False: the item is claimed
        (run again later)."""
        from botocore.exceptions import ClientError

        values: dict[str, AttributeValueTypeDef] = {
            ":history": to_attribute(
                [e.model_dump(mode="json", exclude_none=True) for e in record.history]
            ),
            ":now": {"N": str(int(now))},
        }
        expression = "SET history = :history"
        if record.detail is not None:
            expression += ", detail = :detail"
            values[":detail"] = {"S": record.detail}
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": record.pk}},
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(lease_token) OR lease_until < :now",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # -- the Stripe identity map --------------------------------------------------------------
    def learn_stripe_customer(self, record: StripeCustomerRecord, *, replace_opt_out: bool) -> None:
        """Merge what is known; fields that are unknown now are kept as they were."""
        data = {
            name: value
            for name, value in record.attributes().items()
            if name != "pk" and (name != "opted_out" or replace_opt_out)
        }
        data["updated_at"] = _now_iso()
        expression, names, values = _update_parts(data)
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": record.pk}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

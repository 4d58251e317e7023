"""The items of the ledger table, as pydantic models, and their DynamoDB form.

Every persisted record is one of these models; nothing is serialised by hand. Attribute
names are those the previous release wrote, so items written before an upgrade are read
as they are (see docs/upgrading.md): the one field whose shape changed, a
payment's ``facts`` (a JSON string before, a map now), is accepted in both forms.

Amounts are Decimal and stored as DynamoDB strings (``"62.10"``), exactly as written,
so no number is ever rounded by the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from partnero_bridge.observability import mask_email
from partnero_bridge.stripe.facts import PaymentFacts

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

CommissionState = Literal["recorded", "absent", "not_referred"]


def _serializer() -> Any:
    # Imported on first use: boto3 is not needed by ingest's cold start.
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_attribute(value: Any) -> AttributeValueTypeDef:
    """One JSON-mode value (str, int, bool, list, dict) as a DynamoDB attribute value."""
    attribute: AttributeValueTypeDef = _serializer().serialize(value)
    return attribute


class LedgerRecord(BaseModel):
    """Base of every ledger item: ``pk`` plus the item type in ``entity``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    entity_name: ClassVar[str]

    pk: str

    def attributes(self) -> dict[str, Any]:
        """The item's attributes in JSON mode (Decimal as text), None left out."""
        values = self.model_dump(mode="json", exclude_none=True)
        values["entity"] = self.entity_name
        return values

    def to_item(self) -> dict[str, AttributeValueTypeDef]:
        serializer = _serializer()
        return {name: serializer.serialize(value) for name, value in self.attributes().items()}

    @classmethod
    def from_item(cls, item: Mapping[str, AttributeValueTypeDef]) -> Self:
        deserializer = _deserializer()
        return cls.model_validate({name: deserializer.deserialize(v) for name, v in item.items()})


class Adjustment(BaseModel):
    """A change Partnero needs but the bridge must not make: the reward is already paid."""

    model_config = ConfigDict(frozen=True)

    at: int  # Unix seconds
    transaction_key: str
    held: Decimal  # what Partnero holds (and paid a reward on)
    target: Decimal  # what it should hold now (0: nothing)
    currency: str
    reason: str


class Recheck(BaseModel):
    """What to send again to decide a not-referred sale once its customer signs up."""

    model_config = ConfigDict(frozen=True)

    at: int  # Unix seconds of the sale's not-referred decision
    source: Literal["ecwid", "stripe"]
    ref: dict[str, str]  # Ecwid: store and order id; Stripe: the ledger key


# A commission item keeps the most recent deliveries about its payment, at most this many.
HISTORY_LIMIT = 50
# Longest readable text kept per history entry.
HISTORY_DETAIL_CHARS = 300
_EMAIL_IN_TEXT = re.compile(r"[^@\s:;,()<>\[\]\"']+@[^@\s:;,()<>\[\]\"']+")


def mask_emails_in(text: str) -> str:
    """Every e-mail address inside ``text`` masked (``ja***@example.com``), once.

    Partnero's answers may name the customer; history entries keep no address. An address
    masked already is left alone, so masking twice changes nothing.
    """

    def masked(match: re.Match[str]) -> str:
        found = match.group(0)
        return found if "***" in found else mask_email(found) or ""

    return _EMAIL_IN_TEXT.sub(masked, text)


class HistoryEntry(BaseModel):
    """One processed delivery about a payment, as its commission item keeps it.

    Written in the same conditional write that records the payment's new state (or gives
    the claim back after a failure). Holds no e-mail address: customer keys are not kept,
    and addresses inside ``detail`` are masked.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    at: AwareDatetime  # when the bridge processed the delivery (UTC)
    delivery_id: str
    # Stripe: the event type; Ecwid: the webhook's eventType; "recheck": a sign-up's re-check.
    event_type: str = ""
    # An OutcomeStatus value (sent, not_referred, already_recorded, ignored,
    # adjustment_needed), or "retrying" (a transient failure) / "failed" (dead-lettered).
    outcome: str
    reason: str = ""  # the outcome's reason code, or the failure's kind
    # "created", "replaced" or "reversed" when this delivery changed Partnero, else "".
    action: str = ""
    amount: Decimal | None = None  # the transaction this delivery created, major units
    currency: str | None = None
    detail: str = ""

    @field_validator("detail", mode="after")
    @classmethod
    def _no_addresses(cls, value: str) -> str:
        return mask_emails_in(value)[:HISTORY_DETAIL_CHARS]


def append_history(
    history: Sequence[HistoryEntry],
    entry: HistoryEntry,
    retention_days: int,
    limit: int = HISTORY_LIMIT,
) -> list[HistoryEntry]:
    """``history`` with ``entry`` appended, keeping the ``limit`` most recent entries and
    none older than ``retention_days`` before ``entry`` (the history's own time to live:
    the commission item itself never expires, it is the record of what Partnero holds)."""
    oldest = entry.at - timedelta(days=retention_days)
    kept = [old for old in history if old.at >= oldest]
    return [*kept, entry][-limit:]


def within_retention(
    history: Sequence[HistoryEntry], now: datetime, retention_days: int
) -> list[HistoryEntry]:
    """The entries not older than ``retention_days`` at ``now`` (older ones are dropped at
    the item's next write, and never shown)."""
    oldest = now - timedelta(days=retention_days)
    return [entry for entry in history if entry.at >= oldest]


class CommissionRecord(LedgerRecord):
    """What Partnero holds for one order or payment, and how the bridge got there.

    Identity (``transaction_key``, ``customer_key``, ``partner_key``, ``created_at_epoch``)
    is fixed when the first transaction is created and reused by every re-creation.
    """

    entity_name: ClassVar[str] = "transaction"

    commission_state: CommissionState = "absent"
    amount: Decimal | None = None  # what Partnero holds, major units (None: nothing)
    currency: str | None = None
    transaction_key: str | None = None
    customer_key: str | None = None
    partner_key: str | None = None
    created_at_epoch: int | None = None  # the sale's time, kept for re-creations
    # Every transaction key used for this payment (a re-created one may carry a suffix).
    transaction_keys: list[str] = Field(default_factory=list)
    reason: str | None = None  # why the state is what it is, as a reason code
    detail: str | None = None
    facts: PaymentFacts | None = None  # Stripe: what the payment's events said
    adjustments: list[Adjustment] = Field(default_factory=list)
    recheck: Recheck | None = None
    aliases: list[str] = Field(default_factory=list)  # alias items pointing here
    last_delivery_id: str | None = None
    updated_at: str | None = None
    # The most recent deliveries about this payment, oldest first (see HistoryEntry).
    history: list[HistoryEntry] = Field(default_factory=list)
    # The claim protocol (see ledger.store): set while an attempt holds the item.
    lease_token: str | None = None
    lease_until: int | None = None
    needs_check: bool | None = None

    @field_validator("detail", mode="after")
    @classmethod
    def _no_addresses(cls, value: str | None) -> str | None:
        # Partnero's answers may name the customer: no e-mail address is kept in the text.
        return mask_emails_in(value) if value is not None else None

    @field_validator("facts", mode="before")
    @classmethod
    def _facts_from_json_text(cls, value: object) -> object:
        # The previous release stored facts as a JSON string.
        return json.loads(value) if isinstance(value, str) else value

    @property
    def identity_fixed(self) -> bool:
        """True once a transaction was created for this payment (its identity is set)."""
        if self.transaction_keys:
            return True
        # Items of the previous release: a recorded or reversed transaction.
        return self.transaction_key is not None and self.commission_state != "not_referred"

    @property
    def holds(self) -> Decimal | None:
        """What the ledger says Partnero holds now (None: nothing)."""
        return self.amount if self.commission_state == "recorded" else None


class AliasRecord(LedgerRecord):
    """Another id of a payment or order, pointing at its commission item."""

    entity_name: ClassVar[str] = "alias"

    alias_of: str


class CustomerRecord(LedgerRecord):
    """A Partnero customer as sign-ups made it, and the sales waiting for it."""

    entity_name: ClassVar[str] = "customer"

    # created / exists (Partnero had it) / not_referred (partner refused) / pending (only
    # not-referred sales know it: no sign-up yet)
    status: Literal["created", "exists", "not_referred", "pending"] = "pending"
    partner_key: str | None = None
    last_delivery_id: str | None = None
    detail: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deliveries: int | None = None
    # Ledger key -> how to re-check that sale when the customer signs up.
    not_referred_sales: dict[str, Recheck] = Field(default_factory=dict)

    @property
    def known_to_partnero(self) -> bool:
        return self.status in ("created", "exists")


class StripeCustomerRecord(LedgerRecord):
    """The identity map: a Stripe customer id -> Partnero customer key and partner."""

    entity_name: ClassVar[str] = "stripe_customer"

    customer_key: str | None = None
    partner_key: str | None = None
    opted_out: bool | None = None
    updated_at: str | None = None


class LedgerMeta(LedgerRecord):
    """Facts about the ledger itself."""

    entity_name: ClassVar[str] = "meta"

    # Unix seconds when this release first wrote the ledger: payments older than this may
    # have been sent by an earlier release under another key, so Partnero is asked first.
    since: int

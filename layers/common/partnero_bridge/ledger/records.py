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
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    # The claim protocol (see ledger.store): set while an attempt holds the item.
    lease_token: str | None = None
    lease_until: int | None = None
    needs_check: bool | None = None

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

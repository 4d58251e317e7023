"""The queue envelope: what an accepted request becomes on its source's work queue.

Ingest writes exactly one envelope per accepted request and answers; processing reads it
back. The envelope is also what a dead-lettered message carries, so a replay is just
sending the same body to the work queue again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from partnero_bridge.errors import PermanentError


class Source(StrEnum):
    SIGNUP = "signup"
    ECWID = "ecwid"
    STRIPE = "stripe"


Payload = TypeVar("Payload", bound=BaseModel)


class QueueEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    source: Source
    # Stable across re-deliveries of the same thing (Ecwid eventId, Stripe event id, a
    # sign-up's customer + partner): the idempotency key of processing.
    delivery_id: str = Field(min_length=1, max_length=256)
    received_at: datetime
    # The validated request (sign-up) or the verified webhook body (Ecwid, Stripe).
    payload: dict[str, Any]
    # Facts from ingest that processing may need (request id, trusted caller, ...).
    meta: dict[str, str] = Field(default_factory=dict)

    def payload_as(self, model: type[Payload]) -> Payload:
        """The payload as ``model``; one that does not fit can never succeed: permanent."""
        try:
            return model.model_validate(self.payload)
        except ValidationError as exc:
            raise PermanentError(
                f"{self.source.value} payload is invalid: {exc.error_count()} problem(s)"
            ) from None

    @classmethod
    def new(
        cls,
        source: Source,
        delivery_id: str,
        payload: dict[str, Any],
        meta: dict[str, str] | None = None,
        received_at: datetime | None = None,
    ) -> QueueEnvelope:
        return cls(
            source=source,
            delivery_id=delivery_id,
            received_at=received_at or datetime.now(UTC),
            payload=payload,
            meta=meta or {},
        )


class OutcomeStatus(StrEnum):
    """How processing ended when it did not fail. None of these is retried."""

    SENT = "sent"  # Partnero accepted what we sent
    NOT_REFERRED = "not_referred"  # no partner, unknown partner key, unknown customer
    ALREADY_RECORDED = "already_recorded"  # the ledger or Partnero already had it
    IGNORED = "ignored"  # nothing to do for this delivery
    # A change is due but the partner's reward is already paid: recorded, not made.
    ADJUSTMENT_NEEDED = "adjustment_needed"


class Outcome(BaseModel):
    """The result of processing one delivery; stored by idempotency for duplicates."""

    model_config = ConfigDict(frozen=True)

    status: OutcomeStatus
    detail: str = ""
    # Why, as a short code counted per value (metric dimension ``reason``): "not_paid",
    # "unknown_customer", "invalid_partner", "no_customer_key", ...
    reason: str = ""
    ledger_key: str | None = None
    # True when idempotency answered from its record: this delivery was seen before.
    duplicate: bool = False

"""What both sources' readers share: the window, a listed page, the ledger's record of a
payment, what Partnero holds for it, whether Partnero knows its customer, and sending a
payment back to its work queue to be decided again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from partnero_bridge.commissions import RECONCILE_EVENT
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import RetryableError
from partnero_bridge.ledger.records import AliasRecord, CommissionRecord
from partnero_bridge.partnero import AnswerMeaning, read_holding
from partnero_bridge.queues import send_to_queue
from partnero_bridge.reconcile.compare import Held, Referral, in_namespace

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from partnero_bridge.decision import Target
    from partnero_bridge.reconcile.compare import Finding
    from partnero_bridge.runtime import Runtime

# The meta an envelope carries when a reconciliation queued it (its history says so).
RECONCILE_META = RECONCILE_EVENT


@dataclass(frozen=True)
class Window:
    """Unix seconds, both bounds inclusive; ``end`` is fixed when a run starts."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a window ends after it starts")


@dataclass(frozen=True)
class Listed:
    """One object a listing gave: which listing (``stream``) and the object as listed."""

    stream: str
    obj: Mapping[str, Any]


@dataclass(frozen=True)
class ListedPage:
    items: list[Listed]
    next_cursor: str | None  # None: the listing is done


class WindowSource(Protocol):
    """A source's side of a run: its listings of a window and each payment's comparison."""

    scope: str  # "stripe" or "ecwid:<storeId>" (the checkpoint's scope)
    streams: tuple[str, ...]  # the listings, in the order they are read

    def page(self, stream: str, cursor: str | None, window: Window) -> ListedPage: ...

    def evaluate(self, item: Listed, first: Callable[[str], bool]) -> Finding | None:
        """The finding for the payment ``item`` names, or None when it names none or the
        payment was compared already (``first(ledger_key)`` says whether it is new)."""
        ...

    def heal(self, finding: Finding, run_id: str) -> None:
        """Send the payment to be decided again through the normal path."""
        ...


def delivery_id(run_id: str, ledger_key: str) -> str:
    """A re-check's delivery id: one per run and payment, so idempotency drops a second
    send within the run and a later run's re-check is a new delivery."""
    digest = hashlib.sha256(ledger_key.encode()).hexdigest()[:24]
    return f"reconcile-{run_id}-{digest}"


class SourceReader:
    """The ledger and Partnero reads every source makes, through one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def commission(self, *candidates: str) -> tuple[str | None, CommissionRecord | None]:
        """The first commission item found under ``candidates``, following an alias."""
        ledger = self.runtime.ledger
        for key in candidates:
            found = ledger.commission(key)
            if isinstance(found, AliasRecord):
                key = found.alias_of
                found = ledger.commission(key)
            if isinstance(found, CommissionRecord):
                return key, found
        return None, None

    def held(self, record: CommissionRecord | None, target: Target | None) -> tuple[Held, ...]:
        """What Partnero holds under each of :func:`transaction_keys`."""
        return tuple(self.held_under(key) for key in transaction_keys(record, target))

    def held_under(self, key: str) -> Held:
        """What Partnero holds under one transaction key (``GET /v1/transactions/{key}``);
        an unreadable answer is a Held with ``error``, a failed call raises."""
        answer = self.runtime.partnero.get_transaction(key)
        try:
            holding = read_holding(answer)
        except RetryableError as exc:
            return Held(key, None, error=exc.reason)
        if holding is None:
            return Held(key, None)
        data = answer.data if isinstance(answer.data, dict) else {}
        units = data.get("amount_units")
        currency = units if isinstance(units, str) and len(units) == 3 else None
        return Held(
            key,
            holding.amount,
            currency=currency,
            partner_key=_partner_of(data),
            reward_paid=holding.reward_paid,
        )

    def referral(self, customer_key: str) -> Referral:
        """Whether Partnero knows ``customer_key``, and since when (its ``created_at``)."""
        answer = self.runtime.partnero.get_customer(customer_key)
        if answer.meaning != AnswerMeaning.OK:
            return Referral(customer_known=False)
        data = answer.data if isinstance(answer.data, dict) else {}
        return Referral(customer_known=True, referred_at=_seconds(data.get("created_at")))

    def queue(self, source: Source, delivery: str, payload: dict[str, Any], run_id: str) -> None:
        envelope = QueueEnvelope.new(source, delivery, payload, meta={RECONCILE_META: run_id})
        send_to_queue(self.runtime.sqs, self.runtime.settings.work_queue_url, envelope)


def transaction_keys(record: CommissionRecord | None, target: Target | None) -> list[str]:
    """The keys to ask Partnero about for a payment: every key the ledger recorded (its
    re-creations' ``_rN`` suffixes too), else the payment's own key (``target``'s); keys
    outside the bridge's namespace are never asked for."""
    wanted: list[str] = []
    if record is not None:
        wanted = list(record.transaction_keys) or (
            [record.transaction_key] if record.transaction_key else []
        )
    if not wanted and target is not None:
        wanted = [target.transaction_key]
    return [key for key in wanted if in_namespace(key)]


def _partner_of(data: Mapping[str, Any]) -> str | None:
    """The partner key a Partnero transaction names, where Partnero gives one."""
    for holder in (data, data.get("customer")):
        partner = holder.get("partner") if isinstance(holder, dict) else None
        key = partner.get("key") if isinstance(partner, dict) else None
        if isinstance(key, str) and key:
            return key
    return None


def _seconds(value: object) -> int | None:
    """Unix seconds from Partnero's ``created_at`` (ISO 8601 text or a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return int(value)
    if isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp())
    return None

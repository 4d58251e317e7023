"""``partnero-bridge explain <id>``: one payment's story, from every place that knows it.

For a Stripe payment (``in_``, ``pi_``, ``ch_``/``py_``, ``cs_``, or a refund ``re_`` or
dispute ``dp_``/``du_`` of one) or an Ecwid order (``<store>:<order id>``), read only:

- the deliveries the ledger kept about it (its commission item's history);
- its state read from the source now, with the code processing reads it with
  (``StripeReader``, ``EcwidClient``), and the decision the same pure code makes from it
  (``decide_payment``, ``ecwid.mapping.decide``, with the identity fixed by the ledger);
- what the ledger says Partnero holds, and what Partnero holds (``GET /v1/transactions/
  {key}`` for every key the ledger recorded);
- whether they agree, and what the next delivery about the payment would do.

Nothing is written anywhere. Settings (ledger table, secrets, API URLs, rules) are the
source's process function's: a deployed stack's (``--stack-name``) or the local stack's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.decision import Step, Target, guard_paid_out, next_step
from partnero_bridge.errors import DeliveryError
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import (
    HISTORY_LIMIT,
    CommissionRecord,
    HistoryEntry,
    within_retention,
)
from partnero_bridge.money import from_minor_units, money_text
from partnero_bridge.observability import mask_key
from partnero_bridge.reconcile.compare import Held

if TYPE_CHECKING:
    from partnero_bridge.config import BridgeSettings
    from partnero_bridge.ecwid.models import EcwidOrder
    from partnero_bridge.reconcile.ecwid_window import EcwidWindow
    from partnero_bridge.reconcile.stripe_window import StripeWindow
    from partnero_bridge.runtime import Runtime
    from partnero_bridge.stripe.payment import PaymentState
    from partnero_bridge.stripe.reader import PaymentRef

# Stripe id prefixes and the object each names.
STRIPE_PREFIXES: dict[str, str] = {
    "in_": "invoice",
    "pi_": "payment_intent",
    "ch_": "charge",
    "py_": "charge",
    "cs_": "checkout.session",
    "re_": "refund",
    "pyr_": "refund",
    "dp_": "dispute",
    "du_": "dispute",
}
# The object's ledger key when the bridge recorded the payment under it.
_LEDGER_KINDS: dict[str, keys.StripeObject] = {
    "invoice": "invoice",
    "payment_intent": "pi",
    "charge": "ch",
    "checkout.session": "cs",
}
PROCESS_FUNCTIONS = {"stripe": "StripeEventProcessFunction", "ecwid": "EcwidOrderProcessFunction"}
NOT_EVERY_DELIVERY = (
    "deliveries that changed nothing may not appear: a duplicate answered by idempotency, "
    "a delivery that failed before it claimed the payment, an event that named no payment"
)


class ExplainError(Exception):
    """The id cannot be explained (one line for the user)."""


@dataclass(frozen=True)
class StripeId:
    id: str
    object: str  # invoice, payment_intent, charge, checkout.session, refund, dispute


@dataclass(frozen=True)
class EcwidId:
    store: str
    order: str


def parse_id(text: str) -> StripeId | EcwidId:
    """``in_...``, ``pi_...``, ``ch_...`` ... (Stripe) or ``<store id>:<order id>`` (Ecwid)."""
    text = text.strip()
    store, sep, order = text.partition(":")
    if sep and store.isascii() and store.isdigit() and order.strip():
        return EcwidId(str(int(store)), order.strip())
    for prefix in sorted(STRIPE_PREFIXES, key=len, reverse=True):
        if text.startswith(prefix) and len(text) > len(prefix):
            return StripeId(text, STRIPE_PREFIXES[prefix])
    raise ExplainError(
        f"{text[:60]!r} is neither a Stripe payment id (in_, pi_, ch_, py_, cs_, re_, dp_) "
        "nor an Ecwid order as <store id>:<order id> (e.g. 1003:K8XTQ)"
    )


# -- the story --------------------------------------------------------------------------


@dataclass
class Story:
    """Everything ``explain`` found about one payment (see the module docstring)."""

    asked: str
    source: Literal["stripe", "ecwid"]
    now: datetime
    retention_days: int
    ledger_key: str | None = None
    record: CommissionRecord | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    state: list[str] = field(default_factory=list)  # the source now, readable lines
    source_error: str = ""
    created: int | None = None  # the payment's time at the source, Unix seconds
    target: Target | None = None
    decision_error: str = ""
    partnero: list[Held] = field(default_factory=list)
    ledger_since: int | None = None
    notes: list[str] = field(default_factory=list)

    # -- derived ----------------------------------------------------------------------
    @property
    def ledger_holds(self) -> Decimal | None:
        return self.record.holds if self.record is not None else None

    @property
    def partnero_holds(self) -> Decimal | None:
        live = [h.amount for h in self.partnero if h.amount is not None]
        return sum(live, Decimal(0)) if live else None

    @property
    def reward_paid(self) -> bool:
        return any(h.reward_paid for h in self.partnero if h.amount is not None)

    @property
    def due(self) -> Decimal | None:
        """What the source's state says Partnero should hold (None: nothing)."""
        target = self.target
        if target is None or target.customer_key is None:
            return None
        if self.record is not None and self.record.commission_state == "not_referred":
            return None  # nobody to credit it to until the customer is referred
        return target.amount

    @property
    def next_step(self) -> Step | None:
        """What the next delivery about this payment would do to Partnero."""
        if self.target is None or any(h.error for h in self.partnero):
            return None
        step = next_step(self.partnero_holds, self.due)
        return guard_paid_out(step, self.reward_paid)

    @property
    def agree(self) -> bool:
        """The ledger, Partnero and the source's state say the same."""
        if self.source_error or self.decision_error or any(h.error for h in self.partnero):
            return False
        if len([h for h in self.partnero if h.amount is not None]) > 1:
            return False
        return self.ledger_holds == self.partnero_holds == self.due

    def verdict(self) -> list[str]:
        """Readable lines: whether the three agree, and what differs."""
        currency = self._currency()
        lines: list[str] = []
        if self.source_error or self.decision_error:
            lines.append("cannot tell whether the source agrees: " + _undecided(self))
        if any(h.error for h in self.partnero):
            lines.append("cannot tell what Partnero holds: it could not be asked")
        live = [h for h in self.partnero if h.amount is not None]
        if len(live) > 1:
            lines.append(
                f"Partnero holds {len(live)} live transactions for one payment: "
                + ", ".join(h.transaction_key for h in live)
            )
        if self.ledger_holds != self.partnero_holds and not any(h.error for h in self.partnero):
            lines.append(
                f"the ledger says Partnero holds {money_text(self.ledger_holds, currency)}, "
                f"Partnero holds {money_text(self.partnero_holds, currency)}"
            )
        step = self.next_step
        if step is not None and step not in (Step.KEEP, Step.NOTHING):
            lines.append(
                f"{money_text(self.due, currency)} is due now: the next delivery about this "
                f"payment would {_STEP_WORDS[step]}"
            )
        if self.agree:
            lines.append(
                f"agree: the ledger, Partnero and the source's state all say "
                f"{money_text(self.due, currency)}"
            )
        return lines

    def _currency(self) -> str:
        if self.target is not None and self.target.currency:
            return self.target.currency
        return (self.record.currency if self.record is not None else None) or ""

    def to_json(self) -> dict[str, Any]:
        step = self.next_step
        return {
            "asked": self.asked,
            "source": self.source,
            "ledger_key": self.ledger_key,
            "history_retention_days": self.retention_days,
            "deliveries": [e.model_dump(mode="json", exclude_none=True) for e in self.history],
            "deliveries_note": NOT_EVERY_DELIVERY,
            "source_state": {"lines": self.state, "error": self.source_error or None},
            "decision": _decision_json(self.target),
            "decision_error": self.decision_error or None,
            "ledger": _ledger_json(self.record),
            "partnero": [_held_json(h) for h in self.partnero],
            "next_step": step.value if step is not None else None,
            "agree": self.agree,
            "verdict": self.verdict(),
            "notes": self.notes,
        }


_STEP_WORDS = {
    Step.CREATE: "create it",
    Step.REPLACE: "replace it",
    Step.DELETE: "reverse it",
    Step.ADJUST: "record an adjustment (the reward is paid: a person adjusts it)",
}


def _text(amount: Decimal | None) -> str | None:
    return str(amount) if amount is not None else None


def _undecided(story: Story) -> str:
    return story.decision_error or story.source_error


def _date(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ExplainError):
        return str(exc)
    if isinstance(exc, DeliveryError):
        return f"{exc.kind}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _decision_json(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {
        "transaction_key": target.transaction_key,
        "amount": _text(target.amount),
        "currency": target.currency,
        "reason": target.reason,
        "detail": target.detail,
        "customer_key": mask_key(target.customer_key),
        "partner_key": target.partner_key,
    }


def _ledger_json(record: CommissionRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "commission_state": record.commission_state,
        "holds": _text(record.holds),
        "currency": record.currency,
        "transaction_keys": record.transaction_keys
        or ([record.transaction_key] if record.transaction_key else []),
        "reason": record.reason,
        "detail": record.detail,
        "adjustments": [a.model_dump(mode="json") for a in record.adjustments],
        "needs_check": bool(record.needs_check),
        "updated_at": record.updated_at,
    }


def _held_json(held: Held) -> dict[str, Any]:
    return {
        "transaction_key": held.transaction_key,
        "amount": _text(held.amount),
        "reward_paid": held.reward_paid,
        "error": held.error or None,
    }


# -- reading ------------------------------------------------------------------------------


def _ask_partnero(runtime: Runtime, story: Story) -> None:
    """What Partnero holds under each key the reconcile core asks about for the payment
    (the ledger's keys, else the decision's), a failed call shown on its key."""
    from partnero_bridge.reconcile.common import SourceReader, transaction_keys

    read = SourceReader(runtime)
    for key in transaction_keys(story.record, story.target):
        try:
            story.partnero.append(read.held_under(key))
        except Exception as exc:  # an operator's view: say what failed and go on
            story.partnero.append(Held(key, None, error=_error_text(exc)))


def _history(story: Story) -> None:
    if story.record is not None:
        story.history = within_retention(story.record.history, story.now, story.retention_days)


def _absence_notes(story: Story) -> None:
    """Why there is no ledger item or no history, as far as can be told."""
    retention = timedelta(days=story.retention_days)
    old = story.created is not None and (
        datetime.fromtimestamp(story.created, UTC) < story.now - retention
    )
    before_ledger = (
        story.created is not None
        and story.ledger_since is not None
        and story.created < story.ledger_since
    )
    if story.record is None:
        if old:
            story.notes.append(
                f"no ledger item: the payment is older than the history retention "
                f"({story.retention_days} days) and the bridge holds nothing about it"
            )
        else:
            story.notes.append(
                "no ledger item: the bridge has never processed a delivery about this payment"
            )
        if before_ledger:
            story.notes.append(
                f"the payment predates this ledger (first written {_date(story.ledger_since)}): "
                "an earlier release may have sent it; Partnero's answer is the truth"
            )
        return
    if not story.history:
        story.notes.append(
            "no deliveries kept: recorded before deliveries were kept, or every delivery is "
            f"older than the history retention ({story.retention_days} days)"
        )
    if story.record.needs_check:
        story.notes.append(
            "a failed attempt may have reached Partnero: the next delivery asks Partnero first"
        )
    if story.record.lease_until is not None and story.record.lease_until >= story.now.timestamp():
        story.notes.append("a delivery about this payment is being processed right now")


def _meta_since(runtime: Runtime) -> int | None:
    try:
        meta = runtime.ledger.meta()
    except Exception:  # the story is still worth telling without it
        return None
    return meta.since if meta is not None else None


# -- Stripe ---------------------------------------------------------------------------------


def _stripe_story(asked: StripeId, runtime: Runtime, story: Story) -> None:
    """Stripe's side: the payment read and decided as the reconcile core reads it."""
    from partnero_bridge.reconcile.stripe_window import StripeWindow

    window: StripeWindow | None = None
    ref: PaymentRef | None = None
    state: PaymentState | None = None
    try:
        window = StripeWindow(runtime, int(story.now.timestamp()))
        ref, state = _stripe_read(asked, runtime, window, story)
    except Exception as exc:
        story.source_error = _stripe_failure(asked, exc)
    _stripe_ledger(asked, runtime, story, ref)
    if window is None or ref is None or state is None:
        return
    story.created = state.created
    story.state = _stripe_lines(ref.object_type, ref.id, state)
    try:
        story.target = window.decide(state, story.record)
    except Exception as exc:
        story.decision_error = f"undecidable: {_error_text(exc)}"


def _stripe_failure(asked: StripeId, exc: Exception) -> str:
    """Why Stripe's side cannot be told: the id asked for not found (Stripe answered 404
    for it), else the failure as it came."""
    from partnero_bridge.stripe.client import NoSuchObject

    if isinstance(exc, NoSuchObject) and exc.object_id == asked.id:
        return (
            f"Stripe: {asked.object.replace('_', ' ')} {asked.id} does not exist in this "
            "Stripe account and mode (check the id; or the key is of another account or mode)"
        )
    return f"Stripe could not be read: {_error_text(exc)}"


def _stripe_read(
    asked: StripeId, runtime: Runtime, window: StripeWindow, story: Story
) -> tuple[PaymentRef | None, PaymentState | None]:
    """The payment ``asked`` names and its state now; (None, None) with the reason in the
    story when it names none."""
    from partnero_bridge.stripe.process import reader
    from partnero_bridge.stripe.reader import NoPayment

    found = _stripe_payment(asked, runtime, reader(runtime))
    if isinstance(found, NoPayment):
        story.source_error = f"Stripe: {found.reason}"
        return None, None
    return found, window.read(found)


def _stripe_ledger(asked: StripeId, runtime: Runtime, story: Story, ref: PaymentRef | None) -> None:
    """The ledger item of the payment: under its ref's key, else under the id's own key
    (found without the network, if the bridge recorded the payment so)."""
    from partnero_bridge.reconcile.common import SourceReader

    read = SourceReader(runtime)
    kind = _LEDGER_KINDS.get(asked.object)
    fallback = keys.stripe_payment(kind, asked.id) if kind else None
    if ref is not None:
        key, story.record = read.commission(ref.ledger_key)
        story.ledger_key = key or ref.ledger_key
    if story.record is None and fallback is not None and fallback != story.ledger_key:
        key, record = read.commission(fallback)
        if record is not None:
            if ref is not None:
                story.notes.append(f"recorded under {key}, not under {ref.ledger_key}")
            story.ledger_key, story.record = key, record
    if story.ledger_key is None:
        story.ledger_key = fallback


def _stripe_payment(asked: StripeId, runtime: Runtime, read: Any) -> Any:
    """The payment ``asked`` names, found the way processing finds an event's payment."""
    from partnero_bridge.stripe.reader import PaymentRef

    if asked.object == "invoice":
        return PaymentRef("invoice", asked.id)
    if asked.object in ("refund", "dispute"):
        resource = "refunds" if asked.object == "refund" else "disputes"
        obj: Mapping[str, Any] = runtime.stripe.retrieve(resource, asked.id)
    else:
        obj = {"object": asked.object, "id": asked.id}
    return read.payment_of({"type": "explain", "data": {"object": obj}})


def _stripe_lines(kind: str, stripe_id: str, state: PaymentState) -> list[str]:
    currency = state.currency.upper()

    def money(minor: int) -> str:
        return money_text(from_minor_units(minor, currency), currency)

    lines = [
        f"{kind.replace('_', ' ')} {stripe_id}: {state.status.value}, total {money(state.total)}, "
        f"charged {money(state.charged)}"
        + (f", tax {money(state.tax)}" if state.tax else "")
        + (f", paid out of band {money(state.out_of_band)}" if state.out_of_band else ""),
        f"created {_date(state.created)}",
    ]
    if state.intents:
        lines.append("paid by " + ", ".join(state.intents))
    for refund in state.refunds:
        counts = "counts" if refund.counts else "does not count"
        lines.append(f"refund {refund.id}: {money(refund.amount)} {refund.status} ({counts})")
    if state.charge_refunded and not state.refunds:
        lines.append(f"refunded on the charge: {money(state.charge_refunded)}")
    for dispute in state.disputes:
        effect = "reverses" if dispute.reverses else "does not reverse"
        amount = money(dispute.amount) if dispute.amount else "the whole payment"
        lines.append(f"dispute {dispute.id}: {dispute.status}, {amount} ({effect})")
    found = state.attribution
    lines.append(
        f"customer {mask_key(found.customer_key) or 'none'}, partner {found.partner_key or 'none'}"
        + (f", Stripe customer {found.stripe_customer}" if found.stripe_customer else "")
        + (", opted out" if found.opted_out else "")
    )
    return lines


# -- Ecwid ----------------------------------------------------------------------------------


def _ecwid_story(asked: EcwidId, runtime: Runtime, story: Story) -> None:
    """Ecwid's side: the order read and decided as the reconcile core decides it."""
    from partnero_bridge.reconcile.common import SourceReader

    story.ledger_key, story.record = SourceReader(runtime).commission(
        keys.ecwid_order_alias(asked.store, asked.order),
        keys.ecwid_order(asked.store, asked.order, ""),  # an older webhook's internal id
    )
    try:
        window, order = _ecwid_source(asked, runtime)
        if order is None:
            story.state = [f"order {asked.order}: Ecwid has no such order (deleted, or never made)"]
            story.target = window.deleted(asked.order, story.record)
            return
        currency = window.currency()
    except Exception as exc:
        story.source_error = f"Ecwid could not be read: {_error_text(exc)}"
        return
    _ecwid_decision(asked, order, window, runtime, story, currency)


def _ecwid_source(asked: EcwidId, runtime: Runtime) -> tuple[EcwidWindow, EcwidOrder | None]:
    """The store's side of the reconcile core, and the order as Ecwid serves it now (None:
    Ecwid has no such order)."""
    from partnero_bridge.ecwid.secrets import ecwid_store_tokens
    from partnero_bridge.reconcile.ecwid_window import EcwidWindow

    token = ecwid_store_tokens(runtime).get(asked.store)
    if not token:
        raise ExplainError(f"store {asked.store} has no token in the Ecwid API secret")
    client = runtime.ecwid
    window = EcwidWindow(runtime, client, asked.store, token)
    return window, client.order(asked.store, asked.order, token)


def _ecwid_decision(
    asked: EcwidId,
    order: EcwidOrder,
    window: EcwidWindow,
    runtime: Runtime,
    story: Story,
    currency: str,
) -> None:
    """The order's ledger item under its internal id, its lines and the decision."""
    from partnero_bridge.reconcile.common import SourceReader

    if story.record is None:
        key = keys.ecwid_order(asked.store, order.internalId, order.id)
        found, story.record = SourceReader(runtime).commission(key)
        story.ledger_key = found or key
    story.created = order.createTimestamp
    story.state = _ecwid_lines(order, currency, runtime.settings.ecwid_partner_field)
    try:
        story.target = window.decide(order, story.record)
    except Exception as exc:
        story.decision_error = f"undecidable: {_error_text(exc)}"


def _ecwid_lines(order: EcwidOrder, currency: str, partner_field: str) -> list[str]:
    from partnero_bridge.ecwid.mapping import partner_key, refunded_amount

    def money(amount: Decimal | None) -> str:
        return money_text(amount, currency, absent="not given")

    refunded = refunded_amount(order)
    customer = mask_key(normalize_customer_key(order.email or "")) or order.customerId or "none"
    return [
        f"order {order.id} (internal id {order.internalId}): {order.paymentStatus}, "
        f"total {money(order.total)}, subtotal {money(order.subtotal)}, tax {money(order.tax)}"
        + (f", refunded {money(refunded)}" if refunded else ""),
        f"created {_date(order.createTimestamp)}",
        f"customer {customer}, "
        f"partner ({partner_field}) {partner_key(order, partner_field) or 'none'}",
    ]


# -- the command ------------------------------------------------------------------------------


def explain(text: str, runtime: Runtime, clock: Callable[[], float] = time.time) -> Story:
    """Read everything about the payment ``text`` names (see :func:`parse_id`).

    Raises ExplainError for an id that names no payment."""
    asked = parse_id(text)
    source: Literal["stripe", "ecwid"] = "ecwid" if isinstance(asked, EcwidId) else "stripe"
    story = Story(
        asked=text.strip(),
        source=source,
        now=datetime.fromtimestamp(clock(), UTC),
        retention_days=runtime.settings.history_retention_days,
    )
    if isinstance(asked, EcwidId):
        _ecwid_story(asked, runtime, story)
    else:
        _stripe_story(asked, runtime, story)
    _history(story)
    story.ledger_since = _meta_since(runtime)
    _ask_partnero(runtime, story)
    _absence_notes(story)
    return story


def _delivery_line(entry: HistoryEntry) -> list[str]:
    if entry.action in ("created", "replaced"):
        what = f"{entry.action} {money_text(entry.amount, entry.currency or '')}"
    elif entry.action:
        what = entry.action
    else:
        what = entry.outcome.replace("_", " ")
    return [
        entry.at.strftime("%Y-%m-%d %H:%M:%S"),
        entry.event_type or "-",
        entry.delivery_id,
        f"{entry.outcome}: {what}" if entry.action else what,
        entry.reason or "-",
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _deliveries_section(story: Story) -> list[str]:
    lines = [
        f"Deliveries (oldest first; the last {HISTORY_LIMIT} within {story.retention_days} days):",
        f"  ({NOT_EVERY_DELIVERY})",
    ]
    if not story.history:
        return [*lines, "  none kept"]
    rows = [["TIME (UTC)", "EVENT", "DELIVERY", "OUTCOME", "REASON"]]
    rows += [_delivery_line(entry) for entry in story.history]
    lines += _table(rows)
    lines += [
        f"    {entry.delivery_id}: {entry.detail}"
        for entry in story.history
        if entry.detail and entry.outcome in ("retrying", "failed")
    ]
    return lines


def _source_section(story: Story) -> list[str]:
    lines = [f"{story.source.capitalize()} now:"]
    lines += [f"  {line}" for line in story.state] or ["  not read"]
    if story.source_error:
        lines.append(f"  {story.source_error}")
    return lines


def _decision_section(story: Story) -> list[str]:
    target = story.target
    if target is not None:
        return [
            "Decision from that state:",
            f"  {money_text(target.amount, target.currency)} due "
            f"({target.reason}: {target.detail})",
            f"  transaction {target.transaction_key}, customer "
            f"{mask_key(target.customer_key) or 'none'}, partner {target.partner_key or 'none'}",
        ]
    return [
        "Decision from that state:",
        f"  {story.decision_error or 'none (the source was not read)'}",
    ]


def _ledger_section(story: Story) -> list[str]:
    record = story.record
    if record is None:
        return ["Ledger says:", "  nothing recorded"]
    held = money_text(record.holds, record.currency or story._currency())
    lines = [
        "Ledger says:",
        f"  Partnero holds {held} ({record.commission_state}; {record.reason or '-'})",
    ]
    if record.detail:
        lines.append(f"  {record.detail}")
    lines += [
        f"  adjustment needed: {adjustment.transaction_key} holds "
        f"{money_text(adjustment.held, adjustment.currency)}, "
        f"{money_text(adjustment.target, adjustment.currency)} due ({adjustment.reason})"
        for adjustment in record.adjustments
    ]
    return lines


def _partnero_section(story: Story) -> list[str]:
    currency = story._currency()
    lines = ["Partnero holds:"]
    for held in story.partnero:
        if held.error:
            lines.append(f"  {held.transaction_key}: not asked ({held.error})")
        elif held.amount is None:
            lines.append(f"  {held.transaction_key}: nothing")
        else:
            paid = "reward paid" if held.reward_paid else "reward not paid"
            figure = money_text(held.amount, currency)
            lines.append(f"  {held.transaction_key}: {figure} ({paid})")
    if not story.partnero:
        lines.append("  no transaction key to ask for")
    return lines


def _verdict_section(story: Story) -> list[str]:
    return ["Verdict:", *(f"  {line}" for line in story.verdict())]


def render(story: Story) -> str:
    """The story for a person, in sections."""
    sections = [
        [
            f"{story.source.capitalize()} payment {story.asked}",
            f"ledger item: {story.ledger_key or 'none'}",
        ],
        _deliveries_section(story),
        _source_section(story),
        _decision_section(story),
        _ledger_section(story),
        _partnero_section(story),
        _verdict_section(story),
    ]
    if story.notes:
        sections.append(["Notes:", *(f"  {note}" for note in story.notes)])
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def stack_runtime(
    source: Literal["stripe", "ecwid"],
    stack_name: str | None,
    root: Path | None,
    env: Mapping[str, str],
) -> Runtime:
    """A runtime with the settings of ``source``'s process function, local or deployed."""
    from partnero_bridge.runtime import Runtime

    return Runtime(process_settings(source, stack_name, root, env))


def process_settings(
    source: Literal["stripe", "ecwid"],
    stack_name: str | None,
    root: Path | None,
    env: Mapping[str, str],
) -> BridgeSettings:
    """The settings of ``source``'s process function: a deployed stack's (``stack_name``)
    or the local stack's (from ``root``'s template.yaml and ``env``)."""
    from partnero_bridge_cli.stack_settings import deployed_settings, local_settings

    function = PROCESS_FUNCTIONS[source]
    if stack_name:
        import boto3

        settings = deployed_settings(
            stack_name, function, boto3.client("cloudformation"), boto3.client("lambda")
        )
    else:
        if root is None:
            raise ExplainError("template.yaml not found: run this from a partnero-bridge checkout")
        if not env.get("AWS_ENDPOINT_URL"):
            raise ExplainError(
                "the local stack's AWS endpoint is not known: start it with `make run` "
                "(the command then finds it), or pass --stack-name for a deployed stack"
            )
        settings = local_settings(root, function, env)
    return settings


def run(
    args: Any,
    root: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    runtime: Runtime | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """The ``explain`` subcommand. ``args``: id, stack_name, json. Exit status 0 when the
    ledger, Partnero and the source agree, 2 when they differ, 1 when it cannot tell."""
    from botocore.exceptions import BotoCoreError, ClientError

    from partnero_bridge_cli.dlq import describe_error
    from partnero_bridge_cli.stack_settings import SettingsError

    env = os.environ if env is None else env
    try:
        asked = parse_id(args.id)
        source: Literal["stripe", "ecwid"] = "ecwid" if isinstance(asked, EcwidId) else "stripe"
        runtime = runtime or stack_runtime(source, args.stack_name, root, env)
        story = explain(args.id, runtime)
    except (ExplainError, SettingsError) as exc:
        err.write(f"partnero-bridge explain: {exc}\n")
        return 1
    except (BotoCoreError, ClientError) as exc:
        err.write(f"partnero-bridge explain: {describe_error(exc, args.stack_name)}\n")
        return 1
    if args.json:
        out.write(json.dumps(story.to_json(), indent=2) + "\n")
    else:
        out.write(render(story))
    if story.agree:
        return 0
    return 1 if story.source_error or any(h.error for h in story.partnero) else 2

"""The local stack's delivery feed: what became of each delivery, read from the functions' logs.

Every request an ingest function queues is logged once ("Stripe event accepted", "Ecwid
webhook accepted", "sign-up accepted", or an Ecwid webhook parked for an unconfigured store),
and every attempt of a process function ends in one line: "delivery processed" (its outcome,
reason and detail), "duplicate delivery: already processed", "delivery will be retried" or
"delivery dead-lettered". The local stack hands each line its workers print to
:meth:`DeliveryFeed.observe`; the feed keeps the last deliveries in memory, each with its
latest outcome, for the sandbox page and ``partnero-bridge send`` (``GET
/_local/deliveries`` on the local gateway). Deployed, the same lines are in CloudWatch Logs.

Nothing is logged for the feed's sake: the lines are the functions' own, whose customer keys
are already masked (``ja***@example.com``). Texts quoting an address are masked again here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

# How many deliveries the feed keeps (the oldest go first).
DEFAULT_CAPACITY: Final = 500
FEED_PATH: Final = "/_local/deliveries"

FactKind = Literal[
    "accepted", "parked", "processed", "duplicate", "retrying", "dead_lettered", "context"
]
_ACCEPTED: Final = frozenset(
    {"Stripe event accepted", "Ecwid webhook accepted", "sign-up accepted"}
)
_PARKED: Final = "webhook for an unconfigured store"
_ENDINGS: Final[dict[str, FactKind]] = {
    "delivery processed": "processed",
    "duplicate delivery: already processed": "duplicate",
    "delivery will be retried": "retrying",
    "delivery dead-lettered": "dead_lettered",
}
# Outcomes after which nothing more happens to a receipt (until it is sent again).
_OPEN: Final = frozenset({"queued", "retrying"})
# Processing's outcome statuses (partnero_bridge.envelope.OutcomeStatus) as the feed says them.
_STATUS_OUTCOMES: Final = {
    "not_referred": "not_referred",
    "already_recorded": "already_recorded",
    "adjustment_needed": "adjustment_needed",
    "ignored": "ignored",
}
# The verb a sent outcome's detail starts with (commissions: "created 20.00 USD: paid",
# "replaced 20.00 with 10.00 USD: ...", "reversed 10.00 USD: ...").
_VERBS: Final = {"created": "created", "replaced": "updated", "reversed": "reversed"}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A merge window for the rare case that a delivery's processing is logged before its receipt.
_RECEIPT_LAG_SECONDS: Final = 10.0
_STRIPE_OBJECTS: Final = {
    "invoice": "invoice",
    "pi": "payment intent",
    "ch": "charge",
    "cs": "checkout session",
}


def _masked(text: str) -> str:
    """``text`` with every unmasked e-mail address masked as the bridge's logs mask them."""

    def mask(found: re.Match[str]) -> str:
        address = found.group(0)
        if "***" in address:
            return address
        local, _, domain = address.partition("@")
        return f"{local[: min(2, len(local) // 2)]}***@{domain}"

    return _EMAIL.sub(mask, text)


@dataclass(frozen=True)
class LogFact:
    """What one log line says about one delivery.

    ``status``, ``reason`` and ``detail`` are processing's outcome for "processed" and
    "duplicate"; for "retrying" and "dead_lettered", ``reason`` is the error's kind and
    ``detail`` the error. ``concerns`` is the payment, order or customer when the line
    names one (a ledger key, masked).
    """

    kind: FactKind
    delivery_id: str
    at: datetime
    event_type: str = ""
    concerns: str = ""
    status: str = ""
    reason: str = ""
    detail: str = ""
    receive_count: int | None = None
    retry_in_seconds: int | None = None


def _timestamp(record: Mapping[str, Any]) -> datetime:
    """The line's Powertools timestamp (``2025-06-03 10:01:36,102+0000``); now if absent."""
    text = record.get("timestamp")
    if isinstance(text, str):
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f%z").astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return _masked(str(value)) if value is not None else ""


def _int(record: Mapping[str, Any], name: str) -> int | None:
    value = record.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kind(message: str) -> FactKind:
    if message in _ENDINGS:
        return _ENDINGS[message]
    if message in _ACCEPTED:
        return "accepted"
    if message.startswith(_PARKED):
        return "parked"
    return "context"


def _concerns(record: Mapping[str, Any]) -> str:
    """The ledger key a line names, or what stands for it on an ingest line."""
    if record.get("ledger_key"):
        return _text(record, "ledger_key")
    if record.get("customer_key"):
        return f"customer#{_text(record, 'customer_key')}"
    if record.get("order_id") and record.get("store_id"):
        return f"ecwid#{_text(record, 'store_id')}#id:{_text(record, 'order_id')}"
    return ""


def parse_line(line: str) -> LogFact | None:
    """The fact a function's log line states about a delivery; None for any other line
    (metrics, lines naming no delivery, tracebacks, anything not JSON)."""
    if not line.startswith("{") or '"delivery_id"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    delivery_id, message = record.get("delivery_id"), record.get("message")
    if not isinstance(delivery_id, str) or not delivery_id or not isinstance(message, str):
        return None
    kind = _kind(message)
    concerns = _concerns(record)
    if kind == "context" and not concerns:
        return None
    failed = kind in ("retrying", "dead_lettered")
    status = _text(record, "outcome")
    if kind == "parked":  # parked for a replay, or dropped: the store is at its cap
        status = "dropped" if "DROPPED" in message else "parked"
    return LogFact(
        kind=kind,
        delivery_id=_masked(delivery_id),
        at=_timestamp(record),
        # A sign-up has no event type of its own: its kind stands for it.
        event_type=_text(record, "event_type")
        or ("sign-up" if message == "sign-up accepted" else ""),
        concerns=concerns,
        status=status,
        reason=_text(record, "error_kind" if failed else "reason"),
        detail=_text(record, "error" if failed else "detail"),
        receive_count=_int(record, "receive_count"),
        retry_in_seconds=_int(record, "retry_in_seconds"),
    )


def outcome_of(status: str, reason: str, detail: str) -> str:
    """What processing did, in the feed's words: ``created``, ``updated``, ``reversed``
    (a sent commission, by the verb its detail starts with; a sign-up's customer is
    ``created``), ``awaiting_capture``, ``ignored``, ``not_referred``,
    ``already_recorded``, ``adjustment_needed``; ``sent`` for any other thing sent."""
    if status == "sent":
        verb = detail.split(" ", 1)[0]
        return _VERBS.get(verb, "created" if reason == "created" else "sent")
    if status == "ignored" and reason == "awaiting_capture":
        return "awaiting_capture"
    return _STATUS_OUTCOMES.get(status, status or "sent")


def describe_concerns(ledger_key: str) -> str:
    """A ledger key as a person reads it: ``stripe#invoice:in_1`` -> ``Stripe invoice
    in_1``, ``ecwid#1003#612804175`` -> ``Ecwid order 612804175 of store 1003``,
    ``customer#ja***@example.com`` -> ``customer ja***@example.com``."""
    kind, _, rest = ledger_key.partition("#")
    if kind == "stripe" and ":" in rest:
        what, _, stripe_id = rest.partition(":")
        return f"Stripe {_STRIPE_OBJECTS.get(what, what)} {stripe_id}"
    if kind == "ecwid" and "#" in rest:
        store, _, order = rest.partition("#")
        return f"Ecwid order {order.removeprefix('id:')} of store {store}"
    if kind == "customer" and rest:
        return f"customer {rest}"
    return ledger_key


@dataclass
class _Entry:
    """One receipt of a delivery and what became of it (mutable: updated as lines arrive)."""

    seq: int
    version: int
    delivery_id: str
    created: float  # monotonic seconds, for the receipt-lag merge
    received_at: datetime | None = None
    updated_at: datetime | None = None
    event_type: str = ""
    concerns: str = ""
    outcome: str = "queued"
    status: str = ""
    reason: str = ""
    detail: str = ""
    attempts: int = 0
    retry_in_seconds: int | None = None
    earlier: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        shown = {
            "seq": self.seq,
            "version": self.version,
            "delivery_id": self.delivery_id,
            "source": self.delivery_id.split("-", 1)[0],
            "event_type": self.event_type,
            "received_at": _iso(self.received_at),
            "updated_at": _iso(self.updated_at),
            "outcome": self.outcome,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "ledger_key": self.concerns,
            "concerns": describe_concerns(self.concerns) if self.concerns else "",
            "attempts": self.attempts,
            "retry_in_seconds": self.retry_in_seconds,
        }
        shown["summary"] = summary(shown)
        return shown


def _iso(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if at is not None else None


def summary(entry: Mapping[str, Any]) -> str:
    """One line saying what became of a delivery (a feed entry as :meth:`to_json` shows it):
    ``created 20.00 USD: paid``, ``ignored (reason: not_paid): payment is not_paid; ...``,
    ``duplicate: already processed (created 20.00 USD: paid)``, ``retrying (Partnero
    answered 503), will retry in 30 s``, ``dead-lettered: ...``, ``queued, not processed
    yet``; followed by `` - <what it concerns>`` when known."""
    outcome, reason, detail = entry["outcome"], entry["reason"], entry["detail"]
    words = outcome.replace("_", " ")
    if outcome == "queued":
        text = "queued, not processed yet"
    elif outcome == "retrying":
        text = f"retrying ({detail}), will retry in {entry['retry_in_seconds']} s"
    elif outcome == "dead_lettered":
        text = f"dead-lettered: {detail}"
    elif outcome == "duplicate":
        text = f"duplicate: already processed ({detail})" if detail else "duplicate"
    elif outcome in ("parked", "dropped"):
        text = f"{words}: the store is not configured (partnero-bridge parked list)"
    elif outcome in ("ignored", "awaiting_capture", "not_referred", "already_recorded"):
        text = f"{words} (reason: {reason})" if reason and reason != outcome else words
        text += f": {detail}" if detail and detail != reason else ""
    elif detail.startswith(words) or (outcome == "updated" and detail.startswith("replaced")):
        text = detail
    else:
        text = f"{words}: {detail}" if detail and detail != reason else words
    if entry.get("concerns"):
        text += f" - {entry['concerns']}"
    return text


class DeliveryFeed:
    """The last ``capacity`` receipts of deliveries, newest first, each with its outcome.

    Thread-safe: the local stack's workers log from threads of their own. Every change
    raises :attr:`version`; each entry keeps the version of its last change, so a client
    asks for what changed since it last looked (``since``).
    """

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque()
        # The newest receipt of each delivery id: the one its next line is about.
        self._latest: dict[str, _Entry] = {}
        self._seq = 0
        self.version = 0

    def observe(self, line: str) -> dict[str, Any] | None:
        """Take one line a function printed; lines about no delivery are skipped. Returns
        the entry (as :meth:`snapshot` shows it) when the line was a receipt or an outcome
        of a delivery, else None."""
        fact = parse_line(line)
        if fact is None:
            return None
        with self._lock:
            entry = self._apply(fact)
            return entry.to_json() if entry is not None and fact.kind != "context" else None

    # -- changes --------------------------------------------------------------------------
    def _apply(self, fact: LogFact) -> _Entry | None:
        latest = self._latest.get(fact.delivery_id)
        if fact.kind in ("accepted", "parked"):
            lagging = (
                latest is not None
                and latest.received_at is None
                and self._clock() - latest.created < _RECEIPT_LAG_SECONDS
            )
            entry = latest if lagging and latest is not None else self._new(fact.delivery_id)
            entry.received_at = fact.at
            entry.event_type = fact.event_type or entry.event_type
            if fact.kind == "parked":
                entry.outcome = fact.status
                entry.reason = "store_not_configured"
        elif fact.kind == "context":
            if latest is None or latest.outcome not in _OPEN or latest.concerns == fact.concerns:
                return None  # nothing new, or about a delivery not open in the feed
            entry = latest
        elif latest is not None and latest.outcome in _OPEN:
            entry = latest
        else:  # replayed from a DLQ, parked webhooks replayed, or older than the feed
            entry = self._new(fact.delivery_id)
        # Processing names the ledger key; a receipt's stand-in only fills a gap.
        receipt = fact.kind in ("accepted", "parked")
        if fact.concerns and not (receipt and entry.concerns):
            entry.concerns = fact.concerns
        self._settle(entry, fact)
        self.version += 1
        entry.version = self.version
        entry.updated_at = fact.at
        return entry

    def _settle(self, entry: _Entry, fact: LogFact) -> None:
        if fact.kind in ("accepted", "parked", "context"):
            return
        entry.attempts = max(entry.attempts, fact.receive_count or entry.attempts + 1)
        entry.retry_in_seconds = fact.retry_in_seconds if fact.kind == "retrying" else None
        entry.reason, entry.detail = fact.reason, fact.detail
        if fact.kind == "processed":
            entry.status = fact.status
            entry.outcome = outcome_of(fact.status, fact.reason, fact.detail)
        elif fact.kind == "duplicate":
            entry.status = fact.status
            entry.outcome = "duplicate"
            if fact.status and fact.status != "sent":
                entry.detail = f"{fact.status.replace('_', ' ')}: {fact.detail}"
        else:
            entry.status = ""
            entry.outcome = fact.kind

    def _new(self, delivery_id: str) -> _Entry:
        self._seq += 1
        entry = _Entry(
            seq=self._seq, version=self.version, delivery_id=delivery_id, created=self._clock()
        )
        self._entries.append(entry)
        self._latest[delivery_id] = entry
        while len(self._entries) > self.capacity:
            gone = self._entries.popleft()
            if self._latest.get(gone.delivery_id) is gone:
                del self._latest[gone.delivery_id]
        return entry

    # -- reading --------------------------------------------------------------------------
    def snapshot(
        self, since: int = 0, delivery_id: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """``{"version", "capacity", "deliveries": [entry, ...]}``, newest receipt first:
        the entries changed after version ``since``, of ``delivery_id`` only if given, at
        most ``limit`` of them. An entry: ``seq``, ``version``, ``delivery_id``, ``source``,
        ``event_type``, ``received_at`` / ``updated_at`` (ISO-8601 UTC), ``outcome`` (see
        :func:`outcome_of`, or ``queued``, ``retrying``, ``dead_lettered``, ``duplicate``,
        ``parked``, ``dropped``), ``status``, ``reason``, ``detail``, ``ledger_key``,
        ``concerns``, ``attempts`` (receives so far), ``retry_in_seconds``, ``summary``."""
        with self._lock:
            chosen = [
                entry.to_json()
                for entry in reversed(self._entries)
                if entry.version > since
                and (delivery_id is None or entry.delivery_id == delivery_id)
            ]
            version = self.version
        return {
            "version": version,
            "capacity": self.capacity,
            "deliveries": chosen if limit is None else chosen[:limit],
        }

    def answer(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The gateway's ``GET /_local/deliveries?since=&delivery_id=&limit=``: (status,
        JSON body); 400 when ``since`` or ``limit`` is not a whole number >= 0."""
        numbers: dict[str, int | None] = {}
        for name in ("since", "limit"):
            text = query.get(name, "")
            if text and not (text.isascii() and text.isdigit()):
                return 400, {"message": f"{name} must be a whole number >= 0"}
            numbers[name] = int(text) if text else None
        return 200, self.snapshot(
            since=numbers["since"] or 0,
            delivery_id=query.get("delivery_id") or None,
            limit=numbers["limit"],
        )

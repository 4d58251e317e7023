"""The nightly reconciliation: a window cut into chunks, each one reconciled on its own.

The scheduled function (``functions/reconcile/schedule.py``) plans the last
``RECONCILE_DAYS`` days into :class:`Chunk` messages, one per source (Stripe, or one Ecwid
store) and per ``RECONCILE_CHUNK_HOURS`` slice of time, and sends them to the reconcile
queue; the worker (``functions/reconcile/worker.py``) reconciles one chunk per invocation
with :func:`partnero_bridge.reconcile.service.reconcile_source`, checkpointed, so a chunk
cut short by the function's timeout resumes where it stopped on the message's next receive.

Slices are aligned to multiples of the chunk length since the Unix epoch (UTC midnight for
24 h), so the same slice of two nights has the same checkpoint and the first and last
chunk of a window are the partial ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from partnero_bridge.reconcile.compare import HEALABLE, Finding, FindingKind

DAY_SECONDS = 86400
# The ``Input`` the schedule sends: the dispatcher plans from its own settings either way.
SCHEDULED_INPUT = {"reconcile": "scheduled"}


class ScheduleSettings(BaseModel):
    """The reconcile functions' own settings (template parameters in brackets)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    queue_url: str = Field("", alias="RECONCILE_QUEUE_URL")
    days: int = Field(3, ge=1, le=90, alias="RECONCILE_DAYS")  # ReconcileDays
    chunk_hours: int = Field(24, ge=1, le=24, alias="RECONCILE_CHUNK_HOURS")
    heal: bool = Field(False, alias="RECONCILE_HEAL")  # ReconcileHeal
    # Share of each API's rate limit one chunk takes (see reconcile.pacing).
    api_share: float = Field(0.2, ge=0, le=1, alias="RECONCILE_API_SHARE")
    workers: int = Field(2, ge=1, le=16, alias="RECONCILE_WORKERS")


class Chunk(BaseModel):
    """One reconcile queue message: a source (and Ecwid store) over ``[since, until]``
    (Unix seconds, inclusive as ``reconcile`` takes them), healed or report-only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["stripe", "ecwid"]
    store: str | None = Field(default=None, pattern=r"^\d+$")
    since: int = Field(ge=0)
    until: int = Field(ge=0)
    heal: bool = False
    # The night's whole window (the plan's), so that a payment listed by two of its chunks
    # (made in one slice, refunded in another) is published once; None: a chunk on its own.
    night_since: int | None = Field(default=None, ge=0)
    night_until: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Chunk:
        if self.until < self.since:
            raise ValueError("a chunk ends before it starts")
        if (self.source == "ecwid") != (self.store is not None):
            raise ValueError("an Ecwid chunk names its store, a Stripe chunk none")
        return self

    @property
    def scope(self) -> str:
        """The chunk's source as logs and metrics name it: ``stripe``, ``ecwid:<store>``."""
        return self.source if self.store is None else f"{self.source}:{self.store}"


def slices(since: int, until: int, chunk_seconds: int) -> list[tuple[int, int]]:
    """``[since, until]`` cut at each multiple of ``chunk_seconds`` since the epoch, as
    ``(start, end)`` pairs that meet (one slice's end is the next one's start; the
    ledger keys a run compares are kept once per run, and a payment on a boundary is
    compared by both neighbours, harmlessly). Empty when ``until <= since``."""
    if chunk_seconds <= 0:
        raise ValueError("chunk_seconds must be positive")
    found: list[tuple[int, int]] = []
    start = since
    while start < until:
        boundary = (start // chunk_seconds + 1) * chunk_seconds
        end = min(boundary, until)
        found.append((start, end))
        start = end
    return found


def plan(
    now: int,
    days: int,
    chunk_hours: int,
    *,
    stripe: bool,
    stores: Sequence[str],
    heal: bool,
) -> list[Chunk]:
    """The chunks of one nightly run: the last ``days`` days before ``now`` (Unix seconds),
    for Stripe (when ``stripe``) and each Ecwid store of ``stores``, in slices of
    ``chunk_hours``; the oldest slices first, sources interleaved."""
    if days < 1 or chunk_hours < 1:
        raise ValueError("days and chunk_hours must be at least 1")
    scopes: list[tuple[Literal["stripe", "ecwid"], str | None]] = []
    if stripe:
        scopes.append(("stripe", None))
    scopes.extend(("ecwid", str(store)) for store in dict.fromkeys(stores))
    night_since = now - days * DAY_SECONDS
    return [
        Chunk(
            source=source,
            store=store,
            since=start,
            until=end,
            heal=heal,
            night_since=night_since,
            night_until=now,
        )
        for start, end in slices(now - days * DAY_SECONDS, now, chunk_hours * 3600)
        for source, store in scopes
    ]


# -- what a chunk's findings publish ---------------------------------------------------------

_EMAIL = re.compile(r"[^@\s'\"(),;:<>]+@[^@\s'\"(),;:<>]+\.[A-Za-z]{2,}")


def night_key(chunk: Chunk, ledger_key: str) -> str | None:
    """The ledger item that claims a drifted payment for one night's publishing: the first
    chunk of the night to put it counts the payment; None for a chunk of no night."""
    if chunk.night_until is None:
        return None
    return f"reconcile#night#{chunk.night_until}#{ledger_key}"


def anchored(chunk: Chunk, finding: Finding) -> bool:
    """Whether this chunk logs a report-only difference: the chunk whose slice holds the
    payment's time, when the payment was made within the night's window (a payment made
    before it, or of unknown time, is logged by each chunk that lists it)."""
    created = finding.created
    if chunk.night_since is None or chunk.night_until is None or created is None:
        return True
    if not chunk.night_since <= created <= chunk.night_until:
        return True
    last = chunk.until == chunk.night_until
    return chunk.since <= created < chunk.until or (last and created == chunk.until)


def drift(findings: Sequence[Finding]) -> list[Finding]:
    """The actionable findings (missing, wrong amount, extra): what ``DriftCount`` counts."""
    return [f for f in findings if f.kind in HEALABLE]


def drift_amounts(findings: Sequence[Finding]) -> dict[str, Decimal]:
    """Per currency (sorted), the money the actionable findings are off by: the sum of
    ``|due - held|`` in major units (a wrong amount either way counts as drift)."""
    found: dict[str, Decimal] = {}
    for finding in drift(findings):
        currency = finding.currency or "unknown"
        found[currency] = found.get(currency, Decimal(0)) + abs(finding.difference)
    return dict(sorted(found.items()))


def difference_line(chunk: Chunk, finding: Finding) -> dict[str, Any]:
    """One difference as a log line's fields: no e-mail address (a customer's is masked
    in the detail text; keys and ids name payments, not people)."""
    row = finding.row()
    detail = _EMAIL.sub(_masked, str(row.pop("detail") or ""))
    # "created" is a LogRecord attribute of its own: a log call may not overwrite it.
    row["payment_created"] = row.pop("created")
    return {
        "scope": chunk.scope,
        "actionable": finding.kind in HEALABLE,
        **{key: value for key, value in row.items() if value is not None},
        "detail": detail,
        "window_since": chunk.since,
        "window_until": chunk.until,
    }


def _masked(match: re.Match[str]) -> str:
    from partnero_bridge.observability import mask_email

    return mask_email(match.group(0)) or "***"


def differences(findings: Sequence[Finding]) -> list[Finding]:
    """The findings a log line is written for: every one that is not ``ok``."""
    return [f for f in findings if f.kind is not FindingKind.OK]

"""A reconciliation run over one window of one source (or Ecwid store), resumable.

:func:`reconcile` reads each of the source's listings page by page; the payments a page
names are compared in parallel (``workers`` threads, the API pacing shared), each payment
once; with ``apply`` the healable findings (missing, wrong amount, extra) are sent back to
the source's work queue as re-checks. After each page the page's findings are kept and the
checkpoint moves on (``ledger.checkpoints``), so a run stopped anywhere (Ctrl-C, a
timeout, an API down) resumes where it stopped: the next run over the same window, started
within :data:`RESUME_WITHIN_SECONDS`, carries on with the same run id, window end and
findings, unless ``restart``. A finished run is never resumed: the next one starts afresh.

Retryable failures (Stripe, Ecwid or Partnero down, DynamoDB throttling) are retried a few
times per payment, then stop the run with :class:`RunStopped` (its place kept).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from partnero_bridge.errors import ConfigurationError, RetryableError
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.checkpoints import Checkpoint, Checkpoints
from partnero_bridge.reconcile.common import Listed, Window, WindowSource
from partnero_bridge.reconcile.compare import HEALABLE, KIND_ORDER, Finding, Kind, Totals, totals

if TYPE_CHECKING:
    from collections.abc import Sequence

# An unfinished checkpoint older than this is not resumed: its window end is too old.
RESUME_WITHIN_SECONDS = 24 * 3600
# Attempts per payment when a remote fails transiently, before the run stops.
ATTEMPTS = 4


class RunStopped(Exception):
    """The run stopped on a failure that retrying did not cure; its place is kept."""


@dataclass(frozen=True)
class Progress:
    """Where a run is, after each page (for a progress display)."""

    scope: str
    stream: str
    pages: int
    listed: int  # objects listed so far by this process
    payments: int  # payments compared so far in the run (a resumed run's included)
    healable: int  # findings of the healable kinds so far


@dataclass
class RunResult:
    """One run's outcome: its findings (one per payment) and what it cost."""

    scope: str
    run_id: str
    window: Window
    started_at: int
    resumed: bool
    applied: bool
    findings: list[Finding] = field(default_factory=list)
    listed: int = 0


def window_text(since: int, until: int | None) -> str:
    """The window as a checkpoint names it: ``<since>..<until>`` in UTC, ``open`` when the
    run's start is the end."""

    def iso(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"{iso(since)}..{iso(until) if until is not None else 'open'}"


def _transient(error: BaseException) -> bool:
    return isinstance(error, RetryableError) and not isinstance(error, ConfigurationError)


class _Seen:
    """The ledger keys compared in this run (thread-safe)."""

    def __init__(self, keys_seen: set[str]) -> None:
        self._keys = keys_seen
        self._lock = threading.Lock()

    def first(self, ledger_key: str) -> bool:
        with self._lock:
            if ledger_key in self._keys:
                return False
            self._keys.add(ledger_key)
            return True


def reconcile(
    source: WindowSource,
    since: int,
    until: int | None,
    checkpoints: Checkpoints | None,
    *,
    apply: bool = False,
    restart: bool = False,
    workers: int = 4,
    on_progress: Callable[[Progress], None] = lambda _progress: None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    heal_only: Callable[[Finding], bool] | None = None,
) -> RunResult:
    """Compare every payment ``source`` lists in ``[since, until]`` (Unix seconds;
    ``until`` None: the run's start), and heal with ``apply`` (see the module docstring);
    ``heal_only`` narrows which healable findings ``apply`` heals (a backfill heals only
    the missing payments it vetted).

    Raises RunStopped when a remote keeps failing (the checkpoint keeps the place), and
    what a listing raises (a wrong key, a wrong URL) before anything is compared.
    """
    now = int(clock())
    text = window_text(since, until)
    checkpoint = None if checkpoints is None or restart else checkpoints.load(source.scope, text)
    resumed = (
        checkpoint is not None
        and not checkpoint.finished
        and now - checkpoint.started_at < RESUME_WITHIN_SECONDS
    )
    findings: dict[str, Finding] = {}
    if resumed and checkpoint is not None and checkpoints is not None:
        for rows in checkpoints.pages(checkpoint):
            for row in rows:
                finding = Finding.from_row(row)
                findings[finding.ledger_key] = finding
    else:
        end = until if until is not None else now
        if end < since:
            raise ValueError("the window ends before it starts")
        checkpoint = Checkpoint(
            pk=keys.reconcile_checkpoint(source.scope, text),
            run_id=uuid.uuid4().hex[:16],
            scope=source.scope,
            window_from=since,
            window_to=end,
            started_at=now,
        )
    assert checkpoint is not None
    window = Window(checkpoint.window_from, checkpoint.window_to)
    result = RunResult(
        source.scope, checkpoint.run_id, window, checkpoint.started_at, resumed, apply
    )
    seen = _Seen(set(findings))
    retrying = Retrying(
        retry=retry_if_exception(_transient),
        wait=wait_exponential_jitter(initial=1, max=20, jitter=1),
        stop=stop_after_attempt(ATTEMPTS),
        sleep=sleep,
    )

    def evaluate(item: Listed) -> Finding | None:
        # A retried payment must be compared again: the first attempt claimed its key.
        claimed: list[str] = []

        def first(ledger_key: str) -> bool:
            if ledger_key in claimed:
                return True
            new = seen.first(ledger_key)
            if new:
                claimed.append(ledger_key)
            return new

        try:
            found: Finding | None = retrying.copy()(source.evaluate, item, first)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise RunStopped(f"{source.scope}: {cause}") from cause
        return found

    if checkpoints is not None:
        checkpoints.save(checkpoint)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index in range(checkpoint.stream, len(source.streams)):
            stream = source.streams[index]
            cursor = checkpoint.cursor if index == checkpoint.stream else None
            while True:
                try:
                    page = retrying.copy()(source.page, stream, cursor, window)
                except RetryError as exc:
                    cause = exc.last_attempt.exception()
                    raise RunStopped(f"{source.scope}: listing {stream}: {cause}") from cause
                result.listed += len(page.items)
                done = [f for f in pool.map(evaluate, page.items) if f is not None]
                if apply:
                    done = [_healed(source, f, checkpoint.run_id, heal_only) for f in done]
                for finding in done:
                    findings[finding.ledger_key] = finding
                checkpoint = checkpoint.model_copy(
                    update={
                        "stream": index,
                        "cursor": page.next_cursor,
                        "payments": len(findings),
                        "updated_at": int(clock()),
                    }
                )
                if checkpoints is not None:
                    if done:
                        checkpoints.save_page(checkpoint, checkpoint.pages, [f.row() for f in done])
                        checkpoint = checkpoint.model_copy(update={"pages": checkpoint.pages + 1})
                    checkpoints.save(checkpoint)
                on_progress(
                    Progress(
                        source.scope,
                        stream,
                        checkpoint.pages,
                        result.listed,
                        len(findings),
                        sum(1 for f in findings.values() if f.kind in HEALABLE),
                    )
                )
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            checkpoint = checkpoint.model_copy(update={"stream": index + 1, "cursor": None})
    checkpoint = checkpoint.model_copy(update={"finished": True, "updated_at": int(clock())})
    if checkpoints is not None:
        checkpoints.save(checkpoint)
    result.findings = sorted(findings.values(), key=_order)
    return result


def _healed(
    source: WindowSource,
    finding: Finding,
    run_id: str,
    heal_only: Callable[[Finding], bool] | None = None,
) -> Finding:
    if finding.kind not in HEALABLE or finding.healing:
        return finding
    if heal_only is not None and not heal_only(finding):
        return finding
    source.heal(finding, run_id)
    return replace(finding, healing="queued")


def _order(finding: Finding) -> tuple[int, str, int, str]:
    return (
        KIND_ORDER.index(finding.kind),
        finding.currency,
        finding.created or 0,
        finding.ledger_key,
    )


# -- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """Every run of one ``reconcile`` command (one per Ecwid store), and what they cost."""

    source: str
    since: int
    until: int | None
    runs: list[RunResult] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # remote requests per service
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return sorted((f for run in self.runs for f in run.findings), key=_order)

    def totals(self) -> dict[Kind, dict[str, Totals]]:
        return totals(self.findings)

    def counts(self) -> dict[str, int]:
        found = {kind.value: 0 for kind in KIND_ORDER}
        for finding in self.findings:
            found[finding.kind.value] += 1
        return found

    @property
    def drift(self) -> list[Finding]:
        """The findings ``--apply`` heals (missing, wrong amount, extra)."""
        return [f for f in self.findings if f.kind in HEALABLE]

    def calls_per_payment(self) -> float:
        payments = len(self.findings)
        return round(sum(self.calls.values()) / payments, 2) if payments else 0.0

    def to_json(self, rows: Sequence[Finding] | None = None) -> dict[str, Any]:
        """The report as JSON-ready values (money as text); ``rows`` default: every
        finding that is not ``ok``."""
        shown = [f for f in self.findings if f.kind is not Kind.OK] if rows is None else rows
        return {
            "source": self.source,
            "window": {
                "since": _iso(self.since),
                "until": _iso(self.until) if self.until is not None else None,
            },
            "runs": [
                {
                    "scope": run.scope,
                    "run_id": run.run_id,
                    "window_end": _iso(run.window.end),
                    "resumed": run.resumed,
                    "applied": run.applied,
                    "listed": run.listed,
                    "payments": len(run.findings),
                }
                for run in self.runs
            ],
            "payments": len(self.findings),
            "counts": self.counts(),
            "totals": {
                kind.value: {currency: t.to_json(currency) for currency, t in by_currency.items()}
                for kind, by_currency in self.totals().items()
            },
            "calls": dict(sorted(self.calls.items())),
            "calls_per_payment": self.calls_per_payment(),
            "seconds": round(self.seconds, 1),
            "rows": [f.row() for f in shown],
        }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

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
from partnero_bridge.reconcile.compare import (
    HEALABLE,
    KIND_ORDER,
    Finding,
    FindingKind,
    Totals,
    totals,
)

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
    checkpoint, findings, resumed = _start(source.scope, since, until, checkpoints, restart, now)
    run_id = checkpoint.run_id
    window = Window(checkpoint.window_from, checkpoint.window_to)
    run = _Run(
        source=source,
        checkpoints=checkpoints,
        checkpoint=checkpoint,
        findings=findings,
        result=RunResult(source.scope, run_id, window, checkpoint.started_at, resumed, apply),
        retrying=Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential_jitter(initial=1, max=20, jitter=1),
            stop=stop_after_attempt(ATTEMPTS),
            sleep=sleep,
        ),
        clock=clock,
        on_progress=on_progress,
        heal=(lambda f: _healed(source, f, run_id, heal_only)) if apply else None,
    )
    return run.through(workers)


def _start(
    scope: str,
    since: int,
    until: int | None,
    checkpoints: Checkpoints | None,
    restart: bool,
    now: int,
) -> tuple[Checkpoint, dict[str, Finding], bool]:
    """The checkpoint a run carries on from, the findings it kept, and whether it is a
    resumed one (unfinished and recent); else a new checkpoint with the window's end fixed."""
    text = window_text(since, until)
    checkpoint = None if checkpoints is None or restart else checkpoints.load(scope, text)
    if (
        checkpoints is not None
        and checkpoint is not None
        and not checkpoint.finished
        and now - checkpoint.started_at < RESUME_WITHIN_SECONDS
    ):
        rows = (row for page in checkpoints.pages(checkpoint) for row in page)
        findings = {f.ledger_key: f for f in map(Finding.from_row, rows)}
        return checkpoint, findings, True
    end = until if until is not None else now
    if end < since:
        raise ValueError("the window ends before it starts")
    fresh = Checkpoint(
        pk=keys.reconcile_checkpoint(scope, text),
        run_id=uuid.uuid4().hex[:16],
        scope=scope,
        window_from=since,
        window_to=end,
        started_at=now,
    )
    return fresh, {}, False


@dataclass
class _Run:
    """One run's moving parts: the checkpoint it moves on after each page and the findings
    so far (one per ledger key)."""

    source: WindowSource
    checkpoints: Checkpoints | None
    checkpoint: Checkpoint
    findings: dict[str, Finding]
    result: RunResult
    retrying: Retrying
    clock: Callable[[], float]
    on_progress: Callable[[Progress], None]
    heal: Callable[[Finding], Finding] | None  # None: report only
    seen: _Seen = field(init=False)

    def __post_init__(self) -> None:
        self.seen = _Seen(set(self.findings))

    def through(self, workers: int) -> RunResult:
        """Read every listing from the checkpoint's place to its end; the result, sorted."""
        self._save()
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for index in range(self.checkpoint.stream, len(self.source.streams)):
                self._read_listing(pool, index)
        self._moved(finished=True, updated_at=int(self.clock()))
        self._save()
        self.result.findings = sorted(self.findings.values(), key=_order)
        return self.result

    def _read_listing(self, pool: ThreadPoolExecutor, index: int) -> None:
        stream = self.source.streams[index]
        cursor = self.checkpoint.cursor if index == self.checkpoint.stream else None
        while True:
            window = self.result.window
            page = self._retried(f"listing {stream}: ", self.source.page, stream, cursor, window)
            self.result.listed += len(page.items)
            done = [f for f in pool.map(self._evaluate, page.items) if f is not None]
            if self.heal is not None:
                done = [self.heal(f) for f in done]
            self._keep_page(index, stream, page.next_cursor, done)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        self._moved(stream=index + 1, cursor=None)

    def _evaluate(self, item: Listed) -> Finding | None:
        # A retried payment must be compared again: the first attempt claimed its key.
        claimed: list[str] = []

        def first(ledger_key: str) -> bool:
            if ledger_key in claimed:
                return True
            new = self.seen.first(ledger_key)
            if new:
                claimed.append(ledger_key)
            return new

        return self._retried("", self.source.evaluate, item, first)

    def _retried[T](self, what: str, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, retried on transient failures; RunStopped once they persist."""
        try:
            return self.retrying.copy()(call, *args)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise RunStopped(f"{self.source.scope}: {what}{cause}") from cause

    def _keep_page(
        self, index: int, stream: str, next_cursor: str | None, done: list[Finding]
    ) -> None:
        """Keep a page's findings (a page item first), then move the checkpoint past it."""
        for finding in done:
            self.findings[finding.ledger_key] = finding
        self._moved(
            stream=index,
            cursor=next_cursor,
            payments=len(self.findings),
            updated_at=int(self.clock()),
        )
        if self.checkpoints is not None and done:
            rows = [f.row() for f in done]
            self.checkpoints.save_page(self.checkpoint, self.checkpoint.pages, rows)
            self._moved(pages=self.checkpoint.pages + 1)
        self._save()
        healable = sum(1 for f in self.findings.values() if f.kind in HEALABLE)
        listed, payments = self.result.listed, len(self.findings)
        pages = self.checkpoint.pages
        self.on_progress(Progress(self.source.scope, stream, pages, listed, payments, healable))

    def _moved(self, **update: Any) -> None:
        self.checkpoint = self.checkpoint.model_copy(update=update)

    def _save(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(self.checkpoint)


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

    def totals(self) -> dict[FindingKind, dict[str, Totals]]:
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
        shown = [f for f in self.findings if f.kind is not FindingKind.OK] if rows is None else rows
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

"""``partnero-bridge reconcile``: does Partnero hold what Stripe or Ecwid says is due, for
every payment of a window?

A thin command over ``partnero_bridge.reconcile`` (the same code a scheduled
reconciliation runs): it finds the source's process function's settings (a deployed
stack's with ``--stack-name``, else the local stack's), runs the reconciliation with a
progress display on stderr (only on a terminal, never with ``--quiet``), and prints the
report as a table, JSON or CSV. See docs/reconcile.md.

Exit status: 0 when nothing is missing, wrong or extra (or ``--apply`` queued every such
payment to be healed), 2 when some is and ``--apply`` was not given (or, as for any
refused option, the options make no window), 1 when it could not run (the reason on
stderr, one line; a stopped run resumes where it stopped).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import time as time_now
from typing import TYPE_CHECKING, Any, TextIO

from partnero_bridge.reconcile.compare import KIND_ORDER, Finding, FindingKind

if TYPE_CHECKING:
    from partnero_bridge.config import BridgeSettings
    from partnero_bridge.reconcile.run import Progress as RunProgress
    from partnero_bridge.reconcile.run import Report

FORMATS = ("table", "json", "csv")
# The share of each API's rate limit a run takes by default (reconcile.pacing.DEFAULT_SHARE;
# not imported here, so building the command line stays light for every other command).
DEFAULT_SHARE = 0.5
CSV_COLUMNS = (
    "kind",
    "source_id",
    "currency",
    "due",
    "held",
    "difference",
    "ledger_holds",
    "transaction_key",
    "ledger_key",
    "partner_key",
    "created",
    "healing",
    "detail",
)


def parse_when(text: str, *, end_of_day: bool = False) -> int:
    """``YYYY-MM-DD`` (UTC; with ``end_of_day`` its last second, so ``--until`` includes
    the day), an ISO 8601 date and time (UTC unless it names an offset) or Unix seconds,
    as Unix seconds.
    """
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) > 8:
        return int(text)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        if len(text) == 10:
            start = datetime.combine(day, time(0, 0), UTC)
            if end_of_day:
                return int((start + timedelta(days=1)).timestamp()) - 1
            return int(start.timestamp())
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {text!r} (YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix seconds of 9 "
            "digits or more)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def share(text: str) -> float:
    """``--rate-share``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (0: no pacing)")
    return value


def workers(text: str) -> int:
    """``--workers``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _window_arguments(parser: argparse.ArgumentParser) -> None:
    """Which payments: the source, its stores and the window."""
    parser.add_argument("--source", choices=["stripe", "ecwid"], required=True)
    parser.add_argument(
        "--store",
        action="append",
        default=[],
        help="Ecwid only: this store (repeatable; default: every configured store)",
    )
    parser.add_argument(
        "--since",
        required=True,
        type=parse_when,
        help="window start: YYYY-MM-DD (UTC), an ISO 8601 date and time, or Unix seconds",
    )
    parser.add_argument(
        "--until",
        type=lambda text: parse_when(text, end_of_day=True),
        default=None,
        help="window end, inclusive (a date: its whole day; default: when the run starts)",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    """How the run goes: pacing, workers, the stack, quiet."""
    parser.add_argument(
        "--rate-share",
        type=share,
        default=DEFAULT_SHARE,
        help=f"share of each API's rate limit to use (default: {DEFAULT_SHARE}; 0: no pacing)",
    )
    parser.add_argument(
        "--workers", type=workers, default=4, help="payments compared at once (default: 4)"
    )
    parser.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary on stderr"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``reconcile`` subcommand's options."""
    _window_arguments(parser)
    parser.add_argument(
        "--apply",
        action="store_true",
        help="heal what is missing, wrong or extra through the work queue (report-only "
        "kinds are never touched)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="report format")
    parser.add_argument(
        "--all", action="store_true", help="list every payment, the ones that agree too"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start the window over instead of resuming an unfinished run of it",
    )
    _run_options(parser)


# -- progress -----------------------------------------------------------------------------------


@contextmanager
def progress_display(err: TextIO, enabled: bool) -> Iterator[Callable[[RunProgress], None]]:
    """A spinner line on stderr with the run's figures, updated after each page."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(file=err),
        disable=not enabled,
    )
    with progress:
        task = progress.add_task("listing", total=None)

        def update(state: RunProgress) -> None:
            progress.update(
                task,
                description=f"{state.scope} {state.stream}: {state.listed} listed, "
                f"{state.payments} payments compared, {state.healable} to heal",
            )

        yield update


# -- rendering ------------------------------------------------------------------------------------


def table_lines(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text columns (two spaces apart; the first row is the
    header), for every table the CLI prints."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _money(value: Any) -> str:
    return "-" if value is None else str(value)


def _report_head(report: Report) -> list[str]:
    """The window, each scope's run and the remote calls made."""
    data = report.to_json()
    window = data["window"]
    applied = any(run.applied for run in report.runs)
    lines = [
        f"Reconcile {report.source}, {window['since']} .. "
        f"{window['until'] or 'the run start'}" + (" (--apply)" if applied else ""),
    ]
    lines += [
        f"  {run['scope']}: run {run['run_id']}, window end {run['window_end']}, "
        f"{run['payments']} payments from {run['listed']} objects listed"
        + (" (resumed)" if run["resumed"] else "")
        for run in data["runs"]
    ]
    calls = ", ".join(f"{name} {count}" for name, count in data["calls"].items()) or "none"
    lines.append(f"  remote calls: {calls} ({data['calls_per_payment']} per payment)")
    return lines


def _totals_lines(report: Report) -> list[str]:
    """Counts and money per kind and currency, and the kinds none was found of."""
    table = [["KIND", "COUNT", "CURRENCY", "DUE", "HELD", "DIFFERENCE"]]
    for kind, by_currency in report.totals().items():
        for currency, totals in by_currency.items():
            money = totals.to_json(currency)
            table.append(
                [
                    kind.value,
                    str(totals.count),
                    currency or "-",
                    money["due"],
                    money["held"],
                    money["difference"],
                ]
            )
    lines = table_lines(table) if len(table) > 1 else ["no payment in the window"]
    counts = report.counts()
    missing_kinds = [k.value for k in KIND_ORDER if not counts[k.value]]
    if missing_kinds:
        lines.append(f"none: {', '.join(missing_kinds)}")
    return lines


def _finding_lines(report: Report, every: bool) -> list[str]:
    """One row per payment shown (those that differ; every one with ``every``)."""
    rows = shown(report, every)
    if not rows:
        return ["every payment agrees"]
    grid = [["KIND", "PAYMENT", "CURRENCY", "DUE", "HELD", "DIFFERENCE", "HEALING", "DETAIL"]]
    for finding in rows:
        row = finding.row()
        grid.append(
            [
                finding.kind.value,
                finding.source_id,
                finding.currency or "-",
                _money(row["due"]),
                _money(row["held"]),
                row["difference"],
                finding.healing or "-",
                finding.detail,
            ]
        )
    return table_lines(grid)


def shown(report: Report, every: bool) -> list[Finding]:
    return [f for f in report.findings if every or f.kind is not FindingKind.OK]


def render_table(report: Report, every: bool = False) -> str:
    """The report for a person: what was compared, totals per kind and currency, rows."""
    lines = _report_head(report)
    lines.append("")
    lines += _totals_lines(report)
    lines.append("")
    lines += _finding_lines(report, every)
    return "\n".join(lines) + "\n"


def render_csv(report: Report, every: bool = False) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for finding in shown(report, every):
        writer.writerow({k: ("" if v is None else v) for k, v in finding.row().items()})
    return out.getvalue()


def render(report: Report, output: str, every: bool = False) -> str:
    if output == "json":
        return json.dumps(report.to_json(shown(report, every)), indent=2) + "\n"
    if output == "csv":
        return render_csv(report, every)
    return render_table(report, every)


# -- the command -----------------------------------------------------------------------------------


def window_problem(args: Any, now: float | None = None) -> str | None:
    """What is wrong with a window's options (shared by reconcile and backfill), or None.
    ``now``: Unix seconds (default: the clock), the end of a window without ``--until``."""
    if args.store and args.source != "ecwid":
        return "--store is for --source ecwid"
    if args.until is not None and args.until < args.since:
        return "--until is before --since"
    if args.until is None and args.since > (time_now() if now is None else now):
        return "--since is in the future (the window ends now without --until)"
    return None


def failure_line(exc: Exception, stack_name: str | None) -> str | None:
    """One line for a failure of the stack's settings, a remote API or AWS; None for any
    other exception (a bug, to be raised)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from partnero_bridge.errors import DeliveryError
    from partnero_bridge_cli.dlq import describe_error
    from partnero_bridge_cli.explain import ExplainError
    from partnero_bridge_cli.stack_settings import SettingsError

    if isinstance(exc, ExplainError | SettingsError):
        return str(exc)
    if isinstance(exc, DeliveryError):
        return f"{exc.kind}: {exc.reason}"
    if isinstance(exc, BotoCoreError | ClientError):
        return describe_error(exc, stack_name)
    return None


def _reconcile(
    args: Any,
    root: Path | None,
    err: TextIO,
    settings: BridgeSettings | None,
    env: Mapping[str, str],
) -> Report:
    """The window reconciled with the stack's settings, progress on a terminal."""
    from partnero_bridge.reconcile.service import paced_runtime, reconcile_source
    from partnero_bridge_cli.explain import process_settings

    settings = settings or process_settings(args.source, args.stack_name, root, env)
    runtime, meters = paced_runtime(settings, args.rate_share)
    with progress_display(err, not args.quiet and err.isatty()) as on_progress:
        return reconcile_source(
            runtime,
            meters,
            args.source,
            args.since,
            args.until,
            stores=args.store,
            apply=args.apply,
            restart=args.restart,
            workers=max(1, args.workers),
            on_progress=on_progress,
        )


def _summary(report: Report, applied: bool) -> str:
    drift = report.drift
    return (
        f"compared {len(report.findings)} payment(s) in {report.seconds:.1f} s: "
        f"{len(drift)} missing, wrong or extra"
        + (f", {sum(1 for f in drift if f.healing)} queued to heal" if applied else "")
        + "\n"
    )


def exit_on_failure(
    exc: BaseException,
    name: str,
    stack_name: str | None,
    err: TextIO,
    *,
    stopped: str,
    interrupted: str,
) -> int:
    """The exit status for a run that failed, its one line on ``err`` (shared by reconcile
    and backfill): 130 interrupted, 1 stopped or failed; any other exception (a bug) is
    raised again."""
    from partnero_bridge.reconcile.run import RunStopped

    if isinstance(exc, KeyboardInterrupt):
        err.write(f"{name}: interrupted{interrupted}\n")
        return 130
    if isinstance(exc, RunStopped):
        err.write(f"{name}: stopped: {exc}; {stopped}\n")
        return 1
    line = failure_line(exc, stack_name) if isinstance(exc, Exception) else None
    if line is None:
        raise exc
    err.write(f"{name}: {line}\n")
    return 1


def run(
    args: Any,
    root: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    settings: BridgeSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """The ``reconcile`` subcommand (see the module docstring for the exit status)."""
    name = "partnero-bridge reconcile"
    problem = window_problem(args)
    if problem is not None:
        err.write(f"{name}: {problem}\n")
        return 2  # as argparse refuses an option
    try:
        report = _reconcile(args, root, err, settings, os.environ if env is None else env)
    except (Exception, KeyboardInterrupt) as exc:
        return exit_on_failure(
            exc,
            name,
            args.stack_name,
            err,
            stopped="run the same command again to resume where it stopped",
            interrupted="; run the same command again to resume",
        )
    out.write(render(report, args.format, args.all))
    drift = report.drift
    if not args.quiet:
        err.write(_summary(report, bool(args.apply)))
    if drift and not all(f.healing for f in drift):
        return 2
    return 0

"""``partnero-bridge backfill``: past sales the bridge never saw, made in Partnero once.

A thin layer over the reconcile core (``partnero_bridge.reconcile``): a window's
``missing`` findings are exactly the sales Partnero should hold and does not. The dry run
(the default) lists them with counts and money per currency and per partner; ``--apply``
runs the window again and heals only those payments, through reconcile's own path (the
ledger item marked to ask Partnero first, a re-check on the source's work queue), so each
reaches Partnero with its sale's time as ``created_at``, refunds netted by the decision
code, never doubled by a webhook arriving at the same time, and a second ``--apply``
finds nothing missing.

The cut-over check: before anything is created, every customer of a payment to create is
looked up in Partnero (``GET /v1/transactions?customer.key=...``); when Partnero holds a
transaction of theirs outside the bridge's namespace (Partnero's own Stripe integration,
a manual one), the backfill refuses unless ``--not-before`` names the cut-over date, and
payments before that date are never created.

Exit status: 0 done (dry run listed, or everything queued), 1 could not run or refused,
2 options that do not make a window.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from partnero_bridge.money import amount_text
from partnero_bridge.reconcile.compare import Finding, FindingKind, in_namespace
from partnero_bridge_cli.reconcile import (
    DEFAULT_SHARE,
    FORMATS,
    exit_on_failure,
    parse_when,
    progress_display,
    share,
    table_lines,
    window_problem,
    workers,
)

if TYPE_CHECKING:
    from partnero_bridge.config import BridgeSettings
    from partnero_bridge.reconcile.run import Report
    from partnero_bridge.reconcile.service import Meters
    from partnero_bridge.runtime import Runtime

# The partner column of a sale credited through its customer's referral in Partnero (the
# payment names no partner of its own).
BY_CUSTOMER = "(customer's referral)"
CSV_COLUMNS = (
    "source_id",
    "transaction_key",
    "currency",
    "amount",
    "partner_key",
    "created",
    "healing",
)


class Refused(Exception):
    """The backfill may not create anything as asked (the reason names what to do)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backfill`` subcommand's options."""
    parser.add_argument("--source", choices=["stripe", "ecwid"], required=True)
    parser.add_argument(
        "--store",
        action="append",
        default=[],
        help="Ecwid only: this store (repeatable; default: every configured store)",
    )
    parser.add_argument("--since", required=True, type=parse_when, help="window start")
    parser.add_argument(
        "--until",
        type=lambda text: parse_when(text, end_of_day=True),
        default=None,
        help="window end, inclusive (default: now)",
    )
    parser.add_argument(
        "--not-before",
        dest="not_before",
        type=parse_when,
        default=None,
        help="the cut-over date: payments made before it are never created (required when "
        "Partnero already holds other transactions for the window's customers)",
    )
    parser.add_argument(
        "--apply", action="store_true", help="create them (default: only list them)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--rate-share",
        type=share,
        default=DEFAULT_SHARE,
        help=f"share of each API's rate limit to use (default: {DEFAULT_SHARE}; 0: no pacing)",
    )
    parser.add_argument("--workers", type=workers, default=4, help="payments compared at once")
    parser.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="nothing on stderr")


# -- the plan --------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a backfill creates (``create``) and leaves (``before_cutover``: missing but
    made before ``--not-before`` or at an unknown time), and the customers Partnero holds
    other transactions for."""

    since: int
    until: int | None
    not_before: int | None
    create: list[Finding] = field(default_factory=list)
    before_cutover: list[Finding] = field(default_factory=list)
    foreign_customers: list[str] = field(default_factory=list)
    partners: dict[str, str] = field(default_factory=dict)  # ledger key -> partner shown

    def partner_of(self, finding: Finding) -> str:
        return self.partners.get(finding.ledger_key) or finding.partner_key or BY_CUSTOMER

    def totals(self, by: Callable[[Finding], str]) -> dict[tuple[str, str], tuple[int, Decimal]]:
        """Count and money per (``by(finding)``, currency), sorted."""
        found: dict[tuple[str, str], tuple[int, Decimal]] = {}
        for finding in self.create:
            key = (by(finding), finding.currency)
            count, money = found.get(key, (0, Decimal(0)))
            found[key] = (count + 1, money + (finding.due or Decimal(0)))
        return dict(sorted(found.items()))

    def row(self, finding: Finding) -> dict[str, Any]:
        return {
            "source_id": finding.source_id,
            "transaction_key": finding.transaction_key,
            "currency": finding.currency,
            "amount": amount_text(finding.due or Decimal(0), finding.currency),
            "partner_key": self.partner_of(finding),
            "created": finding.created,
            "healing": finding.healing,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {"since": self.since, "until": self.until, "not_before": self.not_before},
            "count": len(self.create),
            "per_currency": {
                currency: {"count": n, "amount": amount_text(money, currency)}
                for (currency, _), (n, money) in self.totals(lambda f: f.currency).items()
            },
            "per_partner": [
                {
                    "partner": partner,
                    "currency": currency,
                    "count": n,
                    "amount": amount_text(money, currency),
                }
                for (partner, currency), (n, money) in self.totals(self.partner_of).items()
            ],
            "before_cutover": len(self.before_cutover),
            "rows": [self.row(f) for f in self.create],
        }


def plan(report: Report, since: int, until: int | None, not_before: int | None) -> Plan:
    """The window's missing payments, split by the cut-over date."""
    found = Plan(since, until, not_before)
    for finding in report.findings:
        if finding.kind is not FindingKind.MISSING:
            continue
        if not_before is not None and (finding.created is None or finding.created < not_before):
            found.before_cutover.append(finding)
        else:
            found.create.append(finding)
    return found


def check_customers(runtime: Runtime, found: Plan) -> None:
    """Ask Partnero about each customer of a payment to create: fills the partner the
    customer was referred by (for the per-partner totals) and the customers Partnero holds
    transactions outside the bridge's namespace for."""
    partners: dict[str, str | None] = {}
    foreign: set[str] = set()
    for finding in found.create:
        customer = finding.extra.get("customer_key")
        if not isinstance(customer, str) or not customer:
            continue
        if customer not in partners:
            partners[customer] = _customer_partner(runtime, customer)
            answer = runtime.partnero.customer_transactions(customer)
            listed = answer.data if isinstance(answer.data, list) else []
            if any(
                isinstance(t, dict) and not in_namespace(str(t.get("key") or "")) for t in listed
            ):
                foreign.add(customer)
        partner = partners[customer]
        if not finding.partner_key and partner:
            found.partners[finding.ledger_key] = partner
    found.foreign_customers = sorted(foreign)


def _customer_partner(runtime: Runtime, customer: str) -> str | None:
    answer = runtime.partnero.get_customer(customer)
    data = answer.data if isinstance(answer.data, dict) else {}
    partner = data.get("partner")
    if isinstance(partner, dict):
        partner = partner.get("key")
    return partner if isinstance(partner, str) and partner else None


def refusal(found: Plan) -> str | None:
    """Why the backfill may not go on as asked (None: it may)."""
    if found.foreign_customers and found.not_before is None:
        count = len(found.foreign_customers)
        return (
            f"Partnero already holds transactions outside the bridge's namespace for {count} "
            "customer(s) of this window (another integration, such as Partnero's own Stripe "
            "one, or manual entries): give the cut-over date with --not-before DATE so no "
            "sale is credited twice; payments before it are never created"
        )
    return None


# -- rendering ---------------------------------------------------------------------------------


def render(found: Plan, output: str, applied: bool) -> str:
    data = found.to_json()
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    if output == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in data["rows"]:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return out.getvalue()
    verb = "queued to create" if applied else "would create"
    lines = [f"Backfill: {verb} {data['count']} transaction(s)"]
    if found.before_cutover:
        lines.append(f"  {len(found.before_cutover)} missing before --not-before: never created")
    for currency, totals in data["per_currency"].items():
        lines.append(f"  {currency}: {totals['count']} for {totals['amount']}")
    if data["per_partner"]:
        lines += ["", *table_lines(_partner_rows(data["per_partner"]))]
        lines += ["", *table_lines(_payment_rows(data["rows"]))]
    return "\n".join(lines) + "\n"


def _partner_rows(totals: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["PARTNER", "CURRENCY", "COUNT", "AMOUNT"]]
    rows += [[t["partner"], t["currency"], str(t["count"]), t["amount"]] for t in totals]
    return rows


def _payment_rows(payments: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["PAYMENT", "TRANSACTION", "CURRENCY", "AMOUNT", "PARTNER", "CREATED"]]
    rows += [
        [
            p["source_id"],
            p["transaction_key"],
            p["currency"],
            p["amount"],
            p["partner_key"],
            utc_time(p["created"]),
        ]
        for p in payments
    ]
    return rows


def utc_time(seconds: int | None) -> str:
    """Unix seconds as ``2026-11-29 17:03:12 UTC``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _backfill(
    args: Any,
    root: Path | None,
    err: TextIO,
    settings: BridgeSettings | None,
    env: Mapping[str, str],
) -> Plan:
    """The dry run's plan; with --apply, the same plan as queued (a payment healed
    meanwhile is not queued again). Raises Refused when the cut-over check fails."""
    from partnero_bridge.reconcile.service import paced_runtime
    from partnero_bridge_cli.explain import process_settings

    settings = settings or process_settings(args.source, args.stack_name, root, env)
    runtime, meters = paced_runtime(settings, args.rate_share)
    found = plan(
        _compare_window(args, runtime, meters, err, set()), args.since, args.until, args.not_before
    )
    check_customers(runtime, found)
    why = refusal(found)
    if why is not None:
        raise Refused(why)
    if args.apply and found.create:
        vetted = {f.ledger_key for f in found.create}
        report = _compare_window(args, runtime, meters, err, vetted)
        queued = {f.ledger_key: f for f in report.findings if f.healing}
        found.create = [queued[f.ledger_key] for f in found.create if f.ledger_key in queued]
    return found


def _compare_window(
    args: Any, runtime: Runtime, meters: Meters, err: TextIO, heal: set[str]
) -> Report:
    """The window compared afresh (never a resumed dry run's findings, which would not
    be healed); only the missing payments of ``heal`` are healed, none when it is empty."""
    from partnero_bridge.reconcile.service import reconcile_source

    with progress_display(err, not args.quiet and err.isatty()) as on_progress:
        return reconcile_source(
            runtime,
            meters,
            args.source,
            args.since,
            args.until,
            stores=args.store,
            apply=bool(heal),
            restart=True,
            workers=max(1, args.workers),
            on_progress=on_progress,
            heal_only=lambda f: f.kind is FindingKind.MISSING and f.ledger_key in heal,
        )


# -- the command ------------------------------------------------------------------------------


def run(
    args: Any,
    root: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    settings: BridgeSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """The ``backfill`` subcommand (see the module docstring for the exit status)."""
    name = "partnero-bridge backfill"
    problem = window_problem(args)
    if problem is not None:
        err.write(f"{name}: {problem}\n")
        return 2  # as argparse refuses an option
    try:
        found = _backfill(args, root, err, settings, os.environ if env is None else env)
    except Refused as exc:
        err.write(f"{name}: refused: {exc}\n")
        return 1
    except (Exception, KeyboardInterrupt) as exc:
        return exit_on_failure(
            exc,
            name,
            args.stack_name,
            err,
            stopped="nothing more was queued, run it again",
            interrupted="",
        )
    out.write(render(found, args.format, bool(args.apply)))
    return 0

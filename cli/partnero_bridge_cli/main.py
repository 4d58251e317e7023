"""``partnero-bridge``: run the local stack and operate a bridge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _project_root(start: Path) -> Path:
    """The folder holding template.yaml: the current one or one of its parents."""
    for folder in (start, *start.parents):
        if (folder / "template.yaml").is_file():
            return folder
    raise SystemExit(
        "template.yaml not found here or in a parent folder; "
        "run this from a partnero-bridge checkout"
    )


def _checkout(start: Path) -> Path | None:
    """The folder holding template.yaml, or None (only the local stack needs it)."""
    try:
        return _project_root(start)
    except SystemExit:
        return None


def _rate(text: str) -> float:
    """``--rate``: messages a second, a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number >= 0 (0: no limit)")
    return value


def _seconds(text: str) -> float:
    """``--timeout``: seconds, a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds >= 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="partnero-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="start the local stack (gateway, moto, pollers, Partnero sandbox)",
        description="Start the local stack in the foreground. Settings come from "
        "environment variables; see docs/configuration.md.",
    )
    run.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project folder with template.yaml (default: found from here)",
    )
    dlq = commands.add_parser(
        "dlq",
        help="list, replay or purge dead-lettered messages",
        description="Reads each dead-letter queue until it is really empty (long polling), "
        "each message once; list leaves every message in place, replay sends each back to "
        "its work queue once (a new retry window) and then deletes it. Reaches the local "
        "stack through AWS_ENDPOINT_URL, a deployed stack through --stack-name (queue URLs "
        "from its outputs).",
    )
    dlq.add_argument("action", choices=["list", "replay", "purge"])
    dlq.add_argument(
        "--source",
        choices=["signup", "ecwid", "stripe"],
        default=None,
        help="only this source's dead-letter queue (default: all three)",
    )
    dlq.add_argument(
        "--id", default=None, help="only the message with this delivery id (or SQS message id)"
    )
    dlq.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    dlq.add_argument("--json", action="store_true", help="list as JSON")
    dlq.add_argument("--yes", action="store_true", help="purge without asking")
    dlq.add_argument(
        "--rate",
        type=_rate,
        default=50.0,
        help="replay at most this many messages a second (default: 50; 0: no limit)",
    )
    dlq.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary on stderr"
    )
    parked = commands.add_parser(
        "parked",
        help="list or replay parked Ecwid webhooks (stores that were not configured)",
        description="Webhooks of Ecwid stores not in ECWID_STORE_IDS are parked, not queued. "
        "replay sends those of stores configured since to the Ecwid work queue and deletes "
        "them from the parked table. Reaches the local stack through AWS_ENDPOINT_URL (the "
        "configured stores from the same variables as `make run`), a deployed stack through "
        "--stack-name (its outputs and the Ecwid function's ECWID_STORE_IDS).",
    )
    parked.add_argument("action", choices=["list", "replay"])
    parked.add_argument("--store", default=None, help="only this store's parked webhooks")
    parked.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    parked.add_argument("--json", action="store_true", help="list as JSON")
    send = commands.add_parser(
        "send",
        help="sign a sample event (events/) and post it to the bridge",
        description="Like `stripe trigger`, for all three sources. NAME is a sample such as "
        "stripe/invoice.paid, ecwid/order.created or signup, or a JSON file of your own. "
        "Against the local stack it then waits for what became of the delivery and prints "
        "it (created, updated, reversed, duplicate, ignored and why, retrying, "
        "dead-lettered...). Exit status 1 when the bridge answered an error or "
        "dead-lettered the delivery.",
    )
    send.add_argument("name", nargs="?", help="sample name or file (omit to list them)")
    send.add_argument(
        "--url", default=None, help="bridge base URL (default: the local stack, BRIDGE_URL if set)"
    )
    send.add_argument(
        "--fresh",
        action="store_true",
        help="give the event a new id (a new delivery of the same payment/order)",
    )
    send.add_argument(
        "--print-event",
        action="store_true",
        help="print the signed API Gateway event (for sam local invoke -e)",
    )
    send.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for what became of the delivery (the local stack's delivery feed)",
    )
    send.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wait at most this long for the delivery's outcome (default: 30)",
    )
    explain = commands.add_parser(
        "explain",
        help="tell one payment's story: deliveries, source state, decision, ledger, Partnero",
        description="Reads, never writes: the deliveries the ledger kept about the payment, "
        "its state read from Stripe or Ecwid now and the decision the bridge makes from it, "
        "what the ledger says Partnero holds and what Partnero holds, and whether they agree. "
        "ID is a Stripe invoice, payment intent, charge, checkout session, refund or dispute "
        "id, or an Ecwid order as STORE:ORDER (e.g. 1003:K8XTQ). Exit status 0: they agree; "
        "2: they differ; 1: it cannot tell. Reaches the local stack through AWS_ENDPOINT_URL, "
        "a deployed stack through --stack-name (the process function's settings).",
    )
    explain.add_argument("id", help="in_..., pi_..., ch_..., cs_..., re_... or STORE:ORDER")
    explain.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    explain.add_argument("--json", action="store_true", help="the story as JSON")
    forget = commands.add_parser(
        "forget",
        help="remove or mask a person's records in the ledger (an e-mail or customer key)",
        description="Deletes the customer's sign-up item, removes the customer key from "
        "identity-map items and masks e-mail addresses in the texts of commission items that "
        "name the customer (their amounts, keys and customer key are kept: the record of "
        "what Partnero holds). Identity-map and commission items are found by a full scan "
        "of the ledger table. Prints what it changed. Reaches the local stack through "
        "AWS_ENDPOINT_URL, a deployed stack through --stack-name.",
    )
    forget.add_argument("person", help="an e-mail address or a Partnero customer key")
    forget.add_argument(
        "--dry-run", action="store_true", help="say what would change, write nothing"
    )
    forget.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )
    forget.add_argument("--json", action="store_true", help="the report as JSON")
    reconcile = commands.add_parser(
        "reconcile",
        help="compare a window of Stripe payments or Ecwid orders with Partnero and the ledger",
        description="Lists the payments created or touched in the window (Stripe: payments, "
        "invoices, checkout sessions, refunds, disputes, events of the last 30 days; Ecwid: "
        "orders updated or created in it, deleted orders), decides what Partnero should hold "
        "for each with the webhooks' own code, and reports the differences by kind with "
        "totals per currency: missing, wrong_amount, extra, adjustment_needed, wrong_partner, "
        "not_referred, undecidable. --apply heals only missing, wrong_amount and extra, "
        "through the work queue. Resumes an unfinished run of the same window. Exit status "
        "0: nothing to heal (or all queued); 2: some; 1: could not run. Reaches the local "
        "stack through AWS_ENDPOINT_URL, a deployed stack through --stack-name.",
    )
    from partnero_bridge_cli.reconcile import add_arguments as reconcile_arguments

    reconcile_arguments(reconcile)
    backfill = commands.add_parser(
        "backfill",
        help="create in Partnero the past sales of a window the bridge never saw",
        description="A dry run unless --apply: lists the window's sales Partnero lacks "
        "(reconcile's missing kind) with counts and money per currency and partner; --apply "
        "creates them through the work queue, backdated to their sale time, once. Refuses "
        "without --not-before when Partnero holds other transactions for those customers.",
    )
    from partnero_bridge_cli.backfill import add_arguments as backfill_arguments

    backfill_arguments(backfill)
    commands.add_parser("openapi", help="print the OpenAPI description of the routes")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        import json

        from partnero_bridge_cli.openapi import build

        print(json.dumps(build(_project_root(Path.cwd())), indent=2))
        return 0

    if args.command == "send":
        from partnero_bridge_cli.send import available
        from partnero_bridge_cli.send import send as send_sample

        root = _project_root(Path.cwd())
        if not args.name:
            print("samples:\n  " + "\n  ".join(available(root)))
            return 0
        from partnero_bridge_cli.send import DEFAULT_WAIT_SECONDS

        timeout = DEFAULT_WAIT_SECONDS if args.timeout is None else args.timeout
        wait = None if args.no_wait else timeout
        return send_sample(
            root, args.name, args.url, args.fresh, args.print_event, wait_seconds=wait
        )

    if args.command == "dlq":
        from partnero_bridge_cli.dlq import run as run_dlq

        return run_dlq(args)

    if args.command == "explain":
        from partnero_bridge_cli.explain import run as run_explain
        from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

        bridge_logs_to_stderr()
        return run_explain(args, _checkout(Path.cwd()))

    if args.command == "forget":
        from partnero_bridge_cli.forget import run as run_forget
        from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

        bridge_logs_to_stderr()
        return run_forget(args, _checkout(Path.cwd()))

    if args.command == "reconcile":
        from partnero_bridge_cli.reconcile import run as run_reconcile
        from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

        bridge_logs_to_stderr()
        return run_reconcile(args, _checkout(Path.cwd()))

    if args.command == "backfill":
        from partnero_bridge_cli.backfill import run as run_backfill
        from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

        bridge_logs_to_stderr()
        return run_backfill(args, _checkout(Path.cwd()))

    if args.command == "parked":
        from partnero_bridge_cli.parked import run as run_parked

        return run_parked(args)

    from partnero_bridge_cli.local.stack import run as run_stack

    return run_stack(args.root or _project_root(Path.cwd()))


if __name__ == "__main__":
    sys.exit(main())

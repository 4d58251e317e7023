"""``partnero-bridge``: run the local stack and operate a bridge."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


def _stack_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack-name", default=None, help="a deployed stack (default: the local stack)"
    )


# -- each command's options ------------------------------------------------------------------
# Kept here rather than in the command modules: those import boto3, rich and the bridge's
# code, and `--help` of any command should not need them.


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project folder with template.yaml (default: found from here)",
    )
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help="print the functions' log lines as JSON (default: one line per delivery's outcome)",
    )


def _dlq_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "replay", "purge"])
    parser.add_argument(
        "--source",
        choices=["signup", "ecwid", "stripe"],
        default=None,
        help="only this source's dead-letter queue (default: all three)",
    )
    parser.add_argument(
        "--id", default=None, help="only the message with this delivery id (or SQS message id)"
    )
    _stack_name(parser)
    parser.add_argument("--json", action="store_true", help="list as JSON")
    parser.add_argument("--yes", action="store_true", help="purge without asking")
    parser.add_argument(
        "--rate",
        type=_rate,
        default=50.0,
        help="replay at most this many messages a second (default: 50; 0: no limit)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary on stderr"
    )


def _parked_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("--store", default=None, help="only this store's parked webhooks")
    _stack_name(parser)
    parser.add_argument("--json", action="store_true", help="list as JSON")


def _send_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="sample name or file (omit to list them)")
    parser.add_argument(
        "--url", default=None, help="bridge base URL (default: the local stack, BRIDGE_URL if set)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="give the event a new id (a new delivery of the same payment/order)",
    )
    parser.add_argument(
        "--print-event",
        action="store_true",
        help="print the signed API Gateway event (for sam local invoke -e)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for what became of the delivery (the local stack's delivery feed)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wait at most this long for the delivery's outcome (default: 30)",
    )


def _explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="in_..., pi_..., ch_..., cs_..., re_... or STORE:ORDER")
    _stack_name(parser)
    parser.add_argument("--json", action="store_true", help="the story as JSON")


def _forget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", help="an e-mail address or a Partnero customer key")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change, write nothing"
    )
    _stack_name(parser)
    parser.add_argument("--json", action="store_true", help="the report as JSON")


def _reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    from partnero_bridge_cli.reconcile import add_arguments

    add_arguments(parser)


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    from partnero_bridge_cli.backfill import add_arguments

    add_arguments(parser)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


# -- running each command ----------------------------------------------------------------------


def _run_stack(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.local.stack import run

    return run(args.root or _project_root(Path.cwd()), json_logs=args.json_logs)


def _run_dlq(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.dlq import run

    return _at_stack(args, "dlq") or run(args)


def _run_parked(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.parked import run

    return _at_stack(args, "parked") or run(args)


def _at_stack(args: argparse.Namespace, command: str) -> int:
    """0 once the AWS clients will reach the stack the command is for (the running local
    stack unless --stack-name or AWS_ENDPOINT_URL); 1 after saying why they cannot."""
    from partnero_bridge_cli.stack_settings import reach_local_stack

    problem = reach_local_stack(args.stack_name)
    if problem is not None:
        print(f"partnero-bridge {command}: {problem}", file=sys.stderr)
        return 1
    return 0


def _run_send(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.send import DEFAULT_WAIT_SECONDS, samples_text, send

    root = _project_root(Path.cwd())
    if not args.name:
        print(samples_text(root))
        return 0
    timeout = DEFAULT_WAIT_SECONDS if args.timeout is None else args.timeout
    wait = None if args.no_wait else timeout
    return send(root, args.name, args.url, args.fresh, args.print_event, wait_seconds=wait)


def _run_explain(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.explain import run

    return _reading_stack(args, run)


def _run_forget(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.forget import run

    return _reading_stack(args, run)


def _run_reconcile(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.reconcile import run

    return _window_refused(args) or _reading_stack(args, run)


def _run_backfill(args: argparse.Namespace) -> int:
    from partnero_bridge_cli.backfill import run

    return _window_refused(args) or _reading_stack(args, run)


def _window_refused(args: argparse.Namespace) -> int:
    """2, as for an option argparse refuses, after saying in one line why the options make
    no window; 0 when they do (checked before any stack is reached)."""
    from partnero_bridge_cli.reconcile import window_problem

    problem = window_problem(args)
    if problem is None:
        return 0
    print(f"partnero-bridge {args.command}: {problem}", file=sys.stderr)
    return 2


def _reading_stack(
    args: argparse.Namespace, run: Callable[[argparse.Namespace, Path | None], int]
) -> int:
    """A command that runs the bridge's own code against a stack: the bridge's log lines
    go to stderr (the command's output is stdout's), and it gets the checkout, if any."""
    from partnero_bridge_cli.stack_settings import bridge_logs_to_stderr

    bridge_logs_to_stderr()
    return _at_stack(args, args.command) or run(args, _checkout(Path.cwd()))


def _run_openapi(args: argparse.Namespace) -> int:
    import json

    from partnero_bridge_cli.openapi import build

    print(json.dumps(build(_project_root(Path.cwd())), indent=2))
    return 0


# -- the commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, its help and description, its options and what runs it."""

    name: str
    help: str
    description: str | None
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS = (
    Command(
        "run",
        "start the local stack (gateway, moto, pollers, Partnero sandbox)",
        "Start the local stack in the foreground. Settings come from "
        "environment variables; see docs/configuration.md.",
        _run_arguments,
        _run_stack,
    ),
    Command(
        "dlq",
        "list, replay or purge dead-lettered messages",
        "Reads each dead-letter queue until it is really empty (long polling), "
        "each message once; list leaves every message in place, replay sends each back to "
        "its work queue once (a new retry window) and then deletes it. Reaches the local "
        "stack it finds running (or AWS_ENDPOINT_URL), a deployed stack through --stack-name "
        "(queue URLs from its outputs).",
        _dlq_arguments,
        _run_dlq,
    ),
    Command(
        "parked",
        "list or replay parked Ecwid webhooks (stores that were not configured)",
        "Webhooks of Ecwid stores not in ECWID_STORE_IDS are parked, not queued. "
        "replay sends those of stores configured since to the Ecwid work queue and deletes "
        "them from the parked table. Reaches the local stack it finds running (the "
        "configured stores from the same variables as `make run`), a deployed stack through "
        "--stack-name (its outputs and the Ecwid function's ECWID_STORE_IDS).",
        _parked_arguments,
        _run_parked,
    ),
    Command(
        "send",
        "sign a sample event (events/) and post it to the bridge",
        "Like `stripe trigger`, for all three sources. NAME is a sample such as "
        "stripe/invoice.paid, ecwid/order.created or signup, or a JSON file of your own. "
        "Against the local stack it then waits for what became of the delivery and prints "
        "it (created, updated, reversed, duplicate, ignored and why, retrying, "
        "dead-lettered...). Exit status 1 when the bridge answered an error or "
        "dead-lettered the delivery.",
        _send_arguments,
        _run_send,
    ),
    Command(
        "explain",
        "tell one payment's story: deliveries, source state, decision, ledger, Partnero",
        "Reads, never writes: the deliveries the ledger kept about the payment, "
        "its state read from Stripe or Ecwid now and the decision the bridge makes from it, "
        "what the ledger says Partnero holds and what Partnero holds, and whether they agree. "
        "ID is a Stripe invoice, payment intent, charge, checkout session, refund or dispute "
        "id, or an Ecwid order as STORE:ORDER (e.g. 1003:K8XTQ). Exit status 0: they agree; "
        "2: they differ; 1: it cannot tell. Reaches the local stack it finds running, "
        "a deployed stack through --stack-name (the process function's settings).",
        _explain_arguments,
        _run_explain,
    ),
    Command(
        "forget",
        "remove or mask a person's records in the ledger (an e-mail or customer key)",
        "Deletes the customer's sign-up item, removes the customer key from "
        "identity-map items and masks e-mail addresses in the texts of commission items that "
        "name the customer (their amounts, keys and customer key are kept: the record of "
        "what Partnero holds). Identity-map and commission items are found by a full scan "
        "of the ledger table. Prints what it changed. Reaches the local stack it finds "
        "running, a deployed stack through --stack-name.",
        _forget_arguments,
        _run_forget,
    ),
    Command(
        "reconcile",
        "compare a window of Stripe payments or Ecwid orders with Partnero and the ledger",
        "Lists the payments created or touched in the window (Stripe: payments, "
        "invoices, checkout sessions, refunds, disputes, events of the last 30 days; Ecwid: "
        "orders updated or created in it, deleted orders), decides what Partnero should hold "
        "for each with the webhooks' own code, and reports the differences by kind with "
        "totals per currency: missing, wrong_amount, extra, adjustment_needed, wrong_partner, "
        "not_referred, undecidable. --apply heals only missing, wrong_amount and extra, "
        "through the work queue. Resumes an unfinished run of the same window. Exit status "
        "0: nothing to heal (or all queued); 2: some; 1: could not run. Reaches the local "
        "stack it finds running (or AWS_ENDPOINT_URL), a deployed stack through "
        "--stack-name.",
        _reconcile_arguments,
        _run_reconcile,
    ),
    Command(
        "backfill",
        "create in Partnero the past sales of a window the bridge never saw",
        "A dry run unless --apply: lists the window's sales Partnero lacks "
        "(reconcile's missing kind) with counts and money per currency and partner; --apply "
        "creates them through the work queue, backdated to their sale time, once. Refuses "
        "without --not-before when Partnero holds other transactions for those customers.",
        _backfill_arguments,
        _run_backfill,
    ),
    Command(
        "openapi", "print the OpenAPI description of the routes", None, _no_arguments, _run_openapi
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="partnero-bridge", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.arguments(
            subparsers.add_parser(command.name, help=command.help, description=command.description)
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = {command.name: command.run for command in COMMANDS}
    try:
        return runs[args.command](args)
    except BrokenPipeError:
        # The reader went away (`... | head`): not an error of the command. Point stdout at
        # devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        from partnero_bridge_cli.extras import missing_extra

        if (line := missing_extra(exc)) is None:
            raise
        print(f"partnero-bridge {args.command}: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

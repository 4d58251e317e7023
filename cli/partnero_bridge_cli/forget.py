"""``partnero-bridge forget <email | customer key>``: remove or mask a person in the ledger.

What the ledger holds about a person, and what ``forget`` does with it:

- the customer item (``customer#<key>``: sign-up status, partner, waiting sales): deleted;
- identity-map items (``stripe-customer#<id>`` whose customer key is this one): the
  customer key removed (the partner and an opt-out stay: they name no one, and the
  opt-out keeps protecting the person's choice);
- commission items naming the customer: kept as they are, amounts, keys and customer key
  included: each is the record of which Partnero customer holds which transaction, needed
  to reverse or adjust it later (the same key Partnero holds). Their readable texts
  (``detail``, the delivery history) are written back with every e-mail address masked.

The ledger is keyed by payment, not by person: identity-map and commission items are found
by a paginated Scan of the whole table (an operator's command, with the operator's AWS
credentials; processing never scans). Nothing outside the ledger is touched: Partnero
itself, the idempotency table, queues, dead-letter queues and logs keep their own retention
(see docs/explain-and-forget.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import CommissionRecord, StripeCustomerRecord
from partnero_bridge.money import money_text
from partnero_bridge.observability import mask_key

if TYPE_CHECKING:
    from partnero_bridge.ledger.store import Ledger

NOT_TOUCHED = (
    "not touched: Partnero (delete the customer there too), the idempotency table "
    "(records expire 4 days after processing), the work and dead-letter queues (messages "
    "kept up to 14 days: purge or replay them), parked Ecwid webhooks (14 days) and logs "
    "(e-mails masked; kept LogRetentionDays)"
)


class ForgetError(Exception):
    """The command cannot run (one line for the user)."""


@dataclass(frozen=True)
class Change:
    """One ledger item and what was (or, in a dry run, would be) done to it."""

    pk: str
    action: str  # deleted, customer key removed, texts masked, kept busy
    detail: str = ""

    def row(self) -> dict[str, str]:
        return {"item": mask_key(self.pk) or self.pk, "action": self.action, "detail": self.detail}


@dataclass
class ForgetReport:
    customer_key: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    scanned: int = 0

    @property
    def busy(self) -> list[Change]:
        return [c for c in self.changes if c.action.startswith("skipped")]

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_key": mask_key(self.customer_key),
            "dry_run": self.dry_run,
            "changes": [c.row() for c in self.changes],
            "scanned_items": self.scanned,
            "not_touched": NOT_TOUCHED,
        }

    def text(self) -> str:
        who = mask_key(self.customer_key)
        head = f"forget {who}" + (" (dry run: nothing written)" if self.dry_run else "")
        lines = [head]
        if not self.changes:
            lines.append("  the ledger holds nothing about this customer key")
        for change in self.changes:
            item = mask_key(change.pk) or change.pk
            lines.append(
                f"  {item}: {change.action}" + (f" ({change.detail})" if change.detail else "")
            )
        lines.append(
            f"scanned {self.scanned} ledger item(s): the ledger has no index by customer, "
            "so identity-map and commission items are found by a full table scan"
        )
        if self.busy:
            lines.append(
                f"{len(self.busy)} item(s) were being processed: run forget again to finish"
            )
        lines.append(NOT_TOUCHED)
        return "\n".join(lines) + "\n"


def forget(
    person: str, ledger: Ledger, dry_run: bool, clock: Callable[[], float] = time.time
) -> ForgetReport:
    """Remove or mask ``person`` (an e-mail or a customer key) in ``ledger``."""
    key = normalize_customer_key(person)
    if not key:
        raise ForgetError("name an e-mail address or a customer key")
    report = ForgetReport(key, dry_run)

    customer = ledger.customer(key)
    if customer is not None:
        if not dry_run:
            customer = ledger.delete_customer(key) or customer
        waiting = len(customer.not_referred_sales)
        report.changes.append(
            Change(
                keys.customer(key),
                "deleted",
                f"sign-up status {customer.status}"
                + (f", {waiting} not-referred sale(s) no longer re-checked" if waiting else ""),
            )
        )

    for item in ledger.items_naming(key):
        if isinstance(item, StripeCustomerRecord):
            done = dry_run or ledger.forget_stripe_customer_key(item.pk, key)
            kept = "partner and opt-out kept" if item.partner_key or item.opted_out else ""
            action = "customer key removed" if done else "skipped: changed meanwhile"
            report.changes.append(Change(item.pk, action, kept))
        elif isinstance(item, CommissionRecord):
            done = dry_run or ledger.mask_commission_texts(item, clock())
            figure = money_text(item.holds, item.currency or "")
            why = (
                f"customer key and amounts kept: the record of which Partnero customer holds "
                f"{item.transaction_key or 'the transaction'} (Partnero holds {figure})"
            )
            action = "texts masked" if done else "skipped: being processed"
            report.changes.append(Change(item.pk, action, why))
    report.scanned = ledger.scanned
    return report


def ledger_for(stack_name: str | None, root: Path | None, env: Mapping[str, str]) -> Ledger:
    """The ledger of a deployed stack (its LedgerTableName output) or of the local stack."""
    import boto3

    from partnero_bridge.ledger.store import Ledger

    if stack_name:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if "LedgerTableName" not in outputs:
            raise ForgetError(f"stack {stack_name} has no output LedgerTableName")
        table = outputs["LedgerTableName"]
    else:
        from partnero_bridge_cli.explain import PROCESS_FUNCTIONS
        from partnero_bridge_cli.stack_settings import local_settings

        if root is None:
            raise ForgetError("template.yaml not found: run this from a partnero-bridge checkout")
        if not env.get("AWS_ENDPOINT_URL"):
            raise ForgetError(
                "the local stack's AWS endpoint is not known: start it with `make run` "
                "(the command then finds it), or pass --stack-name for a deployed stack"
            )
        table = local_settings(root, PROCESS_FUNCTIONS["stripe"], env).ledger_table
    # The lease length does not matter here: forget never claims an item.
    return Ledger(boto3.client("dynamodb"), table, lease_seconds=150)


def run(
    args: Any,
    root: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    ledger: Ledger | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """The ``forget`` subcommand. ``args``: person, dry_run, stack_name, json. Exit status
    0 when done, 1 when it could not run or left items being processed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from partnero_bridge_cli.dlq import describe_error
    from partnero_bridge_cli.stack_settings import SettingsError

    env = os.environ if env is None else env
    try:
        ledger = ledger or ledger_for(args.stack_name, root, env)
        report = forget(args.person, ledger, args.dry_run)
    except (ForgetError, SettingsError) as exc:
        err.write(f"partnero-bridge forget: {exc}\n")
        return 1
    except (BotoCoreError, ClientError) as exc:
        err.write(f"partnero-bridge forget: {describe_error(exc, args.stack_name)}\n")
        return 1
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.write(report.text())
    return 1 if report.busy else 0

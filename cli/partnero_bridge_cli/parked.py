"""``partnero-bridge parked``: list and replay parked Ecwid webhooks.

Ingest parks a verified order webhook of a store that is not in ``ECWID_STORE_IDS`` (once
per eventId) in the parked-webhooks table instead of queueing it. Once the store is
configured (its id in ``EcwidStoreIds`` and its token in the Ecwid API secret), ``replay``
sends each of its parked webhooks to the Ecwid work queue, as the queue envelope ingest
built, and then deletes it from the table. Webhooks of stores that are still not
configured stay parked (until their retention ends).

The configured stores are read where ingest reads them: the deployed Ecwid ingest
function's ``ECWID_STORE_IDS`` (``--stack-name``), or, for the local stack, the same
environment variables ``make run`` reads (``ECWID_STORE_IDS``, else the stores of
``ECWID_STORE_TOKENS``, else the fake Ecwid's demo store).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from partnero_bridge.config import BridgeSettings
from partnero_bridge.ecwid.parking import ParkedWebhook, ParkedWebhooks
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.queues import RETRY_WINDOW_START
from partnero_bridge_cli.local.template import STACK_NAME

LOCAL_TABLE = f"{STACK_NAME}-ParkedWebhooksTable"
LOCAL_QUEUE = f"{STACK_NAME}-ecwid-order"


@dataclass(frozen=True)
class Target:
    """Where parked webhooks are, where they go, and which stores are configured."""

    table: str
    work_queue_url: str
    store_ids: frozenset[str]
    where: str  # for messages: "the local stack" or the function's name


def _store_ids(value: str) -> frozenset[str]:
    """ECWID_STORE_IDS as the function reads it (the same validation)."""
    return frozenset(BridgeSettings.from_environ({"ECWID_STORE_IDS": value}).ecwid_store_ids)


def deployed_target(stack_name: str, cloudformation: Any, lambda_client: Any) -> Target:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [
        name
        for name in (
            "ParkedWebhooksTableName",
            "EcwidOrderQueueUrl",
            "EcwidOrderIngestFunctionName",
        )
        if name not in outputs
    ]
    if missing:
        raise SystemExit(
            f"stack {stack_name} has no output {', '.join(missing)}: deploy this version first"
        )
    function = outputs["EcwidOrderIngestFunctionName"]
    configuration = lambda_client.get_function_configuration(FunctionName=function)
    variables = configuration.get("Environment", {}).get("Variables", {})
    return Target(
        table=outputs["ParkedWebhooksTableName"],
        work_queue_url=outputs["EcwidOrderQueueUrl"],
        store_ids=_store_ids(variables.get("ECWID_STORE_IDS", "")),
        where=f"function {function}",
    )


def local_target(sqs: Any, env: Mapping[str, str]) -> Target:
    from partnero_bridge_cli.local.stack import local_ecwid_store_ids

    return Target(
        table=LOCAL_TABLE,
        work_queue_url=sqs.get_queue_url(QueueName=LOCAL_QUEUE)["QueueUrl"],
        store_ids=_store_ids(local_ecwid_store_ids(env)),
        where="the local stack's environment",
    )


@dataclass
class ReplayReport:
    replayed: int = 0
    left: Counter[str] = field(default_factory=Counter)  # store id -> webhooks left parked
    unreadable: int = 0

    def text(self, where: str) -> str:
        line = f"replayed {self.replayed} parked webhook(s)"
        if self.left:
            stores = ", ".join(f"{store} ({n})" for store, n in sorted(self.left.items()))
            line += (
                f"; {sum(self.left.values())} left parked, their stores are not in "
                f"ECWID_STORE_IDS of {where}: {stores}"
            )
        if self.unreadable:
            line += f"; {self.unreadable} left parked, not a readable queue envelope"
        return line


def replay(
    parked: ParkedWebhooks, sqs: Any, target: Target, store: str | None = None
) -> ReplayReport:
    """Send each parked webhook of a configured store to the work queue, then delete it
    (send first: a crash in between replays it again, which idempotency absorbs). Each
    is sent with ``retry_window_start`` = the replay's time: a new retry window."""
    report = ReplayReport()
    replayed_at = datetime.now(UTC).isoformat()
    for webhook in parked.scan():
        if store is not None and webhook.store_id != store:
            continue
        if webhook.store_id not in target.store_ids:
            report.left[webhook.store_id] += 1
            continue
        try:
            envelope = QueueEnvelope.model_validate_json(webhook.envelope)
        except ValueError:
            report.unreadable += 1
            continue
        sqs.send_message(
            QueueUrl=target.work_queue_url,
            MessageBody=webhook.envelope,
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": Source.ECWID.value},
                "delivery_id": {"DataType": "String", "StringValue": envelope.delivery_id},
                "replayed": {"DataType": "String", "StringValue": "parked"},
                # Parked up to 14 days: the replay opens a new retry window, as a DLQ
                # replay does, or its first transient failure would be its last.
                RETRY_WINDOW_START: {"DataType": "String", "StringValue": replayed_at},
            },
        )
        parked.remove(webhook)
        report.replayed += 1
    return report


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(webhooks: list[ParkedWebhook]) -> str:
    if not webhooks:
        return "no parked webhooks"
    header = ("STORE", "EVENT ID", "EVENT TYPE", "ORDER", "EVENT CREATED", "PARKED AT")
    rows = [
        (
            w.store_id,
            w.event_id,
            w.event_type,
            w.order_id or "-",
            _time(w.event_created),
            _time(w.parked_at),
        )
        for w in webhooks
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


@dataclass(frozen=True)
class Clients:
    sqs: Any
    dynamodb: Any
    cloudformation: Callable[[], Any]
    lambda_client: Callable[[], Any]


def _boto3_clients() -> Clients:
    import boto3

    return Clients(
        sqs=boto3.client("sqs"),
        dynamodb=boto3.client("dynamodb"),
        cloudformation=lambda: boto3.client("cloudformation"),
        lambda_client=lambda: boto3.client("lambda"),
    )


def run(
    args: Any,
    out: Any = sys.stdout,
    clients: Clients | None = None,
    env: Mapping[str, str] | None = None,
    err: Any = sys.stderr,
) -> int:
    """The ``parked`` subcommand. ``args``: action (list|replay), store, stack_name, json.
    Exit status 0 when done, 1 otherwise (an AWS setup problem in one line on stderr)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from partnero_bridge_cli.dlq import describe_error

    try:
        return _run(args, out, clients, env)
    except (BotoCoreError, ClientError) as exc:
        err.write(f"partnero-bridge parked: {describe_error(exc, args.stack_name)}\n")
        return 1


def _run(args: Any, out: Any, clients: Clients | None, env: Mapping[str, str] | None) -> int:
    clients = clients or _boto3_clients()
    env = os.environ if env is None else env
    if args.stack_name:
        target = deployed_target(args.stack_name, clients.cloudformation(), clients.lambda_client())
    else:
        target = local_target(clients.sqs, env)
    parked = ParkedWebhooks(clients.dynamodb, target.table)
    store = str(args.store) if args.store else None

    if args.action == "list":
        webhooks = [w for w in parked.scan() if store is None or w.store_id == store]
        if args.json:
            out.write(json.dumps([w.row() for w in webhooks], indent=2) + "\n")
        else:
            out.write(_table(webhooks) + "\n")
        return 0

    # replay
    if store is not None and store not in target.store_ids:
        out.write(
            f"store {store} is not in ECWID_STORE_IDS of {target.where}: nothing replayed. "
            "Configure it first (EcwidStoreIds and its token in the Ecwid API secret).\n"
        )
        return 1
    report = replay(parked, clients.sqs, target, store)
    out.write(report.text(target.where) + "\n")
    return 0

"""``partnero-bridge dlq``: read, replay and purge the dead-letter queues.

Works the same against the local stack (moto, through AWS_ENDPOINT_URL) and a deployed
stack (``--stack-name``: queue URLs come from the stack's outputs). Replay receives from
the DLQ and sends to the work queue itself, because SQS's native redrive (a message move
task) is not available everywhere; idempotency and the ledger make a replay safe.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from partnero_bridge.envelope import QueueEnvelope
from partnero_bridge_cli.local.template import STACK_NAME

SOURCES = {"signup": "Signup", "ecwid": "EcwidOrder", "stripe": "StripeEvent"}
LOCAL_QUEUE_NAMES = {"signup": "signup", "ecwid": "ecwid-order", "stripe": "stripe-event"}
# Held invisible while being listed, then made visible again.
PEEK_SECONDS = 30
UNKNOWN_ERROR = "unknown: moved by SQS redrive (the invocation crashed or timed out)"


@dataclass(frozen=True)
class QueuePair:
    source: str
    work_url: str
    dead_letter_url: str


@dataclass(frozen=True)
class DeadLetter:
    source: str
    delivery_id: str
    received_at: str
    receive_count: int
    error: str
    error_kind: str
    failed_at: str
    message_id: str
    receipt_handle: str
    body: str

    def row(self) -> dict[str, Any]:
        summary = asdict(self)
        del summary["receipt_handle"], summary["body"]
        return summary


def queue_pairs(
    sqs: Any, stack_name: str | None, cloudformation: Callable[[], Any], sources: list[str]
) -> list[QueuePair]:
    if stack_name:
        stacks = cloudformation().describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return [
            QueuePair(
                s, outputs[f"{SOURCES[s]}QueueUrl"], outputs[f"{SOURCES[s]}DeadLetterQueueUrl"]
            )
            for s in sources
        ]
    pairs = []
    for source in sources:
        name = f"{STACK_NAME}-{LOCAL_QUEUE_NAMES[source]}"
        pairs.append(
            QueuePair(
                source,
                sqs.get_queue_url(QueueName=name)["QueueUrl"],
                sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"],
            )
        )
    return pairs


def _dead_letter(source: str, message: dict[str, Any]) -> DeadLetter:
    attributes = {
        k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()
    }
    body = message["Body"]
    delivery_id, received_at = attributes.get("delivery_id", "?"), "?"
    try:
        envelope = QueueEnvelope.model_validate_json(body)
        delivery_id, received_at = envelope.delivery_id, envelope.received_at.isoformat()
    except ValueError:
        pass
    sqs_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return DeadLetter(
        source=source,
        delivery_id=delivery_id,
        received_at=received_at,
        receive_count=int(attributes.get("receive_count") or 0) or sqs_count,
        error=attributes.get("error") or UNKNOWN_ERROR,
        error_kind=attributes.get("error_kind") or "unknown",
        failed_at=attributes.get("failed_at", ""),
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body,
    )


def _receive_all(sqs: Any, pair: QueuePair) -> list[DeadLetter]:
    """Every message of a DLQ, held invisible (and so ours to delete) for PEEK_SECONDS."""
    seen: dict[str, DeadLetter] = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=pair.dead_letter_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=PEEK_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return list(seen.values())
        for message in fresh:
            seen[message["MessageId"]] = _dead_letter(pair.source, message)


def _release(sqs: Any, pair: QueuePair, letters: list[DeadLetter]) -> None:
    """Make messages visible again at once (they stay in the DLQ)."""
    for start in range(0, len(letters), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=pair.dead_letter_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": d.receipt_handle, "VisibilityTimeout": 0}
                for i, d in enumerate(letters[start : start + 10])
            ],
        )


def peek(sqs: Any, pair: QueuePair) -> list[DeadLetter]:
    """Every message of a DLQ, without consuming any of them."""
    letters = _receive_all(sqs, pair)
    _release(sqs, pair, letters)
    return letters


def _matches(letter: DeadLetter, wanted: str | None) -> bool:
    return wanted is None or wanted in (letter.delivery_id, letter.message_id)


def _take(sqs: Any, pair: QueuePair, wanted: str | None) -> list[DeadLetter]:
    letters = _receive_all(sqs, pair)
    _release(sqs, pair, [d for d in letters if not _matches(d, wanted)])
    return [d for d in letters if _matches(d, wanted)]


def replay(sqs: Any, pair: QueuePair, wanted: str | None) -> int:
    """Move messages back to the work queue: send first, then delete (never lose one)."""
    taken = _take(sqs, pair, wanted)
    for letter in taken:
        sqs.send_message(
            QueueUrl=pair.work_url,
            MessageBody=letter.body,
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": pair.source},
                "delivery_id": {"DataType": "String", "StringValue": letter.delivery_id},
                "replayed": {"DataType": "String", "StringValue": "true"},
            },
        )
        sqs.delete_message(QueueUrl=pair.dead_letter_url, ReceiptHandle=letter.receipt_handle)
    return len(taken)


def purge(sqs: Any, pair: QueuePair, wanted: str | None) -> int:
    taken = _take(sqs, pair, wanted)
    for letter in taken:
        sqs.delete_message(QueueUrl=pair.dead_letter_url, ReceiptHandle=letter.receipt_handle)
    return len(taken)


def _table(letters: list[DeadLetter]) -> str:
    if not letters:
        return "no dead-lettered messages"
    header = ("SOURCE", "DELIVERY ID", "RECEIVED AT", "RECEIVES", "KIND", "LAST ERROR")
    rows = [
        (
            d.source,
            d.delivery_id,
            d.received_at[:19],
            str(d.receive_count),
            d.error_kind,
            d.error[:80],
        )
        for d in letters
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def run(args: Any, out: Any = sys.stdout, ask: Callable[[str], str] = input) -> int:
    import boto3

    sqs = boto3.client("sqs")
    sources = [args.source] if args.source else list(SOURCES)
    pairs = queue_pairs(sqs, args.stack_name, lambda: boto3.client("cloudformation"), sources)
    if args.action == "list":
        letters = [d for pair in pairs for d in peek(sqs, pair)]
        if args.json:
            out.write(json.dumps([d.row() for d in letters], indent=2) + "\n")
        else:
            out.write(_table(letters) + "\n")
        return 0
    if args.action == "replay":
        moved = {pair.source: replay(sqs, pair, args.id) for pair in pairs}
        out.write(
            f"replayed {sum(moved.values())} message(s): "
            + ", ".join(f"{s} {n}" for s, n in moved.items())
            + "\n"
        )
        return 0
    # purge
    doomed = [d for pair in pairs for d in peek(sqs, pair) if _matches(d, args.id)]
    if not doomed:
        out.write("nothing to purge\n")
        return 0
    if not args.yes:
        answer = ask(f"Delete {len(doomed)} dead-lettered message(s) for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out.write("nothing deleted\n")
            return 1
    removed = sum(purge(sqs, pair, args.id) for pair in pairs)
    out.write(f"deleted {removed} message(s)\n")
    return 0

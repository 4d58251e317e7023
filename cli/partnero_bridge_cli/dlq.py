"""``partnero-bridge dlq``: read, replay and purge the dead-letter queues, of any size.

Works the same against the local stack (moto, through AWS_ENDPOINT_URL) and a deployed
stack (``--stack-name``: queue URLs come from the stack's outputs). Replay receives from
the DLQ and sends to the work queue itself, because SQS's native redrive (a message move
task) is not available everywhere and cannot add the ``retry_window_start`` attribute;
idempotency and the ledger make a replay safe.

Each command reads a DLQ with :class:`~partnero_bridge_cli.queue_scan.QueueScan`: long
polling until the queue is really empty, each message held invisible (and its hold
extended) until the command is done with it, the newest receipt handle always used. So a
listing shows each message once and hides none afterwards, and a replay sends each once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from partnero_bridge.envelope import QueueEnvelope
from partnero_bridge.queues import RETRY_WINDOW_START
from partnero_bridge_cli.local.template import STACK_NAME
from partnero_bridge_cli.queue_scan import (
    MAX_VISIBILITY_SECONDS,
    EntryFailure,
    Pace,
    Polling,
    QueueScan,
    visible_count,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
        SendMessageBatchResultTypeDef,
    )

SOURCES = {"signup": "Signup", "ecwid": "EcwidOrder", "stripe": "StripeEvent"}
LOCAL_QUEUE_NAMES = {"signup": "signup", "ecwid": "ecwid-order", "stripe": "stripe-event"}
UNKNOWN_ERROR = "unknown: moved by SQS redrive (the invocation crashed or timed out)"
# Messages a second a replay sends by default: a replay of thousands must not arrive at
# Partnero (through the processing functions) as one burst.
DEFAULT_RATE = 50.0
# Bytes a SendMessageBatch may carry in all (bodies and attributes): SQS's limit for a
# queue whose MaximumMessageSize is the former 256 KiB default.
MAX_BATCH_BYTES = 262_144
# Tries of a send entry SQS refused on its side (SenderFault false).
SEND_TRIES = 3
# Rows of a report printed in full; the rest are counted.
REPORT_ROWS = 50
NONEXISTENT_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
BATCH_TOO_LONG = ("AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong")


class CommandError(Exception):
    """A failure the command reports as one line (no traceback)."""


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
    # The retry window the failed attempt was in (ISO-8601 UTC), "" when not recorded.
    retry_window_start: str
    message_id: str
    body: str

    def row(self) -> dict[str, Any]:
        summary = asdict(self)
        del summary["body"]
        return summary

    @property
    def delivery_key(self) -> str:
        """What makes two dead letters the same delivery: its id, else the body itself (a
        body that is no envelope is dead-lettered again with a new message id)."""
        if self.delivery_id not in ("?", "-", ""):
            return self.delivery_id
        return "body:" + hashlib.sha256(self.body.encode()).hexdigest()

    def window_started(self) -> datetime | None:
        """``retry_window_start`` as a time, None when absent or unreadable."""
        try:
            start = datetime.fromisoformat(self.retry_window_start)
        except ValueError:
            return None
        return start if start.tzinfo else start.replace(tzinfo=UTC)


@dataclass
class Listing:
    source: str
    letters: list[DeadLetter]
    unreached: int = 0
    not_released: int = 0


@dataclass
class ReplayReport:
    """What one DLQ's replay did. ``failed``: SQS refused the send (left in the DLQ);
    ``not_deleted``: sent, but SQS refused to delete it from the DLQ (hidden there as long
    as SQS allows, so a rerun does not send it again); ``again``: a delivery this run
    already replayed, dead-lettered again meanwhile (left in the DLQ)."""

    source: str
    replayed: int = 0
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    not_deleted: list[tuple[DeadLetter, str]] = field(default_factory=list)
    again: list[DeadLetter] = field(default_factory=list)
    unreached: int = 0
    not_released: int = 0
    error: BotoCoreError | ClientError | None = None

    @property
    def clean(self) -> bool:
        return not (self.failed or self.not_deleted or self.again or self.unreached or self.error)


@dataclass
class PurgeReport:
    source: str
    deleted: int = 0
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    unreached: int = 0
    not_released: int = 0


@dataclass(frozen=True)
class Tools:
    """What the command runs with; tests replace the clock, sleep and polling."""

    polling: Polling = field(default_factory=Polling)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


# -- queues ---------------------------------------------------------------------------------


def queue_pairs(
    sqs: SQSClient, stack_name: str | None, cloudformation: Callable[[], Any], sources: list[str]
) -> list[QueuePair]:
    """The work queue and DLQ of each source: from a deployed stack's outputs, or by the
    local stack's queue names."""
    if stack_name:
        stacks = cloudformation().describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        pairs = []
        for source in sources:
            names = (f"{SOURCES[source]}QueueUrl", f"{SOURCES[source]}DeadLetterQueueUrl")
            missing = [name for name in names if name not in outputs]
            if missing:
                raise CommandError(
                    f"stack {stack_name} has no output {missing[0]}: is it a partnero-bridge stack?"
                )
            pairs.append(QueuePair(source, outputs[names[0]], outputs[names[1]]))
        return pairs
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


def _dead_letter(source: str, message: MessageTypeDef) -> DeadLetter:
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
        retry_window_start=attributes.get(RETRY_WINDOW_START, ""),
        message_id=message["MessageId"],
        body=body,
    )


def _matches(letter: DeadLetter, wanted: str | None) -> bool:
    return wanted is None or wanted in (letter.delivery_id, letter.message_id)


def _reason(failure: EntryFailure) -> str:
    return f"{failure.code}: {failure.message}" if failure.message else failure.code


# -- progress -------------------------------------------------------------------------------


class Task:
    """Progress of one DLQ: ``expect`` its size, ``advance`` as messages are handled."""

    def expect(self, total: int) -> None:
        """SQS's count of the queue's visible messages when the command started."""

    def advance(self, count: int) -> None:
        """``count`` more messages handled."""


NO_PROGRESS = Task()


class _BarTask(Task):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._total = 0
        self._done = 0

    def expect(self, total: int) -> None:
        self._total = total
        self._progress.update(self._task, total=max(total, self._done) or None)

    def advance(self, count: int) -> None:
        # SQS's count is approximate: the bar grows if the queue holds more.
        self._done += count
        self._total = max(self._total, self._done)
        self._progress.update(self._task, total=self._total or None, completed=self._done)

    def finish(self) -> None:
        self._progress.update(self._task, total=self._done, completed=self._done)


class Meter:
    """Progress bars on stderr (rich), one per DLQ; draws nothing when off."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    @contextmanager
    def task(self, description: str) -> Iterator[Task]:
        task = _BarTask(self._progress, self._progress.add_task(description, total=None))
        try:
            yield task
        finally:
            task.finish()


@contextmanager
def meter(err: TextIO, enabled: bool) -> Iterator[Meter]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=err),
        disable=not enabled,
    )
    with progress:
        yield Meter(progress)


def _scan(sqs: SQSClient, pair: QueuePair, tools: Tools, task: Task) -> QueueScan:
    expected = visible_count(sqs, pair.dead_letter_url)
    task.expect(expected)
    return QueueScan(sqs, pair.dead_letter_url, tools.polling, tools.clock, expected)


# -- list -----------------------------------------------------------------------------------


def peek(
    sqs: SQSClient,
    pair: QueuePair,
    tools: Tools = Tools(),
    task: Task = NO_PROGRESS,
) -> Listing:
    """Every message of a DLQ, each once, without consuming any: all are held invisible
    while the scan runs (so none is received twice) and made visible again at the end."""
    scan = _scan(sqs, pair, tools, task)
    letters: dict[str, DeadLetter] = {}
    listing = Listing(pair.source, [])
    try:
        for batch in scan.batches():
            fresh = 0
            for message in batch:
                fresh += message["MessageId"] not in letters
                # A message received again keeps its place in the listing.
                letters[message["MessageId"]] = _dead_letter(pair.source, message)
            task.advance(fresh)
    finally:
        listing.not_released = len(scan.release())
    listing.letters = list(letters.values())
    listing.unreached = scan.unreached
    return listing


# -- replay ---------------------------------------------------------------------------------


def _replay_attributes(
    source: str, letter: DeadLetter, window_start: str
) -> dict[str, MessageAttributeValueTypeDef]:
    """The attributes processing reads, plus a new retry window starting now."""
    return {
        "source": {"DataType": "String", "StringValue": source},
        "delivery_id": {"DataType": "String", "StringValue": letter.delivery_id},
        RETRY_WINDOW_START: {"DataType": "String", "StringValue": window_start},
        "replayed": {"DataType": "String", "StringValue": "true"},
    }


def _size(letter: DeadLetter) -> int:
    # Body plus a generous allowance for the four attributes' names, types and values.
    return len(letter.body.encode()) + 512


def send_groups(letters: Sequence[DeadLetter], most: int) -> Iterator[list[DeadLetter]]:
    """Letters in SendMessageBatch calls of at most ``most`` entries and MAX_BATCH_BYTES
    (a single larger message goes alone, for SQS to accept or refuse)."""
    group: list[DeadLetter] = []
    size = 0
    for letter in letters:
        if group and (len(group) >= most or size + _size(letter) > MAX_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(letter)
        size += _size(letter)
    if group:
        yield group


def _send(
    sqs: SQSClient, pair: QueuePair, group: Sequence[DeadLetter]
) -> tuple[list[DeadLetter], list[tuple[DeadLetter, str]]]:
    """Send a group to the work queue; returns what SQS took and what it refused (why).
    Entries refused on SQS's side are tried again; a letter SQS neither took nor refused
    counts as refused, so it stays in the DLQ (never lost)."""
    sent: list[DeadLetter] = []
    pending = list(group)
    refused: dict[str, tuple[DeadLetter, str]] = {}
    for _attempt in range(SEND_TRIES):
        if not pending:
            break
        try:
            answer = _send_batch(sqs, pair, pending)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") not in BATCH_TOO_LONG:
                raise
            reason = f"{error.get('Code')}: {error.get('Message', '')}"
            return sent, [*refused.values(), *((letter, reason) for letter in pending)]
        pending = _sort_answer(answer, pending, sent, refused)
    return sent, list(refused.values())


def _send_batch(
    sqs: SQSClient, pair: QueuePair, letters: Sequence[DeadLetter]
) -> SendMessageBatchResultTypeDef:
    """One SendMessageBatch of ``letters`` (entry ids are their indexes), in a new retry
    window starting now."""
    window_start = datetime.now(UTC).isoformat()
    entries: list[SendMessageBatchRequestEntryTypeDef] = [
        {
            "Id": str(index),
            "MessageBody": letter.body,
            "MessageAttributes": _replay_attributes(pair.source, letter, window_start),
        }
        for index, letter in enumerate(letters)
    ]
    return sqs.send_message_batch(QueueUrl=pair.work_url, Entries=entries)


def _sort_answer(
    answer: SendMessageBatchResultTypeDef,
    pending: Sequence[DeadLetter],
    sent: list[DeadLetter],
    refused: dict[str, tuple[DeadLetter, str]],
) -> list[DeadLetter]:
    """Add what SQS took to ``sent`` and what it refused (why) to ``refused``; returns the
    letters worth sending again (refused on SQS's side, not the sender's)."""
    took = {entry["Id"] for entry in answer.get("Successful", [])}
    failed = {f["Id"]: f for f in answer.get("Failed", [])}
    retry: list[DeadLetter] = []
    for index, letter in enumerate(pending):
        if str(index) in took:
            sent.append(letter)
            refused.pop(letter.message_id, None)
            continue
        failure = failed.get(str(index))
        if failure is None:
            refused[letter.message_id] = (letter, "SQS did not answer for this entry")
            continue
        refused[letter.message_id] = (letter, f"{failure['Code']}: {failure.get('Message', '')}")
        if not failure["SenderFault"]:
            retry.append(letter)
    return retry


def replay(
    sqs: SQSClient,
    pair: QueuePair,
    wanted: str | None,
    tools: Tools = Tools(),
    rate: float = DEFAULT_RATE,
    task: Task = NO_PROGRESS,
) -> ReplayReport:
    """Move dead letters back to the work queue, each exactly once, at most ``rate`` a
    second: send first, delete from the DLQ only after SQS took the send.

    A message whose delete SQS refuses is deleted again (with its newest handle if the
    scan receives it again), never sent twice in one run; one still not deleted at the
    end is hidden in the DLQ as long as SQS allows (up to 12 hours after its receive) and
    reported, so a rerun does not send it again. Messages left in the DLQ (not matching
    ``wanted``, refused, or dead-lettered again) are made visible again at the end. An
    AWS failure stops the replay (``report.error``) after the same clean-up.
    """
    return _Replay(sqs, pair, wanted, _scan(sqs, pair, tools, task), tools, rate, task).run()


class _Replay:
    """One DLQ's replay (see :func:`replay`): what it sent, deleted and kept so far."""

    def __init__(
        self,
        sqs: SQSClient,
        pair: QueuePair,
        wanted: str | None,
        scan: QueueScan,
        tools: Tools,
        rate: float,
        task: Task,
    ) -> None:
        self.sqs, self.pair, self.wanted, self.scan, self.task = sqs, pair, wanted, scan, task
        self.report = ReplayReport(pair.source)
        self.started = datetime.now(UTC)
        self.pace = Pace(rate, tools.clock, tools.sleep)
        self.sent: dict[str, DeadLetter] = {}  # on the work queue, not yet deleted from the DLQ
        self.done: set[str] = set()  # message ids sent and deleted
        self.refusals: dict[str, str] = {}  # why SQS refused to delete a sent message
        self.replayed: set[str] = set()  # delivery keys sent in this run
        self.kept: set[str] = set()  # message ids left in the DLQ

    def run(self) -> ReplayReport:
        try:
            for batch in self.scan.batches():
                to_send = self._to_send(batch)
                for group in send_groups(to_send, self.pace.batch_size()):
                    self._send_group(group)
                    self._delete_sent()  # at once: the shorter the gap, the less a crash doubles
                if not to_send:
                    self._delete_sent()  # any whose delete SQS refused before, out again
        except (BotoCoreError, ClientError) as exc:
            self.report.error = exc
        finally:
            _settle(self.scan, self.sent, self.refusals, self.report)
        self.report.unreached = self.scan.unreached
        return self.report

    def _to_send(self, batch: Sequence[MessageTypeDef]) -> list[DeadLetter]:
        """The letters of a receive to send now; the others are kept or already handled."""
        to_send: list[DeadLetter] = []
        decided = 0
        for message in batch:
            letter = _dead_letter(self.pair.source, message)
            verdict = self._verdict(letter)
            if verdict == "send":
                to_send.append(letter)
            elif verdict == "keep":
                self.kept.add(letter.message_id)
                decided += 1
        self.task.advance(decided)
        return to_send

    def _verdict(self, letter: DeadLetter) -> Literal["send", "keep", "handled"]:
        message_id = letter.message_id
        if message_id in self.done:
            # SQS answers a delete with an outdated handle with success without deleting:
            # delete it again with this newest handle, never resend.
            self.sent[message_id] = letter
            return "handled"
        if message_id in self.sent or message_id in self.kept:
            # Received again (before its delete went through, or its hold lapsed): never
            # resent, already counted.
            return "handled"
        if not _matches(letter, self.wanted):
            return "keep"
        if _dead_lettered_again(letter, self.started, self.replayed):
            self.report.again.append(letter)
            return "keep"
        return "send"

    def _send_group(self, group: list[DeadLetter]) -> None:
        self.pace.take(len(group), idle=self.scan.keep_alive)
        took, refused = _send(self.sqs, self.pair, group)
        for letter in took:
            self.sent[letter.message_id] = letter
            self.replayed.add(letter.delivery_key)
        for letter, reason in refused:
            self.report.failed.append((letter, reason))
            self.kept.add(letter.message_id)
        self.report.replayed += len(took)
        self.task.advance(len(group))

    def _delete_sent(self) -> None:
        pending = [message_id for message_id in self.sent if message_id in self.scan]
        failures = self.scan.delete(pending)
        for failure in failures:
            self.refusals[failure.message_id] = _reason(failure)
            if failure.sender_fault:
                # The handle no longer holds the message: it is deleted with its new
                # handle if the scan receives it again.
                self.scan.forget([failure.message_id])
        refused = {failure.message_id for failure in failures}
        for message_id in pending:
            if message_id not in refused:
                del self.sent[message_id]
                self.done.add(message_id)
                self.refusals.pop(message_id, None)


def _dead_lettered_again(letter: DeadLetter, started: datetime, replayed: set[str]) -> bool:
    """Whether ``letter`` is a delivery this replay sent, dead-lettered again meanwhile.

    Processing keeps a message's ``retry_window_start`` on its dead letter, and this run
    set it to times after ``started`` (both from this machine's clock, so no skew). A
    dead letter without one (a body that is no envelope, or from an older bridge) counts
    as again when this run already sent its delivery: never one delivery twice a run.
    """
    window = letter.window_started()
    if window is not None:
        return window >= started
    return letter.delivery_key in replayed


def _settle(
    scan: QueueScan, sent: dict[str, DeadLetter], refusals: dict[str, str], report: ReplayReport
) -> None:
    """End a replay: a last delete of what was sent and is still in the DLQ; what SQS
    still refuses to delete is hidden as long as it allows; all else held is made
    visible again. Runs after an error too, so it reports rather than raises."""
    try:
        held = [message_id for message_id in sent if message_id in scan]
        for failure in scan.delete(held):
            refusals[failure.message_id] = _reason(failure)
        for message_id in held:
            if message_id not in scan:
                del sent[message_id]  # deleted now
        stuck = [message_id for message_id in sent if message_id in scan]
        scan.change_visibility(stuck, MAX_VISIBILITY_SECONDS)
        scan.forget(stuck)
        report.not_released = len(scan.release())
    except (BotoCoreError, ClientError) as exc:
        report.error = report.error or exc
    report.not_deleted = [
        (letter, refusals.get(message_id, "not deleted before the replay stopped"))
        for message_id, letter in sent.items()
    ]


# -- purge ----------------------------------------------------------------------------------


def purge(
    sqs: SQSClient,
    pair: QueuePair,
    wanted: str | None,
    tools: Tools = Tools(),
    task: Task = NO_PROGRESS,
) -> PurgeReport:
    """Delete dead letters for good (those matching ``wanted``, or all)."""
    report = PurgeReport(pair.source)
    scan = _scan(sqs, pair, tools, task)
    handled: set[str] = set()
    try:
        for batch in scan.batches():
            letters = {
                m["MessageId"]: _dead_letter(pair.source, m)
                for m in batch
                if m["MessageId"] not in handled
            }
            doomed = [
                message_id for message_id, letter in letters.items() if _matches(letter, wanted)
            ]
            handled.update(letters)
            refused = scan.delete(doomed)
            report.deleted += len(doomed) - len(refused)
            report.failed += [(letters[f.message_id], _reason(f)) for f in refused]
            scan.forget(f.message_id for f in refused)
            task.advance(len(letters))
    finally:
        report.not_released = len(scan.release())
    report.unreached = scan.unreached
    return report


# -- output ---------------------------------------------------------------------------------


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


def _rows(out: TextIO, title: str, rows: Sequence[tuple[DeadLetter, str]]) -> None:
    if not rows:
        return
    out.write(f"{title}: {len(rows)} message(s)\n")
    for letter, reason in rows[:REPORT_ROWS]:
        out.write(f"  {letter.source}  {letter.delivery_id}  {reason[:200]}\n")
    if len(rows) > REPORT_ROWS:
        out.write(f"  ... and {len(rows) - REPORT_ROWS} more\n")


def _by_source(counts: dict[str, int]) -> str:
    return ", ".join(f"{source} {count}" for source, count in counts.items())


def _unreached_line(source: str, count: int) -> str:
    return (
        f"{source}: SQS still counts about {count} visible message(s) that no receive "
        "returned (its counts lag up to a minute, or about 120,000 messages are held in "
        "flight); run the command again"
    )


def _not_released_line(count: int) -> str:
    return (
        f"{count} message(s) could not be made visible again at once; "
        "they reappear when their hold lapses"
    )


# -- the command ----------------------------------------------------------------------------


def describe_error(exc: BaseException, stack_name: str | None) -> str:
    """One line for an AWS failure: what is wrong and what to do."""
    # Only a deployed stack gets here without these: the local stack's are set for it.
    local_hint = "the local stack needs none: run it with `make run`, leave out --stack-name"
    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, NoRegionError):
        return (
            "no AWS region: set AWS_REGION to the stack's region (or AWS_DEFAULT_REGION, or "
            f"a profile's region; {local_hint})"
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE or the access keys of the stack's account "
            f"({local_hint})"
        )
    if isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "AWS")
        if os.environ.get("AWS_ENDPOINT_URL"):
            return f"cannot reach {endpoint}: is the local stack running (`make run`)?"
        return f"cannot reach {endpoint}: check the network and AWS_REGION"
    if isinstance(exc, ClientError):
        return _refusal(exc, stack_name)
    return f"AWS error: {exc}"


def _refusal(exc: ClientError, stack_name: str | None) -> str:
    """One line for a call AWS answered with an error."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    if code in NONEXISTENT_QUEUE:
        if stack_name:
            return f"a queue of stack {stack_name} does not exist: {message}"
        return _no_local_queues()
    if code == "ValidationError" and stack_name and "does not exist" in message:
        return f"stack {stack_name} not found: check --stack-name and AWS_REGION"
    return f"AWS refused {exc.operation_name}: {code}: {message}"


def _no_local_queues() -> str:
    """The local stack's queues are not where this process looks: the endpoint (and region)
    of AWS_ENDPOINT_URL, the user's own or the one the running stack told."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "no region"
    return (
        f"the local stack's queues are not at {endpoint} ({region}): a wrong endpoint or "
        "region; unset AWS_ENDPOINT_URL to let the command find the running local stack "
        "(`make run` starts it), or pass --stack-name for a deployed stack"
    )


def run(
    args: Any,
    out: TextIO = sys.stdout,
    ask: Callable[[str], str] = input,
    *,
    err: TextIO = sys.stderr,
    sqs: SQSClient | None = None,
    tools: Tools = Tools(),
) -> int:
    """The ``dlq`` subcommand. ``args``: action (list|replay|purge), source, id,
    stack_name, json, yes, rate (messages a second, 0 = no limit), quiet. Exit status 0
    when everything asked was done, 1 otherwise (the reason on stderr, one line)."""
    try:
        return _run(args, out, ask, err, sqs, tools)
    except (CommandError, BotoCoreError, ClientError) as exc:
        err.write(f"partnero-bridge dlq: {describe_error(exc, args.stack_name)}\n")
        return 1
    except KeyboardInterrupt:
        err.write("partnero-bridge dlq: interrupted; held messages were made visible again\n")
        return 130


@dataclass(frozen=True)
class _Command:
    """What every action of the command runs with."""

    args: Any
    out: TextIO
    err: TextIO
    sqs: SQSClient
    pairs: list[QueuePair]
    tools: Tools

    @property
    def quiet(self) -> bool:
        return bool(getattr(self.args, "quiet", False))

    def meter(self) -> AbstractContextManager[Meter]:
        """Progress bars, only on a terminal and never with --quiet."""
        return meter(self.err, not self.quiet and self.err.isatty())

    def warn(self, listing: Listing | ReplayReport | PurgeReport) -> None:
        """The stderr lines about what a scan could not make visible again or reach."""
        if listing.not_released:
            self.err.write(_not_released_line(listing.not_released) + "\n")
        if listing.unreached:
            self.err.write(_unreached_line(listing.source, listing.unreached) + "\n")

    def peek_all(self, verb: str) -> list[Listing]:
        listings = []
        with self.meter() as bar:
            for pair in self.pairs:
                with bar.task(f"{verb} {pair.source}") as task:
                    listings.append(peek(self.sqs, pair, self.tools, task))
        return listings


def _run(
    args: Any,
    out: TextIO,
    ask: Callable[[str], str],
    err: TextIO,
    sqs: SQSClient | None,
    tools: Tools,
) -> int:
    import boto3

    if sqs is None:
        sqs = boto3.client("sqs")
    sources = [args.source] if args.source else list(SOURCES)
    pairs = queue_pairs(sqs, args.stack_name, lambda: boto3.client("cloudformation"), sources)
    command = _Command(args, out, err, sqs, pairs, tools)
    if args.action == "list":
        return _list(command)
    if args.action == "replay":
        return _replay(command)
    return _purge(command, ask)


def _list(command: _Command) -> int:
    listings = command.peek_all("list")
    letters = [d for listing in listings for d in listing.letters]
    if command.args.json:
        command.out.write(json.dumps([d.row() for d in letters], indent=2) + "\n")
    else:
        command.out.write(_table(letters) + "\n")
    if not command.quiet:
        counts = {listing.source: len(listing.letters) for listing in listings}
        command.err.write(f"listed {len(letters)} message(s): {_by_source(counts)}\n")
    for listing in listings:
        command.warn(listing)
    return 1 if any(listing.unreached for listing in listings) else 0


def _replay(command: _Command) -> int:
    rate = float(getattr(command.args, "rate", DEFAULT_RATE))
    reports: list[ReplayReport] = []
    with command.meter() as bar:
        for pair in command.pairs:
            with bar.task(f"replay {pair.source}") as task:
                reports.append(
                    replay(command.sqs, pair, command.args.id, command.tools, rate, task)
                )
            if reports[-1].error is not None:
                break  # AWS refused: the other sources would fail the same way
    _replay_summary(command.out, reports)
    for report in reports:
        command.warn(report)
        if report.error is not None:
            command.err.write(
                f"partnero-bridge dlq: {describe_error(report.error, command.args.stack_name)}\n"
            )
    return 0 if all(r.clean for r in reports) else 1


def _replay_summary(out: TextIO, reports: Sequence[ReplayReport]) -> None:
    total = sum(r.replayed for r in reports)
    out.write(
        f"replayed {total} message(s): "
        + _by_source({r.source: r.replayed for r in reports})
        + "\n"
    )
    _rows(out, "not replayed (SQS refused the send), left in the DLQ", _all(reports, "failed"))
    _rows(
        out,
        "replayed, but SQS refused to delete them from the DLQ (hidden there for up to "
        "12 hours so a rerun does not send them again; delete each with "
        "`partnero-bridge dlq purge --id <delivery id>`)",
        _all(reports, "not_deleted"),
    )
    _rows(
        out,
        "dead-lettered again while replaying (the cause is not fixed), left in the DLQ",
        [(letter, letter.error) for r in reports for letter in r.again],
    )


def _purge(command: _Command, ask: Callable[[str], str]) -> int:
    listings = command.peek_all("count")
    wanted = command.args.id
    doomed = [d for listing in listings for d in listing.letters if _matches(d, wanted)]
    if not doomed:
        command.out.write("nothing to purge\n")
        return 0
    if not command.args.yes:
        answer = ask(f"Delete {len(doomed)} dead-lettered message(s) for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            command.out.write("nothing deleted\n")
            return 1
    purged: list[PurgeReport] = []
    with command.meter() as bar:
        for pair in command.pairs:
            with bar.task(f"purge {pair.source}") as task:
                purged.append(purge(command.sqs, pair, wanted, command.tools, task))
    command.out.write(f"deleted {sum(p.deleted for p in purged)} message(s)\n")
    failed = [f for p in purged for f in p.failed]
    _rows(command.out, "not deleted (SQS refused), left in the DLQ", failed)
    for report in purged:
        command.warn(report)
    return 0 if not any(p.failed or p.unreached for p in purged) else 1


def _all(reports: Sequence[ReplayReport], name: str) -> list[tuple[DeadLetter, str]]:
    return [row for report in reports for row in getattr(report, name)]

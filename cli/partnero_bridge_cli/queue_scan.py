"""Reading a whole SQS queue, each message once, for ``partnero-bridge dlq``.

SQS has no snapshot of a queue: a receive returns some of the visible messages and hides
them for its ``VisibilityTimeout``. So a scan holds every message it has received
invisible until it is done with it (deleted, or made visible again at the end), extends
that hold while the scan is still running, and stops only when long polls (which ask
every SQS server, unlike short polls) come back empty and SQS counts no visible message.

A message received again (its hold lapsed) comes back with the same ``MessageId`` and a
new receipt handle; SQS accepts only the newest handle, so that is the one kept.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from partnero_bridge.queues import MAX_VISIBILITY_SECONDS as MAX_VISIBILITY_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        BatchResultErrorEntryTypeDef,
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
    )

# SQS limits: 10 entries a batch call; a message stays invisible at most 12 hours after
# the receive that returned it.
BATCH_ENTRIES = 10
# Kept free below the 12-hour limit so an extension is never refused for being too long.
VISIBILITY_SLACK_SECONDS = 60
# A first guess at how long a scan takes per message (receive, then send or release), so
# the first hold already covers the whole scan of a large queue; extensions cover the rest.
SECONDS_PER_MESSAGE = 0.02


@dataclass(frozen=True)
class Polling:
    """How a scan reads a queue.

    ``wait_seconds``: ReceiveMessage ``WaitTimeSeconds`` (1-20 is long polling; 0, short
    polling, only suits an emulator that always answers from every message). A scan ends
    after ``empty_polls`` consecutive empty receives once SQS's
    ``ApproximateNumberOfMessages`` is 0 too; while SQS still counts visible messages it
    keeps polling for up to ``settle_seconds`` (the count lags changes by up to about a
    minute; or the ~120,000 in-flight limit stops receives). ``hold_seconds`` is the
    shortest visibility timeout a held message gets.
    """

    wait_seconds: int = 1
    empty_polls: int = 3
    settle_seconds: float = 60.0
    hold_seconds: int = 120


@dataclass
class _Hold:
    receipt_handle: str
    deadline: float  # clock() by which SQS may make the message visible again
    received: float  # clock() of the receive that gave this handle (the 12-hour limit)


@dataclass(frozen=True)
class EntryFailure:
    """One entry a batch call refused: SQS's code and message."""

    message_id: str
    code: str
    message: str
    sender_fault: bool


def chunks[T](items: Sequence[T], size: int = BATCH_ENTRIES) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def queue_counts(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """SQS's counts of a queue's messages, (visible, held in flight); approximate, they
    lag changes by up to about a minute."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", "0")),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
    )


def visible_count(sqs: SQSClient, queue_url: str) -> int:
    """SQS's ApproximateNumberOfMessages: visible messages (lags changes by up to a minute)."""
    return queue_counts(sqs, queue_url)[0]


def entry_failures(
    failed: Iterable[BatchResultErrorEntryTypeDef], ids: Sequence[str]
) -> list[EntryFailure]:
    """The ``Failed`` entries of a batch answer, by message id (entry ids are indexes)."""
    return [
        EntryFailure(ids[int(f["Id"])], f["Code"], f.get("Message", ""), f["SenderFault"])
        for f in failed
    ]


class QueueScan:
    """Every message of one queue, received once each and held invisible until settled.

    ``batches()`` yields the messages as they are received; each stays held (invisible,
    its hold extended by ``keep_alive()``) until the caller deletes it (``forget``), or
    ``release()`` makes it visible again. ``unreached`` is how many messages SQS still
    counted visible when the scan gave up waiting for them (0 after a complete scan).
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        polling: Polling,
        clock: Callable[[], float] = time.monotonic,
        expected: int = 0,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._polling = polling
        self._clock = clock
        self._started = clock()
        self._base_hold = max(polling.hold_seconds, math.ceil(expected * SECONDS_PER_MESSAGE))
        # In deadline order: receives and extensions only ever push deadlines later, so
        # the messages due for an extension are always at the front.
        self._held: OrderedDict[str, _Hold] = OrderedDict()
        self.unreached = 0

    # -- what is held ---------------------------------------------------------------------
    def __contains__(self, message_id: object) -> bool:
        return message_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    def receipt_handle(self, message_id: str) -> str:
        """The newest receipt handle of a held message (the only one SQS still accepts)."""
        return self._held[message_id].receipt_handle

    def held_ids(self) -> list[str]:
        return list(self._held)

    def forget(self, message_ids: Iterable[str]) -> None:
        """Stop holding messages that are gone (deleted)."""
        for message_id in message_ids:
            self._held.pop(message_id, None)

    # -- receiving ------------------------------------------------------------------------
    def hold_seconds(self) -> int:
        """The visibility timeout for a receive or an extension now: at least the base
        hold, and twice the time the scan has run so far (so a long scan needs few
        extension rounds), at most SQS's maximum."""
        elapsed = self._clock() - self._started
        return int(min(MAX_VISIBILITY_SECONDS, max(self._base_hold, math.ceil(2 * elapsed))))

    def receive(self) -> list[MessageTypeDef]:
        """One long-polled receive of up to 10 messages, each then held by this scan."""
        self.keep_alive()
        timeout = self.hold_seconds()
        before = self._clock()
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH_ENTRIES,
            WaitTimeSeconds=self._polling.wait_seconds,
            VisibilityTimeout=timeout,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for message in messages:
            message_id = message["MessageId"]
            self._held.pop(message_id, None)
            self._held[message_id] = _Hold(message["ReceiptHandle"], before + timeout, before)
        return messages

    def batches(self) -> Iterator[list[MessageTypeDef]]:
        """Receive until the queue is really empty; yields each non-empty receive.

        A queue that gave nothing and that SQS counts as holding nothing, visible or in
        flight, is empty after one empty long poll; otherwise ``empty_polls`` in a row.
        """
        empty = 0
        received = False
        settle_until: float | None = None
        while True:
            batch = self.receive()
            if batch:
                empty, settle_until, received = 0, None, True
                yield batch
                continue
            empty += 1
            if empty == 1 and not received and queue_counts(self._sqs, self.queue_url) == (0, 0):
                return
            if empty < self._polling.empty_polls:
                continue
            visible = visible_count(self._sqs, self.queue_url)
            if visible == 0:
                return
            now = self._clock()
            if settle_until is None:
                settle_until = now + self._polling.settle_seconds
            elif now >= settle_until:
                self.unreached = visible
                return

    # -- holding --------------------------------------------------------------------------
    def keep_alive(self) -> None:
        """Extend the hold of messages whose hold would lapse soon (called between steps,
        which each take at most a long poll or a few calls)."""
        now = self._clock()
        timeout = self.hold_seconds()
        margin = max(timeout / 2, self._polling.wait_seconds + 2)
        due: list[str] = []
        for message_id, hold in self._held.items():
            if hold.deadline - now >= margin:
                break
            due.append(message_id)
        for part in chunks(due):
            self._extend(part, now, timeout)

    def _seconds_left(self, hold: _Hold, now: float) -> float:
        """How much longer SQS lets a message stay hidden (12 hours after its receive,
        less the slack)."""
        return MAX_VISIBILITY_SECONDS - VISIBILITY_SLACK_SECONDS - (now - hold.received)

    def _extend(self, part: Sequence[str], now: float, timeout: int) -> None:
        """One ChangeMessageVisibilityBatch extending the holds of ``part`` to ``timeout``
        seconds (or as long as SQS allows)."""
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = []
        extended: list[tuple[str, int]] = []
        for message_id in part:
            hold = self._held[message_id]
            seconds = int(min(timeout, self._seconds_left(hold, now)))
            if seconds <= 0:
                # SQS allows no longer hold: the message may be received again, and then
                # it is held anew under its new receipt handle.
                continue
            entries.append(
                {
                    "Id": str(len(entries)),
                    "ReceiptHandle": hold.receipt_handle,
                    "VisibilityTimeout": seconds,
                }
            )
            extended.append((message_id, seconds))
        if not entries:
            return
        answer = self._sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
        refused = {f["Id"]: f for f in answer.get("Failed", [])}
        for index, (message_id, seconds) in enumerate(extended):
            failure = refused.get(str(index))
            if failure is None:
                hold = self._held.pop(message_id)
                hold.deadline = now + seconds
                self._held[message_id] = hold
            elif failure["SenderFault"]:
                # The handle no longer holds the message (it is visible again, or was
                # deleted): a later receive picks it up again if it is still there.
                self._held.pop(message_id, None)
            # else an SQS-side failure: left due, so the next keep_alive retries it.

    def change_visibility(self, message_ids: Sequence[str], seconds: int) -> list[EntryFailure]:
        """Set the visibility timeout of held messages with their newest handles; returns
        the entries SQS refused. ``seconds=0`` makes them visible again at once."""
        failures: list[EntryFailure] = []
        now = self._clock()
        for part in chunks(list(message_ids)):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = []
            for index, message_id in enumerate(part):
                hold = self._held[message_id]
                left = self._seconds_left(hold, now)
                entries.append(
                    {
                        "Id": str(index),
                        "ReceiptHandle": hold.receipt_handle,
                        "VisibilityTimeout": max(0, int(min(seconds, left))),
                    }
                )
            answer = self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=entries
            )
            failures += entry_failures(answer.get("Failed", []), part)
        return failures

    def release(self, message_ids: Sequence[str] | None = None) -> list[EntryFailure]:
        """Make held messages (all by default) visible again and stop holding them;
        returns those SQS refused (they become visible when their hold lapses)."""
        ids = self.held_ids() if message_ids is None else list(message_ids)
        failures = self.change_visibility(ids, 0)
        self.forget(ids)
        return failures

    def delete(self, message_ids: Sequence[str]) -> list[EntryFailure]:
        """Delete held messages with their newest handles; returns those SQS refused
        (still held). SQS-side failures are tried once more."""
        failures = self._delete_once(message_ids)
        retry = [f.message_id for f in failures if not f.sender_fault]
        if retry:
            failures = [f for f in failures if f.sender_fault] + self._delete_once(retry)
        return failures

    def _delete_once(self, message_ids: Sequence[str]) -> list[EntryFailure]:
        failures: list[EntryFailure] = []
        for part in chunks(list(message_ids)):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(index), "ReceiptHandle": self._held[message_id].receipt_handle}
                for index, message_id in enumerate(part)
            ]
            answer = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            part_failures = entry_failures(answer.get("Failed", []), part)
            refused = {f.message_id for f in part_failures}
            self.forget(m for m in part if m not in refused)
            failures += part_failures
        return failures


class Pace:
    """At most ``rate`` messages a second on average; 0 means no limit.

    ``take(n)`` returns once ``n`` more messages may go, sleeping in steps of at most a
    second and calling ``idle`` between steps (to keep held messages held). The first
    batch goes at once; each batch after it waits ``n / rate`` seconds after the one before.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def batch_size(self) -> int:
        """Messages per send: fewer than 10 when the rate is below 10 a second."""
        if self.rate <= 0:
            return BATCH_ENTRIES
        return max(1, min(BATCH_ENTRIES, int(self.rate)))

    def take(self, count: int, idle: Callable[[], None] = lambda: None) -> None:
        if self.rate <= 0:
            return
        now = self._clock()
        if self._next is not None:
            while now < self._next:
                self._sleep(min(self._next - now, 1.0))
                idle()
                now = self._clock()
        self._next = now + count / self.rate

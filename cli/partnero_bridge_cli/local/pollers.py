"""Emulates Lambda's SQS event source mapping: queue -> batch event -> function.

Like the real mapping, successful messages are deleted, the ones listed in
``batchItemFailures`` are left to reappear after their visibility timeout, and a failed
invocation leaves the whole batch. SQS's redrive policy (in moto) does the rest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from partnero_bridge_cli.local.functions import Invocation
from partnero_bridge_cli.local.template import REGION

Invoke = Callable[[str, dict[str, Any]], Invocation]


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(  # noqa: S324 - SQS's checksum
            message["Body"].encode()
        ).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function: str,
        batch_size: int,
        invoke: Invoke,
        log: Callable[[str], None],
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function
        self._batch_size = batch_size
        self._invoke = invoke
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"poller-{function}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep polling: a hiccup must not stop processing
                self._log(f"poller for {self._function}: {type(exc).__name__}: {exc}")
                self._stop.wait(1)

    def poll_once(self) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [_record(m, self._queue_arn) for m in messages]}
        outcome = self._invoke(self._function, event)
        if outcome.error is not None:
            self._log(f"{self._function} failed on a batch of {len(messages)}: {outcome.error}")
            return 0
        failed = {
            item.get("itemIdentifier")
            for item in (outcome.payload or {}).get("batchItemFailures", [])
        }
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(done)

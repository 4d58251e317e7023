"""SQS I/O for one source: accept onto the work queue, back off, dead-letter."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from partnero_bridge.envelope import QueueEnvelope

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# The longest a message can be hidden: SQS's ChangeMessageVisibility takes at most 12 hours
# (43,200 s). It bounds every back-off, and so every Retry-After the bridge can honour.
MAX_VISIBILITY_SECONDS = 12 * 3600
# Message attribute: when a delivery's retry window opened (ISO-8601, UTC). Set by
# `partnero-bridge dlq replay` on each message it sends back (a replay opens a new window)
# and kept on dead letters; without it the window opens at the envelope's received_at.
RETRY_WINDOW_START = "retry_window_start"


def _attribute(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": value}


# What one SQS message may hold, body and attributes together (the work queues keep SQS's
# default MaximumMessageSize).
MAX_MESSAGE_BYTES = 256 * 1024


class TooLargeToQueue(ValueError):
    """The envelope does not fit one SQS message: no retry can change that."""


# Characters SQS accepts in a message body or string attribute; anything else is refused.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _sqs_text(value: str) -> str:
    # A reason quoting Partnero or a delivery id may carry U+FFFF or a lone surrogate;
    # dead-lettering must not fail on it (the reason stays readable, marked by U+FFFD).
    return _NOT_SQS_TEXT.sub("\ufffd", value)


def _ascii(text: str) -> str:
    # SQS refuses some characters JSON may carry raw (U+FFFE, U+FFFF, lone surrogates):
    # JSON with every non-ASCII character escaped reads back the same and is always taken.
    return json.dumps(json.loads(text), separators=(",", ":"))


def send_to_queue(sqs: SQSClient, queue_url: str, envelope: QueueEnvelope) -> str:
    """Put an envelope on a work queue; raises TooLargeToQueue when it cannot fit one
    message, or what SQS raised if it did not take it."""
    body = _ascii(envelope.model_dump_json())
    attributes = {
        "source": _attribute(envelope.source.value),
        "delivery_id": _attribute(json.dumps(envelope.delivery_id)[1:-1]),
    }
    size = len(body) + sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )
    if size > MAX_MESSAGE_BYTES:
        raise TooLargeToQueue(
            f"the envelope is {size} bytes; one SQS message holds at most {MAX_MESSAGE_BYTES}"
        )
    answer = sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
    return answer["MessageId"]


class DeliveryQueues:
    def __init__(self, sqs: SQSClient, work_queue_url: str, dead_letter_queue_url: str) -> None:
        self._sqs = sqs
        self.work_queue_url = work_queue_url
        self.dead_letter_queue_url = dead_letter_queue_url

    def accept(self, envelope: QueueEnvelope) -> str:
        """Put an accepted request on the work queue; raises if SQS did not take it."""
        return send_to_queue(self._sqs, self.work_queue_url, envelope)

    def postpone(self, receipt_handle: str, seconds: int) -> None:
        """Keep a failed message hidden for ``seconds`` before its next attempt."""
        self._sqs.change_message_visibility(
            QueueUrl=self.work_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_SECONDS)),
        )

    def dead_letter(
        self,
        body: str,
        *,
        source: str,
        delivery_id: str,
        error: str,
        error_kind: str,
        receive_count: int,
        retry_window_start: str | None = None,
    ) -> None:
        """Park a message with the reason it failed; the body is kept as it was for replay.

        Attributes: source, delivery_id, error (at most 1000 characters), error_kind,
        receive_count, failed_at and, for an envelope, retry_window_start (ISO-8601 UTC).
        """
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "source": _attribute(source),
            "delivery_id": _attribute(_sqs_text(delivery_id) or "-"),
            "error": _attribute(_sqs_text(error[:1000]) or "-"),
            "error_kind": _attribute(_sqs_text(error_kind)),
            "receive_count": {"DataType": "Number", "StringValue": str(receive_count)},
            "failed_at": _attribute(datetime.now(UTC).isoformat()),
        }
        if retry_window_start:
            attributes[RETRY_WINDOW_START] = _attribute(retry_window_start)
        self._sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes=attributes,
        )

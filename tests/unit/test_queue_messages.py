"""What ingest puts on a work queue is a message SQS takes: only characters SQS allows
(every non-ASCII one escaped, so U+FFFF in a sign-up's name cannot make SQS refuse it) and
at most one message's size; too large is a 413, never a 503 the sender would retry."""

from __future__ import annotations

import re
from typing import Any

import pytest

from partnero_bridge.api import ApiError, retry_later_on_failure
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.queues import (
    MAX_MESSAGE_BYTES,
    DeliveryQueues,
    TooLargeToQueue,
    send_to_queue,
)

pytestmark = pytest.mark.unit

# SQS's documented message characters.
SQS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **params: Any) -> dict[str, str]:
        self.sent.append(params)
        return {"MessageId": "m-1"}


def envelope(payload: dict[str, Any], delivery_id: str = "stripe-evt_1") -> QueueEnvelope:
    return QueueEnvelope.new(Source.STRIPE, delivery_id, payload, meta={"request_id": "r"})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\uffff\ufffe", id="noncharacters"),
        pytest.param("\x00\x01\x1f", id="control"),
        pytest.param("Zoë 日本 \U0001f600 \u2028", id="non-ascii"),
    ],
)
def test_the_body_is_ascii_and_reads_back_the_same(text: str) -> None:
    sqs = FakeSqs()
    sent = envelope({"name": text, "nested": [{"k": text}]}, delivery_id=f"stripe-{text}")

    send_to_queue(sqs, "https://sqs.example/q", sent)  # type: ignore[arg-type]

    [params] = sqs.sent
    assert params["MessageBody"].isascii()
    assert QueueEnvelope.model_validate_json(params["MessageBody"]) == sent
    for attribute in params["MessageAttributes"].values():
        assert SQS_TEXT.fullmatch(attribute["StringValue"])


def test_an_envelope_over_one_message_is_refused_before_sending() -> None:
    sqs = FakeSqs()

    with pytest.raises(TooLargeToQueue):
        send_to_queue(sqs, "q", envelope({"blob": "x" * MAX_MESSAGE_BYTES}))  # type: ignore[arg-type]

    assert sqs.sent == []


def test_too_large_to_queue_is_a_413_not_a_503() -> None:
    with pytest.raises(ApiError) as caught, retry_later_on_failure("Stripe event"):
        raise TooLargeToQueue("the envelope is 300000 bytes")

    assert (caught.value.status_code, caught.value.code) == (413, "body_too_large")


def test_a_dead_letter_reason_with_characters_sqs_refuses_is_still_dead_lettered() -> None:
    # Partnero's message is quoted in the reason; SQS would refuse U+FFFF or a lone
    # surrogate in an attribute, and then the delivery could not be dead-lettered at all.
    sqs = FakeSqs()
    queues = DeliveryQueues(sqs, "work", "dlq")  # type: ignore[arg-type]
    queues.dead_letter(
        '{"body": 1}',
        source="signup",
        delivery_id="signup-\ud800x",
        error="Partnero answered 422: name \uffff is invalid\x00",
        error_kind="permanent",
        receive_count=1,
    )
    attributes = sqs.sent[0]["MessageAttributes"]
    for value in attributes.values():
        assert SQS_TEXT.fullmatch(value["StringValue"])
    assert attributes["error"]["StringValue"] == (
        "Partnero answered 422: name \ufffd is invalid\ufffd"
    )
    assert attributes["delivery_id"]["StringValue"] == "signup-\ufffdx"

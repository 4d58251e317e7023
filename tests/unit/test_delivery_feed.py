"""The local stack's delivery feed, read from the lines the functions really log.

Processing's lines come from the bridge's own batch processor (idempotency included), so a
changed message or key fails here; the ingest lines are the ones the ingest functions write
(their messages are checked against the layer's source)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from partnero_bridge.config import BridgeSettings
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope, Source
from partnero_bridge.errors import PermanentError, RetryableError
from partnero_bridge.observability import logger, metrics
from partnero_bridge.processing import _Processor
from partnero_bridge_cli.local import deliveries
from partnero_bridge_cli.local.deliveries import DeliveryFeed, parse_line

pytestmark = pytest.mark.unit

LAYER = Path(__file__).resolve().parents[2] / "layers" / "common" / "partnero_bridge"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class _Idempotency(BasePersistenceLayer):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        if data_record.idempotency_key in self.records:
            raise IdempotencyItemAlreadyExistsError
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class Bridge:
    """The bridge's batch processor for Stripe, its handler answering from ``results``
    (an Outcome or an error to raise, one per attempt), its log lines in a feed."""

    def __init__(self, output: io.StringIO) -> None:
        self.output = output
        self.results: list[Outcome | Exception] = []
        queues = SimpleNamespace(postpone=lambda *_: None, dead_letter=lambda *_, **__: None)
        runtime = SimpleNamespace(
            settings=BridgeSettings.from_environ({"BRIDGE_RETRY_BASE_SECONDS": "30"}),
            idempotency_store=_Idempotency(),
            queues=queues,
        )
        self.processor = _Processor(Source.STRIPE, self._handle, runtime)  # type: ignore[arg-type]
        self.processor.config.register_lambda_context(_Context())
        self.processor.begin(None)
        self.feed = DeliveryFeed()
        self.lines: list[str] = []

    def _handle(self, envelope: QueueEnvelope, _runtime: Any) -> Outcome:
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        # Processing names the payment on its lines once it knows it, as the sources do.
        logger.append_keys(ledger_key=result.ledger_key)
        return result

    def log(self, line: str) -> None:
        self.lines.append(line)
        self.feed.observe(line)

    def receive(self, delivery_id: str, event_type: str = "invoice.paid") -> None:
        """Ingest's line for a queued Stripe event, as ``accept_event`` writes it."""
        logger.info(
            "Stripe event accepted", extra={"delivery_id": delivery_id, "event_type": event_type}
        )
        self._flush()

    def process(
        self, delivery_id: str, result: Outcome | Exception, receive_count: int = 1
    ) -> None:
        self.results.append(result)
        envelope = QueueEnvelope.new(Source.STRIPE, delivery_id, {"id": delivery_id})
        record = SQSRecord(
            {
                "messageId": f"m-{delivery_id}-{receive_count}",
                "receiptHandle": f"rh-{delivery_id}",
                "body": envelope.model_dump_json(),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        )
        # A retry is reported to SQS as a batch item failure: raised here.
        with contextlib.suppress(RetryableError):
            self.processor.handle_record(record)
        self._flush()

    def _flush(self) -> None:
        lines = self.output.getvalue().splitlines()
        self.output.seek(0)
        self.output.truncate()
        for line in lines:
            self.log(line)

    def entry(self, delivery_id: str) -> dict[str, Any]:
        [found] = self.feed.snapshot(delivery_id=delivery_id)["deliveries"]
        return found


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    metrics.clear_metrics()
    # The bridge's log lines, formatted as its functions print them.
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.service).addHandler(handler)
    try:
        yield Bridge(output)
    finally:
        logging.getLogger(logger.service).removeHandler(handler)


def sent(detail: str, ledger_key: str = "stripe#invoice:in_1", reason: str = "paid") -> Outcome:
    return Outcome(status=OutcomeStatus.SENT, detail=detail, reason=reason, ledger_key=ledger_key)


@pytest.mark.parametrize(
    ("outcome", "expected", "summary"),
    [
        pytest.param(
            sent("created 20.00 USD: paid"),
            "created",
            "created 20.00 USD: paid - Stripe invoice in_1",
            id="created",
        ),
        pytest.param(
            sent("replaced 20.00 with 15.00 USD: paid, 500 of 2000 refunded", "stripe#pi:pi_1"),
            "updated",
            "replaced 20.00 with 15.00 USD: paid, 500 of 2000 refunded - "
            "Stripe payment intent pi_1",
            id="updated",
        ),
        pytest.param(
            sent("reversed 15.00 USD: 2000 of 2000 refunded", "stripe#ch:ch_1", "refunded"),
            "reversed",
            "reversed 15.00 USD: 2000 of 2000 refunded - Stripe charge ch_1",
            id="reversed",
        ),
        pytest.param(
            Outcome(
                status=OutcomeStatus.IGNORED,
                reason="not_paid",
                detail="payment is not_paid; Partnero holds nothing",
                ledger_key="stripe#cs:cs_1",
            ),
            "ignored",
            "ignored (reason: not_paid): payment is not_paid; Partnero holds nothing - "
            "Stripe checkout session cs_1",
            id="ignored",
        ),
        pytest.param(
            Outcome(
                status=OutcomeStatus.IGNORED,
                reason="awaiting_capture",
                detail="payment is awaiting_capture; Partnero holds nothing",
                ledger_key="stripe#pi:pi_2",
            ),
            "awaiting_capture",
            "awaiting capture: payment is awaiting_capture; Partnero holds nothing - "
            "Stripe payment intent pi_2",
            id="awaiting-capture",
        ),
        pytest.param(
            Outcome(
                status=OutcomeStatus.NOT_REFERRED,
                reason="unknown_customer",
                detail="not referred (unknown customer): no partner key and Partnero does "
                "not know the customer",
                ledger_key="ecwid#1003#612804175",
            ),
            "not_referred",
            "not referred (reason: unknown_customer): not referred (unknown customer): no "
            "partner key and Partnero does not know the customer - Ecwid order 612804175 "
            "of store 1003",
            id="not-referred",
        ),
    ],
)
def test_each_outcome_is_listed_with_what_it_concerns(
    bridge: Bridge, outcome: Outcome, expected: str, summary: str
) -> None:
    bridge.receive("stripe-evt_1")
    assert bridge.entry("stripe-evt_1")["outcome"] == "queued"

    bridge.process("stripe-evt_1", outcome)

    entry = bridge.entry("stripe-evt_1")
    assert entry["outcome"] == expected
    assert entry["summary"] == summary
    assert entry["source"] == "stripe"
    assert entry["event_type"] == "invoice.paid"
    assert entry["attempts"] == 1
    assert entry["received_at"] <= entry["updated_at"]


def test_a_second_receipt_of_a_processed_delivery_is_listed_as_a_duplicate(
    bridge: Bridge,
) -> None:
    bridge.receive("stripe-evt_1")
    bridge.process("stripe-evt_1", sent("created 20.00 USD: paid"))
    bridge.receive("stripe-evt_1")
    bridge.process("stripe-evt_1", sent("never asked: idempotency answers"))

    second, first = bridge.feed.snapshot()["deliveries"]
    assert (first["outcome"], second["outcome"]) == ("created", "duplicate")
    assert second["summary"] == (
        "duplicate: already processed (created 20.00 USD: paid) - Stripe invoice in_1"
    )
    assert second["seq"] > first["seq"]
    assert bridge.results == [sent("never asked: idempotency answers")]  # not called again


def test_a_retry_and_then_its_success(bridge: Bridge) -> None:
    bridge.receive("stripe-evt_1")
    bridge.process("stripe-evt_1", RetryableError("Partnero answered 503: Service Unavailable"))

    retrying = bridge.entry("stripe-evt_1")
    assert retrying["outcome"] == "retrying"
    assert retrying["retry_in_seconds"] == 30
    assert retrying["summary"] == (
        "retrying (Partnero answered 503: Service Unavailable), will retry in 30 s"
    )

    bridge.process("stripe-evt_1", sent("created 20.00 USD: paid"), receive_count=2)
    done = bridge.entry("stripe-evt_1")
    assert (done["outcome"], done["attempts"], done["retry_in_seconds"]) == ("created", 2, None)
    assert done["seq"] == retrying["seq"]  # the same receipt, one row
    assert done["version"] > retrying["version"]


def test_a_dead_letter_says_why(bridge: Bridge) -> None:
    bridge.receive("stripe-evt_1")
    bridge.process("stripe-evt_1", PermanentError("Partnero rejected the request (422): amount"))

    entry = bridge.entry("stripe-evt_1")
    assert entry["outcome"] == "dead_lettered"
    assert entry["reason"] == "permanent"
    assert entry["summary"] == "dead-lettered: Partnero rejected the request (422): amount"


def test_processing_of_a_delivery_the_feed_never_saw_queued_is_listed(bridge: Bridge) -> None:
    # Replayed from a DLQ, or queued before the stack (and so its feed) started.
    bridge.process("stripe-evt_9", sent("created 5.00 EUR: paid", "stripe#invoice:in_9"))

    entry = bridge.entry("stripe-evt_9")
    assert (entry["outcome"], entry["received_at"], entry["event_type"]) == ("created", None, "")


def test_no_raw_email_reaches_the_feed() -> None:
    # The bridge masks customer keys; a text quoting an address is masked here too.
    feed = DeliveryFeed()
    feed.observe(
        line(
            "delivery processed",
            delivery_id="stripe-evt_1",
            ledger_key="customer#ad***@example.com",
            outcome="not_referred",
            reason="invalid_partner",
            detail="not referred (invalid partner): Ada.Lovelace@Example.com, partner x",
        )
    )

    shown = json.dumps(feed.snapshot())
    assert "customer ad***@example.com" in shown
    assert "(invalid partner): Ad***@Example.com, partner x" in shown
    assert [m.group(0) for m in EMAIL.finditer(shown) if "***" not in m.group(0)] == []


def test_the_feed_keeps_its_capacity_newest_first() -> None:
    feed = DeliveryFeed(capacity=3)
    for n in range(5):
        feed.observe(accepted(f"stripe-evt_{n}"))

    listed = [d["delivery_id"] for d in feed.snapshot()["deliveries"]]
    assert listed == ["stripe-evt_4", "stripe-evt_3", "stripe-evt_2"]
    # A line about a delivery that has left the feed lists it again.
    feed.observe(processed("stripe-evt_0"))
    assert feed.snapshot(limit=1)["deliveries"][0]["delivery_id"] == "stripe-evt_0"
    assert len(feed.snapshot()["deliveries"]) == 3


def test_a_client_asks_for_what_changed_since_it_looked() -> None:
    feed = DeliveryFeed()
    feed.observe(accepted("stripe-evt_1"))
    looked = feed.snapshot()["version"]
    feed.observe(accepted("stripe-evt_2"))
    feed.observe(processed("stripe-evt_1"))

    changed = feed.snapshot(since=looked)["deliveries"]
    assert [(d["delivery_id"], d["outcome"]) for d in changed] == [
        ("stripe-evt_2", "queued"),
        ("stripe-evt_1", "created"),
    ]
    assert feed.snapshot(since=feed.version)["deliveries"] == []
    assert feed.answer({"since": str(looked), "delivery_id": "stripe-evt_1"})[1]["deliveries"] == [
        feed.snapshot(delivery_id="stripe-evt_1")["deliveries"][0]
    ]
    assert feed.answer({"since": "-1"})[0] == 400
    assert feed.answer({"limit": "x"})[0] == 400


def test_processing_logged_before_its_receipt_is_one_row() -> None:
    now = [100.0]
    feed = DeliveryFeed(clock=lambda: now[0])
    feed.observe(processed("stripe-evt_1"))
    feed.observe(accepted("stripe-evt_1"))

    [entry] = feed.snapshot()["deliveries"]
    assert (entry["outcome"], entry["event_type"]) == ("created", "invoice.paid")

    # Much later, the same event again is a new receipt.
    now[0] += 60
    feed.observe(accepted("stripe-evt_1"))
    assert [d["outcome"] for d in feed.snapshot()["deliveries"]] == ["queued", "created"]


def test_a_parked_ecwid_webhook_is_listed_with_its_order() -> None:
    feed = DeliveryFeed()
    feed.observe(
        line(
            "webhook for an unconfigured store parked; replay it once the store is in "
            "ECWID_STORE_IDS (partnero-bridge parked replay)",
            delivery_id="ecwid-e1",
            store_id="2002",
            event_type="order.created",
            order_id="K8XTQ",
        )
    )

    [entry] = feed.snapshot()["deliveries"]
    assert entry["outcome"] == "parked"
    assert entry["concerns"] == "Ecwid order K8XTQ of store 2002"
    assert entry["source"] == "ecwid"


@pytest.mark.parametrize(
    "text",
    [
        "LISTENING 4242",
        "Traceback (most recent call last):",
        '{"_aws":{"Timestamp":1},"source":"stripe","Accepted":[1.0]}',
        '{"level":"INFO","message":"partnero call","operation":"POST transactions"}',
        '{"level":"INFO","message":"delivery processed","delivery_id":',
        '["delivery_id"]',
    ],
)
def test_other_lines_are_not_deliveries(text: str) -> None:
    assert parse_line(text) is None


def test_the_messages_read_are_the_ones_the_functions_write() -> None:
    source = "\n".join(p.read_text() for p in LAYER.rglob("*.py"))
    for message in [*deliveries._ACCEPTED, *deliveries._ENDINGS]:
        assert f'"{message}"' in source, message
    assert deliveries._PARKED in source


# -- lines as the functions write them ----------------------------------------------------


def line(message: str, **keys: Any) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + "+0000"
    return json.dumps({"level": "INFO", "message": message, "timestamp": stamp, **keys})


def accepted(delivery_id: str) -> str:
    return line("Stripe event accepted", delivery_id=delivery_id, event_type="invoice.paid")


def processed(delivery_id: str) -> str:
    return line(
        "delivery processed",
        delivery_id=delivery_id,
        receive_count=1,
        ledger_key="stripe#invoice:in_1",
        outcome="sent",
        reason="paid",
        detail="created 20.00 USD: paid",
    )

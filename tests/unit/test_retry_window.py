"""The retry window: a transient failure is retried until a time after the delivery's window
start, then dead-lettered; a permanent one at once; and a batch hands back what it has no
time left for, untried. The deployed schedule is computed from template.yaml's defaults."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from datetime import UTC, datetime, timedelta
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
from partnero_bridge.errors import (
    ConfigurationError,
    NotYetKnown,
    PermanentError,
    RetryableError,
)
from partnero_bridge.observability import logger, metrics
from partnero_bridge.processing import (
    NotAttempted,
    RetryDecision,
    RetryPolicy,
    _Processor,
    decide_retry,
    retry_schedule,
    window_start,
    worst_case_record_seconds,
)
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS
from partnero_bridge_cli.local.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
DELIVERY_QUEUES = {
    "SignupQueue": Source.SIGNUP,
    "EcwidOrderQueue": Source.ECWID,
    "StripeEventQueue": Source.STRIPE,
}
DAY = 24 * HOUR

# --- the deployed schedule (template.yaml's defaults) ------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def default(template: dict[str, Any], parameter: str) -> int:
    return int(template["Parameters"][parameter]["Default"])


def deployed_policy(template: dict[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        window_seconds=default(template, "RetryWindowSeconds"),
        base_seconds=default(template, "RetryBaseSeconds"),
        max_seconds=default(template, "RetryMaxSeconds"),
        max_receives=default(template, "MaxReceives"),
    )


def work_queue_retentions(template: dict[str, Any]) -> dict[str, int]:
    """The queues of deliveries (the sources' work queues), with their retention."""
    queues = {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    # The nightly reconciliation's chunk queue is not a delivery queue: its chunks resume
    # from a checkpoint and have a redrive of their own, not the retry window.
    assert queues - set(DELIVERY_QUEUES) == {"ReconcileQueue"}, queues
    queues &= set(DELIVERY_QUEUES)
    assert len(queues) == 3, queues
    return {
        name: int(template["Resources"][name]["Properties"]["MessageRetentionPeriod"])
        for name in sorted(queues)
    }


def test_the_deployed_schedule_retries_for_three_days_then_dead_letters(
    template: dict[str, Any],
) -> None:
    policy = deployed_policy(template)
    schedule = retry_schedule(policy)

    # Stripe retries its webhooks for 3 days: a Partnero outage as long is survived.
    assert schedule.total_seconds >= 72 * HOUR
    # It is the window that ends it, well before the receive backstop.
    assert schedule.ended_by == "window"
    assert schedule.receives < policy.max_receives
    # The last attempt is made when the window closes, not an hour after it.
    assert schedule.total_seconds == policy.window_seconds
    # Back-off grows, then holds at its cap; only the last delay is cut to the window.
    *growing, last = schedule.delays
    assert growing == sorted(growing)
    assert max(schedule.delays) == policy.max_seconds <= MAX_VISIBILITY_SECONDS
    assert 0 < last <= policy.max_seconds


def test_work_queues_keep_a_message_longer_than_its_retries(template: dict[str, Any]) -> None:
    schedule = retry_schedule(deployed_policy(template))

    for queue, retention in work_queue_retentions(template).items():
        # Even a 12 h Retry-After on the window's last attempt ends before SQS drops it.
        assert schedule.total_seconds + MAX_VISIBILITY_SECONDS < retention, queue
        assert retention >= 14 * DAY, queue


def test_settings_defaults_match_the_template(template: dict[str, Any]) -> None:
    settings = BridgeSettings.from_environ({})

    assert RetryPolicy.from_settings(settings) == deployed_policy(template)


def test_a_full_batch_of_worst_case_records_fits_its_function_timeout(
    template: dict[str, Any],
) -> None:
    """Every client call of every record of a full batch waiting out its timeout still ends
    inside the processing function: no record is handed back untried even then (a
    hand-back is an SQS receive, and MaxReceives counts receives)."""
    settings = BridgeSettings.from_environ({})
    queue_source = DELIVERY_QUEUES
    timeouts: dict[Source, int] = {}
    batch_sizes: dict[Source, int] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                if queue not in queue_source:
                    continue  # the reconciliation's chunks are sized by ReconcileChunkHours
                timeout = resource["Properties"].get("Timeout")
                if timeout is None:
                    timeout = template["Globals"]["Function"]["Timeout"]
                timeouts[queue_source[queue]] = int(timeout)
                batch_sizes[queue_source[queue]] = int(event["Properties"]["BatchSize"])
    assert set(timeouts) == set(Source)

    for source, timeout in timeouts.items():
        worst = worst_case_record_seconds(settings, source) * batch_sizes[source]
        assert worst <= timeout - 5, (source, worst, timeout)
    assert worst_case_record_seconds(settings, Source.STRIPE) == 105
    assert worst_case_record_seconds(settings, Source.SIGNUP) == 16


# --- the decision ------------------------------------------------------------------------

# A shrunk window, as tests and tools set it: 100 s, back-off 10, 20, 40, capped at 30.
POLICY = RetryPolicy(window_seconds=100, base_seconds=10, max_seconds=30, max_receives=50)


@pytest.mark.parametrize(
    ("receive_count", "elapsed", "retry_after", "expected"),
    [
        pytest.param(1, 0, None, RetryDecision(True, 10), id="first-failure"),
        pytest.param(2, 10, None, RetryDecision(True, 20), id="doubles"),
        pytest.param(3, 30, None, RetryDecision(True, 30), id="capped"),
        pytest.param(9, 5, None, RetryDecision(True, 30), id="many-receives-young"),
        pytest.param(5, 85, None, RetryDecision(True, 15), id="cut-to-the-window-end"),
        pytest.param(5, 99.2, None, RetryDecision(True, 1), id="last-second"),
        pytest.param(5, 100, None, RetryDecision(False, 0, "window"), id="window-ended"),
        pytest.param(2, 3 * DAY, None, RetryDecision(False, 0, "window"), id="long-past"),
        pytest.param(1, -30, None, RetryDecision(True, 10), id="start-in-the-future"),
        pytest.param(1, 0, 45.0, RetryDecision(True, 45), id="retry-after-longer"),
        pytest.param(4, 20, 3.0, RetryDecision(True, 30), id="retry-after-shorter"),
        pytest.param(5, 90, 45.0, RetryDecision(True, 45), id="retry-after-past-the-end"),
        pytest.param(1, 0, 1e9, RetryDecision(True, 43200), id="retry-after-capped-by-sqs"),
        pytest.param(5, 100, 5.0, RetryDecision(False, 0, "window"), id="retry-after-too-late"),
        pytest.param(50, 0, None, RetryDecision(False, 0, "receives"), id="receive-backstop"),
        pytest.param(49, 0, None, RetryDecision(True, 30), id="below-the-backstop"),
        pytest.param(50, 500, None, RetryDecision(False, 0, "receives"), id="both-ended"),
    ],
)
def test_retry_or_dead_letter(
    receive_count: int, elapsed: float, retry_after: float | None, expected: RetryDecision
) -> None:
    assert decide_retry(POLICY, receive_count, elapsed, retry_after) == expected


def test_a_shrunk_schedule() -> None:
    schedule = retry_schedule(POLICY)

    assert schedule.delays == (10, 20, 30, 30, 10)
    assert (schedule.total_seconds, schedule.receives, schedule.ended_by) == (100, 6, "window")


def test_the_backstop_ends_a_schedule_the_window_would_not() -> None:
    policy = RetryPolicy(window_seconds=10_000, base_seconds=1, max_seconds=1, max_receives=5)

    schedule = retry_schedule(policy)

    assert schedule.delays == (1, 1, 1, 1)
    assert schedule.ended_by == "receives"


def test_no_window_means_one_attempt() -> None:
    schedule = retry_schedule(RetryPolicy(0, 30, 3600, 200))

    assert (schedule.delays, schedule.ended_by) == ((), "window")


def test_base_zero_retries_at_once_until_the_backstop() -> None:
    schedule = retry_schedule(RetryPolicy(60, 0, 0, 4))

    assert (schedule.delays, schedule.ended_by) == ((0, 0, 0), "receives")


# --- the window's start ------------------------------------------------------------------

RECEIVED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        pytest.param(None, RECEIVED, id="absent"),
        pytest.param("", RECEIVED, id="empty"),
        pytest.param("2025-03-05T11:00:00+00:00", NOW - timedelta(hours=1), id="replayed"),
        pytest.param("2025-03-05T11:00:00Z", NOW - timedelta(hours=1), id="zulu"),
        pytest.param("2025-03-05T11:00:00", NOW - timedelta(hours=1), id="naive-is-utc"),
        pytest.param("2025-03-05T13:00:00+02:00", NOW - timedelta(hours=1), id="offset"),
        pytest.param("2025-03-05T12:04:00+00:00", NOW + timedelta(minutes=4), id="small-skew"),
        pytest.param("2025-03-06T12:00:00+00:00", RECEIVED, id="a-day-ahead"),
        pytest.param("yesterday", RECEIVED, id="not-a-time"),
        pytest.param("2025-13-45T99:00:00Z", RECEIVED, id="impossible-date"),
    ],
)
def test_window_start(attribute: str | None, expected: datetime) -> None:
    assert window_start(attribute, RECEIVED, NOW) == expected


def test_a_naive_received_at_is_utc() -> None:
    assert window_start(None, RECEIVED.replace(tzinfo=None), NOW) == RECEIVED


# --- the decision inside processing (no AWS: the queues and idempotency are recorded) -----


class _MemoryIdempotency(BasePersistenceLayer):
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


class _Queues:
    def __init__(self) -> None:
        self.postponed: list[tuple[str, int]] = []
        self.dead: list[dict[str, Any]] = []

    def postpone(self, receipt_handle: str, seconds: int) -> None:
        self.postponed.append((receipt_handle, seconds))

    def dead_letter(self, body: str, **attributes: Any) -> None:
        self.dead.append({"body": body, **attributes})


class _Context:
    def __init__(self, remaining_ms: list[int]) -> None:
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining.pop(0) if len(self._remaining) > 1 else self._remaining[0]


def processor(
    outcome: Exception | Outcome, env: dict[str, str] | None = None, ledger_key: str = ""
) -> tuple[_Processor, _Queues]:
    settings = BridgeSettings.from_environ(
        {
            "BRIDGE_RETRY_WINDOW_SECONDS": "100",
            "BRIDGE_RETRY_BASE_SECONDS": "10",
            "BRIDGE_RETRY_MAX_SECONDS": "30",
            "BRIDGE_MAX_RECEIVES": "50",
            **(env or {}),
        }
    )
    queues = _Queues()
    runtime = SimpleNamespace(
        settings=settings, idempotency_store=_MemoryIdempotency(), queues=queues
    )

    def handle(envelope: QueueEnvelope, _runtime: Any) -> Outcome:
        if ledger_key:  # as the sources' handlers do once they know the payment
            logger.append_keys(ledger_key=ledger_key)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    built = _Processor(Source.STRIPE, handle, runtime)  # type: ignore[arg-type]
    built.clock = lambda: RECEIVED.timestamp() + 40
    # Idempotency's in-progress record expires with the invocation; no time check here.
    built.config.register_lambda_context(_Context([900_000]))
    built.begin(None)
    return built, queues


def record(
    receive_count: int = 1, window_attribute: str | None = None, delivery: str = "evt_1"
) -> SQSRecord:
    envelope = QueueEnvelope.new(Source.STRIPE, delivery, {"id": delivery}, received_at=RECEIVED)
    attributes = (
        {"retry_window_start": {"stringValue": window_attribute, "dataType": "String"}}
        if window_attribute is not None
        else {}
    )
    return SQSRecord(
        {
            "messageId": f"m-{delivery}",
            "receiptHandle": f"rh-{delivery}",
            "body": envelope.model_dump_json(),
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
            "messageAttributes": attributes,
            "eventSource": "aws:sqs",
        }
    )


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    metrics.clear_metrics()


@pytest.mark.parametrize(
    "error",
    [
        RetryableError("Partnero answered 503: down"),
        RetryableError("Partnero answered 429: slow down", retry_after=2.0),
        ConfigurationError("Partnero refused the API key (401)"),
        RuntimeError("a bug"),
    ],
    ids=["5xx", "429", "configuration", "unexpected"],
)
def test_a_transient_failure_inside_its_window_is_retried(error: Exception) -> None:
    built, queues = processor(error)

    with pytest.raises(RetryableError):
        built.handle_record(record(receive_count=2))

    # 40 s into a 100 s window, second receive: 20 s of back-off.
    assert queues.postponed == [("rh-evt_1", 20)]
    assert queues.dead == []
    assert metrics.metric_set["Retried"]["Value"] == [1.0]
    # How long this delivery has been retrying, for the alarm on the oldest one.
    assert metrics.metric_set["OldestRetryingSeconds"]["Unit"] == "Seconds"
    assert metrics.metric_set["OldestRetryingSeconds"]["Value"] == [40.0]


def test_the_last_delay_is_cut_so_the_last_attempt_is_at_the_window_end() -> None:
    built, queues = processor(RetryableError("Partnero answered 502"))
    built.clock = lambda: RECEIVED.timestamp() + 88.5

    with pytest.raises(RetryableError):
        built.handle_record(record(receive_count=6))

    assert queues.postponed == [("rh-evt_1", 12)]


def test_past_its_window_a_transient_failure_is_dead_lettered_with_its_reason() -> None:
    built, queues = processor(RetryableError("Partnero answered 503: Service Unavailable"))
    built.clock = lambda: RECEIVED.timestamp() + 100.4

    assert built.handle_record(record(receive_count=7)) == "dead-lettered"

    [dead] = queues.dead
    assert dead["error"] == (
        "Partnero answered 503: Service Unavailable "
        "[retried for 100 s: its retry window (100 s) has passed]"
    )
    assert dead["error_kind"] == "retryable"
    assert dead["receive_count"] == 7
    assert dead["delivery_id"] == "evt_1"
    assert dead["retry_window_start"] == RECEIVED.isoformat()
    assert json.loads(dead["body"])["delivery_id"] == "evt_1"
    assert queues.postponed == []
    assert metrics.metric_set["DeadLettered"]["Value"] == [1.0]
    assert "Retried" not in metrics.metric_set


@pytest.mark.parametrize(
    ("seconds_in", "line"),
    [(40, "delivery will be retried"), (100.4, "delivery dead-lettered")],
    ids=["retried", "dead-lettered"],
)
def test_retried_and_dead_lettered_lines_name_the_delivery_and_its_ledger_item(
    seconds_in: float, line: str
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    built, _queues = processor(
        RetryableError("Partnero answered 503"), ledger_key="stripe#payment_intent:pi_1"
    )
    built.clock = lambda: RECEIVED.timestamp() + seconds_in
    try:
        with contextlib.suppress(RetryableError):  # retried: raised for the batch to report
            built.handle_record(record(receive_count=3))
    finally:
        logger.removeHandler(handler)

    logged = [json.loads(text) for text in stream.getvalue().splitlines()]
    [found] = [entry for entry in logged if entry["message"] == line]
    assert found["delivery_id"] == "evt_1"
    assert found["ledger_key"] == "stripe#payment_intent:pi_1"
    assert found["receive_count"] == 3
    # Gone once the record is done: the next record's lines never carry this one's keys.
    assert "ledger_key" not in logger.get_current_keys()
    assert "delivery_id" not in logger.get_current_keys()


def test_a_replay_opens_a_new_window() -> None:
    built, queues = processor(RetryableError("Partnero answered 500"))
    # Received 5 days ago; replayed from the DLQ 30 s ago.
    built.clock = lambda: NOW.timestamp()
    replayed = (NOW - timedelta(seconds=30)).isoformat()

    with pytest.raises(RetryableError):
        built.handle_record(record(receive_count=1, window_attribute=replayed))
    assert queues.postponed == [("rh-evt_1", 10)]
    assert metrics.metric_set["OldestRetryingSeconds"]["Value"] == [30.0]

    # The same message without the attribute: its window ended days ago.
    assert built.handle_record(record(receive_count=2)) == "dead-lettered"
    assert queues.dead[0]["retry_window_start"] == RECEIVED.isoformat()


def test_the_receive_backstop_still_dead_letters() -> None:
    built, queues = processor(RetryableError("Partnero answered 500"), {"BRIDGE_MAX_RECEIVES": "3"})

    assert built.handle_record(record(receive_count=3)) == "dead-lettered"
    assert queues.dead[0]["error"] == (
        "Partnero answered 500 [still failing on receive 3 (BRIDGE_MAX_RECEIVES)]"
    )


def test_a_permanent_failure_is_dead_lettered_at_once() -> None:
    built, queues = processor(
        PermanentError("Partnero rejected the request (422): amount: must be a number")
    )

    assert built.handle_record(record(receive_count=1)) == "dead-lettered"

    [dead] = queues.dead
    assert dead["error"] == "Partnero rejected the request (422): amount: must be a number"
    assert dead["error_kind"] == "permanent"
    assert dead["retry_window_start"] == RECEIVED.isoformat()
    assert queues.postponed == []


@pytest.mark.parametrize(
    ("receive_count", "seconds_in", "ends"),
    [
        pytest.param(3, 40, False, id="inside-the-window"),
        pytest.param(3, 101, True, id="window-ended"),
        pytest.param(50, 40, True, id="backstop"),
    ],
)
def test_something_not_known_yet_ends_as_an_outcome_not_a_dead_letter(
    receive_count: int, seconds_in: float, ends: bool
) -> None:
    built, queues = processor(NotYetKnown("the sale's customer has not signed up yet"))
    built.clock = lambda: RECEIVED.timestamp() + seconds_in

    if ends:
        assert built.handle_record(record(receive_count=receive_count)) == "ignored"
        assert metrics.metric_set["Ignored"]["Value"] == [1.0]
    else:
        with pytest.raises(NotYetKnown):
            built.handle_record(record(receive_count=receive_count))
    assert queues.dead == []


def test_success_is_reported_not_retried() -> None:
    built, queues = processor(Outcome(status=OutcomeStatus.SENT, detail="created"))

    assert built.handle_record(record()) == "sent"
    assert (queues.postponed, queues.dead) == ([], [])


# --- batches that cannot time out --------------------------------------------------------


def test_a_record_that_may_not_fit_is_handed_back_untried() -> None:
    calls: list[str] = []
    built, queues = processor(Outcome(status=OutcomeStatus.SENT))
    original = built.process

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["delivery"]["delivery_id"])
        return original(**kwargs)

    built.process = counting
    budget = worst_case_record_seconds(built.runtime.settings, Source.STRIPE) * 1000
    # Time left before each record: plenty, just enough, then a millisecond short.
    built.begin(_Context([int(budget) + 60_000, int(budget), int(budget) - 1]))

    assert built.handle_record(record(delivery="evt_a")) == "sent"
    assert built.handle_record(record(delivery="evt_b")) == "sent"
    with pytest.raises(NotAttempted):
        built.handle_record(record(delivery="evt_c", receive_count=4))
    built.end()

    assert calls == ["evt_a", "evt_b"]
    # Visible again in 2 s, for the next invocation; no failure counted, nothing parked.
    assert queues.postponed == [("rh-evt_c", 2)]
    assert queues.dead == []
    assert "Retried" not in metrics.metric_set
    assert "OldestRetryingSeconds" not in metrics.metric_set
    assert metrics.metric_set["Unattempted"]["Value"] == [1.0]


def test_the_first_record_of_an_invocation_is_always_tried() -> None:
    built, queues = processor(Outcome(status=OutcomeStatus.SENT))
    built.begin(_Context([1]))

    assert built.handle_record(record(delivery="evt_a")) == "sent"
    with pytest.raises(NotAttempted):
        built.handle_record(record(delivery="evt_b"))
    assert queues.postponed == [("rh-evt_b", 2)]


def test_without_a_context_every_record_is_tried() -> None:
    built, _queues = processor(Outcome(status=OutcomeStatus.SENT))

    for n in range(3):
        assert built.handle_record(record(delivery=f"evt_{n}")) == "sent"

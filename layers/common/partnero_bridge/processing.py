"""Processing side: one SQS batch in, one outcome or failure per message.

For each message: idempotency on the envelope's delivery id (Powertools + DynamoDB), then
the source's handler. Failures never lose a message:

- transient (RetryableError: timeouts, 408/429/5xx, configuration errors, another
  invocation holding the delivery; and any unexpected exception): the message is hidden
  for a back-off that grows with its receive count (or Retry-After, if longer) and
  reported as a batch item failure, for as long as its retry window lasts
  (``BRIDGE_RETRY_WINDOW_SECONDS`` after the window start, see :func:`window_start`);
- permanent, or transient once the window has passed (or at ``BRIDGE_MAX_RECEIVES``, a
  backstop): sent to the dead-letter queue with the reason as message attributes, then
  acknowledged. SQS's own redrive policy (same receive limit) stays as the safety net for
  invocations that crash.

A batch never runs into the function's timeout on purpose: before each record, the time
left is compared with what one record may take (:func:`worst_case_record_seconds`); a
record that may not fit is not attempted but handed back to the queue at once, without
counting as a failure (its window is measured in time, so it is not shortened).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
    PydanticSerializer,
)
from pydantic import ValidationError

from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope, Source
from partnero_bridge.errors import DeliveryError, NotYetKnown, PermanentError, RetryableError
from partnero_bridge.http_client import CONNECT_TIMEOUT_SECONDS
from partnero_bridge.observability import count_by_reason, logger, mask_key, metrics
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS, RETRY_WINDOW_START
from partnero_bridge.runtime import Runtime

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from partnero_bridge.config import BridgeSettings

DeliveryHandler = Callable[[QueueEnvelope, Runtime], Outcome]

# The settings (BridgeSettings fields) every process function cannot run without: its work
# queue and DLQ, idempotency and the ledger, the Partnero key (see config.requiring).
PROCESS_NEEDS: Final = (
    "work_queue_url",
    "dead_letter_queue_url",
    "idempotency_table",
    "ledger_table",
    "partnero_secret_arn",
)


def retry_delay(
    receive_count: int, base_seconds: int, max_seconds: int, retry_after: float | None = None
) -> int:
    """Seconds to hide a failed message: base * 2^(n-1), capped, never below Retry-After."""
    exponent = max(0, receive_count - 1)
    backoff = base_seconds << min(exponent, 20)
    delay = min(backoff, max_seconds)
    if retry_after is not None and not math.isnan(retry_after):
        delay = max(delay, math.ceil(min(retry_after, MAX_VISIBILITY_SECONDS)))
    return min(delay, MAX_VISIBILITY_SECONDS)


# -- the retry window ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a transient failure is retried (all in seconds)."""

    window_seconds: int
    base_seconds: int
    max_seconds: int
    max_receives: int

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> RetryPolicy:
        return cls(
            window_seconds=settings.retry_window_seconds,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            max_receives=settings.max_receives,
        )


@dataclass(frozen=True)
class RetryDecision:
    """What becomes of a delivery that just failed transiently.

    ``retry``: hide it ``delay_seconds`` and try again; else dead-letter it, ``ended_by``
    saying why ("window": its retry window has passed; "receives": the backstop
    ``max_receives`` was reached).
    """

    retry: bool
    delay_seconds: int = 0
    ended_by: Literal["", "window", "receives"] = ""


def decide_retry(
    policy: RetryPolicy,
    receive_count: int,
    elapsed_seconds: float,
    retry_after: float | None = None,
) -> RetryDecision:
    """Retry or dead-letter a delivery that failed on its ``receive_count``-th receive,
    ``elapsed_seconds`` after its window start.

    The back-off (:func:`retry_delay` without Retry-After) is cut so that the next attempt
    falls at the window's end, not after it: the last attempt is made when the window
    closes. A Retry-After is honoured even past the end (asking earlier only earns another
    429); either way the attempt after the window's end is the last.
    """
    if receive_count >= policy.max_receives:
        return RetryDecision(retry=False, ended_by="receives")
    elapsed = max(0.0, elapsed_seconds)
    if elapsed >= policy.window_seconds:
        return RetryDecision(retry=False, ended_by="window")
    remaining = math.ceil(policy.window_seconds - elapsed)
    backoff = min(retry_delay(receive_count, policy.base_seconds, policy.max_seconds), remaining)
    delay = max(backoff, retry_delay(receive_count, 0, 0, retry_after))
    return RetryDecision(retry=True, delay_seconds=min(delay, MAX_VISIBILITY_SECONDS))


@dataclass(frozen=True)
class RetrySchedule:
    """The retries of a delivery whose every attempt fails at once, without Retry-After.

    ``delays[i]`` is how long it is hidden after its (i+1)-th receive; after its
    ``len(delays) + 1``-th receive it is dead-lettered, ``total_seconds`` after its
    window start, for the reason ``ended_by`` ("window" or "receives").
    """

    delays: tuple[int, ...]
    ended_by: Literal["window", "receives"]

    @property
    def total_seconds(self) -> int:
        return sum(self.delays)

    @property
    def receives(self) -> int:
        return len(self.delays) + 1


def retry_schedule(policy: RetryPolicy) -> RetrySchedule:
    """Every delay :func:`decide_retry` gives one delivery, from first receive to dead letter."""
    delays: list[int] = []
    while True:
        decision = decide_retry(policy, len(delays) + 1, sum(delays))
        if not decision.retry:
            assert decision.ended_by  # a dead letter always says why
            return RetrySchedule(tuple(delays), decision.ended_by)
        delays.append(decision.delay_seconds)


# A start more than this far in the future is not believed (clocks may differ a little).
_CLOCK_SKEW = timedelta(minutes=5)


def window_start(attribute: str | None, received_at: datetime, now: datetime) -> datetime:
    """When a delivery's retry window opened.

    ``attribute`` is the message's ``retry_window_start`` attribute (ISO-8601, UTC;
    ``partnero-bridge dlq replay`` sets it to the replay's time, so a replay opens a new
    window). Used when present and plausible (parseable, not in the future); otherwise
    the envelope's ``received_at``, when ingest accepted the request. A naive time is
    read as UTC.
    """
    fallback = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    if not attribute:
        return fallback
    try:
        start = datetime.fromisoformat(attribute.strip())
    except ValueError:
        return fallback
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start if start <= now + _CLOCK_SKEW else fallback


# -- batches that cannot time out ---------------------------------------------------------

# Remote calls one record may make on its longest usual path: (Partnero, the source's own
# API). A sale reads what Partnero holds, asks whether it knows the customer, deletes
# and (re)creates its transaction: 4. An Ecwid order is 1-2 order reads and the store's
# profile (its currency, then cached). A Stripe payment is the event's object, the invoice
# it may have paid, its payment intent and charge, and its refunds and disputes lists: 7.
RECORD_CALLS: Final[dict[Source, tuple[int, int]]] = {
    Source.SIGNUP: (1, 0),
    Source.ECWID: (4, 3),
    Source.STRIPE: (4, 7),
}
# AWS calls (DynamoDB idempotency and ledger, SQS) take milliseconds; botocore's own
# timeouts bound a stuck one. This margin covers them and the record's own bookkeeping.
RECORD_MARGIN_SECONDS: Final = 5.0
# An unattempted record is visible again after this long, for the next invocation.
UNATTEMPTED_VISIBILITY_SECONDS: Final = 2


def _call_seconds(timeout_seconds: float) -> float:
    # pooled_client: connect within min(3 s, timeout), then the read timeout.
    return min(CONNECT_TIMEOUT_SECONDS, timeout_seconds) + timeout_seconds


def worst_case_record_seconds(settings: BridgeSettings, source: Source) -> float:
    """The longest one record of ``source`` may take, in seconds, from the client timeouts.

    Every remote call of :data:`RECORD_CALLS` waiting out its client's timeouts (connect,
    at most 3 s, plus the read timeout: ``PARTNERO_TIMEOUT_SECONDS``,
    ``ECWID_TIMEOUT_SECONDS``, ``STRIPE_TIMEOUT_SECONDS``) plus :data:`RECORD_MARGIN_SECONDS`.
    With the defaults (8 s, 8 s, 5 s): sign-up 16 s, Ecwid 82 s, Stripe 105 s, all within
    the processing functions' 120 s timeout. A record that needs more calls (a long paged
    list, an invoice paid in several parts) may still run longer; the time check before
    each record keeps the rest of its batch out of the way.
    """
    partnero_calls, source_calls = RECORD_CALLS[source]
    source_timeout = {
        Source.ECWID: settings.ecwid_timeout_seconds,
        Source.STRIPE: settings.stripe_timeout_seconds,
    }.get(source, 0.0)
    return (
        partnero_calls * _call_seconds(settings.partnero_timeout_seconds)
        + source_calls * _call_seconds(source_timeout)
        + RECORD_MARGIN_SECONDS
    )


class NotAttempted(Exception):
    """A record left for a later invocation: this one had too little time left for it."""


class _Processor:
    """Binds a source's handler to idempotency once per container."""

    def __init__(self, source: Source, handle: DeliveryHandler, runtime: Runtime) -> None:
        self.source = source
        self.runtime = runtime
        self.policy = RetryPolicy.from_settings(runtime.settings)
        self.record_budget_ms = worst_case_record_seconds(runtime.settings, source) * 1000
        self.clock: Callable[[], float] = time.time
        # Per invocation (see begin): its context and how many records it has started.
        self._context: Any = None
        self._started = 0
        self._unattempted = 0
        self.config = IdempotencyConfig(
            event_key_jmespath="delivery_id",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=runtime.settings.idempotency_ttl_seconds,
            response_hook=_mark_duplicate,
        )

        def process_delivery(delivery: dict[str, str], envelope: QueueEnvelope) -> Outcome:
            return handle(envelope, runtime)

        # Idempotency gets only the delivery id: Powertools deep-copies the argument it
        # keys on, and copying a whole Stripe event for that costs more than the rest.
        # An explicit key prefix keeps idempotency records valid if code is moved or renamed.
        self.process = idempotent_function(
            process_delivery,
            data_keyword_argument="delivery",
            persistence_store=runtime.idempotency_store,
            config=self.config,
            output_serializer=PydanticSerializer(Outcome),
            key_prefix=f"partnero-bridge.{source.value}",
        )

    # -- one invocation -------------------------------------------------------------------
    def begin(self, context: Any) -> None:
        self._context = context
        self._started = 0
        self._unattempted = 0

    def end(self) -> None:
        if self._unattempted:
            logger.warning(
                "records left for a later invocation: too little time left for them",
                extra={
                    "unattempted": self._unattempted,
                    "attempted": self._started,
                    "record_budget_ms": round(self.record_budget_ms),
                },
            )
        self._context = None

    def _time_left_ms(self) -> float | None:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return float(remaining()) if callable(remaining) else None

    def _leave_for_later(self, record: SQSRecord) -> None:
        """Hand a record back to the queue untried: no attempt, no back-off, no metric of
        failure; only the receive count grows (the window is time, so it is unchanged)."""
        self._unattempted += 1
        metrics.add_metric(name="Unattempted", unit=MetricUnit.Count, value=1)
        try:
            self.runtime.queues.postpone(record.receipt_handle, UNATTEMPTED_VISIBILITY_SECONDS)
        except Exception:  # it comes back after the queue's visibility timeout instead
            logger.exception("could not make an unattempted record visible again")
        raise NotAttempted("left for a later invocation: too little time left")

    # -- one record -----------------------------------------------------------------------
    def handle_record(self, record: SQSRecord) -> str:
        left_ms = self._time_left_ms()
        # The first record of an invocation is always tried: with a function timeout too
        # short for any record, skipping it too would never make progress.
        if self._started and left_ms is not None and left_ms < self.record_budget_ms:
            self._leave_for_later(record)
        self._started += 1

        receive_count = int(record.attributes.approximate_receive_count or "1")
        try:
            envelope = QueueEnvelope.model_validate_json(record.body)
        except ValidationError:
            self._dead_letter(
                record, "", PermanentError("message is not a queue envelope"), receive_count
            )
            return "dead-lettered"
        attribute = record.message_attributes[RETRY_WINDOW_START]
        start = window_start(
            attribute.string_value if attribute is not None else None,
            envelope.received_at,
            datetime.fromtimestamp(self.clock(), UTC),
        )
        # Every line about this delivery carries these, its outcome, retry or dead letter
        # included (the handler adds ledger_key once it knows it).
        logger.append_keys(delivery_id=envelope.delivery_id, receive_count=receive_count)
        try:
            return self._attempt(record, envelope, receive_count, start)
        finally:
            logger.remove_keys(["delivery_id", "receive_count", "ledger_key"])

    def _attempt(
        self, record: SQSRecord, envelope: QueueEnvelope, receive_count: int, start: datetime
    ) -> str:
        """Process one delivery: its outcome, or a retry or dead letter for its failure."""
        try:
            outcome: Outcome = self.process(
                delivery={"delivery_id": envelope.delivery_id}, envelope=envelope
            )
        except PermanentError as exc:
            self._dead_letter(record, envelope.delivery_id, exc, receive_count, start)
            return "dead-lettered"
        except IdempotencyAlreadyInProgressError:
            error: RetryableError = RetryableError("another invocation is processing this delivery")
        except RetryableError as exc:
            error = exc
        except Exception as exc:  # a bug must cost a retry, never the delivery
            logger.exception("unexpected error while processing")
            error = RetryableError(f"unexpected {type(exc).__name__}")
        else:
            return _report(outcome)
        return self._failed(record, envelope.delivery_id, error, receive_count, start)

    def _failed(
        self,
        record: SQSRecord,
        delivery_id: str,
        error: RetryableError,
        receive_count: int,
        start: datetime,
    ) -> str:
        """Retry a transient failure within its window, else dead-letter it."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        elapsed = max(0.0, (now - start).total_seconds())
        decision = decide_retry(self.policy, receive_count, elapsed, error.retry_after)
        if not decision.retry:
            if isinstance(error, NotYetKnown):
                # Still unknown at the end of its retries: an outcome with its reason, counted.
                return _report(
                    Outcome(status=OutcomeStatus.IGNORED, detail=error.reason, reason=error.kind)
                )
            why = (
                f"retried for {_duration(elapsed)}: its retry window "
                f"({_duration(self.policy.window_seconds)}) has passed"
                if decision.ended_by == "window"
                else f"still failing on receive {receive_count} (BRIDGE_MAX_RECEIVES)"
            )
            self._dead_letter(record, delivery_id, error, receive_count, start, because=why)
            return "dead-lettered"
        logger.warning(
            "delivery will be retried",
            extra={
                "delivery_id": delivery_id,
                "error": error.reason,
                "error_kind": error.kind,
                "retry_in_seconds": decision.delay_seconds,
                "receive_count": receive_count,
                "retry_window_start": start.isoformat(),
                "retry_window_elapsed_seconds": round(elapsed),
                "retry_window_left_seconds": round(self.policy.window_seconds - elapsed),
            },
        )
        metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OldestRetryingSeconds", unit=MetricUnit.Seconds, value=elapsed)
        self.runtime.queues.postpone(record.receipt_handle, decision.delay_seconds)
        raise error

    def _dead_letter(
        self,
        record: SQSRecord,
        delivery_id: str,
        error: DeliveryError,
        receive_count: int,
        started: datetime | None = None,
        because: str = "",
    ) -> None:
        """Park the message with its reason (``because``: why retrying stopped)."""
        reason = f"{error.reason} [{because}]" if because else error.reason
        logger.error(
            "delivery dead-lettered",
            extra={
                "delivery_id": delivery_id,
                "error": reason,
                "error_kind": error.kind,
                "receive_count": receive_count,
            },
        )
        self.runtime.queues.dead_letter(
            record.body,
            source=self.source.value,
            delivery_id=delivery_id,
            error=reason,
            error_kind=error.kind,
            receive_count=receive_count,
            retry_window_start=started.isoformat() if started is not None else None,
        )
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)


def _duration(seconds: float) -> str:
    """``90`` -> ``"90 s"``, ``5400`` -> ``"1.5 h"``: readable in a dead letter's reason."""
    if seconds < 3600:
        return f"{round(seconds)} s"
    return f"{seconds / 3600:.1f} h"


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    if isinstance(response, Outcome):
        return response.model_copy(update={"duplicate": True})
    return response


def _report(outcome: Outcome) -> str:
    name = "Duplicate" if outcome.duplicate else _OUTCOME_METRICS[outcome.status.value]
    logger.info(
        "duplicate delivery: already processed" if outcome.duplicate else "delivery processed",
        extra={
            "outcome": outcome.status.value,
            "reason": outcome.reason,
            "detail": outcome.detail,
            "ledger_key": mask_key(outcome.ledger_key),
        },
    )
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if not outcome.duplicate and outcome.status in _COUNTED_BY_REASON:
        # Nothing money-related is dropped silently: each reason has its own count.
        count_by_reason(f"{name}ByReason", outcome.reason)
    return "duplicate" if outcome.duplicate else outcome.status.value


_OUTCOME_METRICS = {
    "sent": "Processed",
    "not_referred": "NotReferred",
    "already_recorded": "AlreadyRecorded",
    "ignored": "Ignored",
    "adjustment_needed": "AdjustmentNeeded",
}
_COUNTED_BY_REASON = frozenset(
    {OutcomeStatus.IGNORED, OutcomeStatus.NOT_REFERRED, OutcomeStatus.ADJUSTMENT_NEEDED}
)

_processors: dict[tuple[Source, int, int], _Processor] = {}


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    source: Source,
    handle: DeliveryHandler,
    runtime: Runtime,
) -> dict[str, Any]:
    """Process an SQS batch event with ``handle`` and report the messages to retry."""
    cache_key = (source, id(runtime), id(handle))
    processor = _processors.get(cache_key)
    if processor is None:
        _processors.clear()
        processor = _processors[cache_key] = _Processor(source, handle, runtime)
    processor.config.register_lambda_context(context)
    batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    processor.begin(context)
    try:
        return dict(
            process_partial_response(
                event=event,
                record_handler=processor.handle_record,
                processor=batch,
                context=context,
            )
        )
    finally:
        processor.end()

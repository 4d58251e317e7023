"""Processing side: one SQS batch in, one outcome or failure per message.

For each message: idempotency on the envelope's delivery id (Powertools + DynamoDB), then
the source's handler. Failures never lose a message:

- retryable: the message is hidden for a back-off that grows with its receive count
  (or Partnero's Retry-After, if longer) and reported as a batch item failure;
- retryable on its last allowed receive, or permanent: sent to the dead-letter queue with
  the reason as message attributes, then acknowledged. SQS's own redrive policy (same
  receive limit) stays as the safety net for invocations that crash or time out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from partnero_bridge.observability import count_by_reason, logger, mask_key, metrics
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS
from partnero_bridge.runtime import Runtime, get_runtime

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

DeliveryHandler = Callable[[QueueEnvelope, Runtime], Outcome]


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


class _Processor:
    """Binds a source's handler to idempotency once per container."""

    def __init__(self, source: Source, handle: DeliveryHandler, runtime: Runtime) -> None:
        self.source = source
        self.runtime = runtime
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

    def handle_record(self, record: SQSRecord) -> str:
        receive_count = int(record.attributes.approximate_receive_count or "1")
        try:
            envelope = QueueEnvelope.model_validate_json(record.body)
        except ValidationError:
            self._dead_letter(
                record, "", PermanentError("message is not a queue envelope"), receive_count
            )
            return "dead-lettered"

        logger.append_keys(delivery_id=envelope.delivery_id, receive_count=receive_count)
        try:
            outcome: Outcome = self.process(
                delivery={"delivery_id": envelope.delivery_id}, envelope=envelope
            )
        except PermanentError as exc:
            self._dead_letter(record, envelope.delivery_id, exc, receive_count)
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
        finally:
            logger.remove_keys(["delivery_id", "receive_count", "ledger_key"])

        if receive_count >= self.runtime.settings.max_receives:
            if isinstance(error, NotYetKnown):
                # Still unknown on its last receive: an outcome with its reason, counted.
                return _report(
                    Outcome(status=OutcomeStatus.IGNORED, detail=error.reason, reason=error.kind)
                )
            self._dead_letter(record, envelope.delivery_id, error, receive_count)
            return "dead-lettered"
        delay = retry_delay(
            receive_count,
            self.runtime.settings.retry_base_seconds,
            self.runtime.settings.retry_max_seconds,
            error.retry_after,
        )
        logger.warning(
            "delivery will be retried",
            extra={
                "delivery_id": envelope.delivery_id,
                "error": error.reason,
                "error_kind": error.kind,
                "retry_in_seconds": delay,
                "receive_count": receive_count,
            },
        )
        metrics.add_metric(name="Retried", unit=MetricUnit.Count, value=1)
        self.runtime.queues.postpone(record.receipt_handle, delay)
        raise error

    def _dead_letter(
        self, record: SQSRecord, delivery_id: str, error: DeliveryError, receive_count: int
    ) -> None:
        logger.error(
            "delivery dead-lettered",
            extra={
                "delivery_id": delivery_id,
                "error": error.reason,
                "error_kind": error.kind,
                "receive_count": receive_count,
            },
        )
        self.runtime.queues.dead_letter(
            record.body,
            source=self.source.value,
            delivery_id=delivery_id,
            error=error.reason,
            error_kind=error.kind,
            receive_count=receive_count,
        )
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)


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
    event: dict[str, Any], context: LambdaContext, source: Source, handle: DeliveryHandler
) -> dict[str, Any]:
    """Process an SQS batch event and report the messages to retry."""
    runtime = get_runtime()
    cache_key = (source, id(runtime), id(handle))
    processor = _processors.get(cache_key)
    if processor is None:
        _processors.clear()
        processor = _processors[cache_key] = _Processor(source, handle, runtime)
    processor.config.register_lambda_context(context)
    batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=processor.handle_record, processor=batch, context=context
        )
    )

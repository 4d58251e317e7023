"""Reconcile worker: reconciles one chunk of the nightly run per invocation (SQS, batch 1).

Each chunk (``partnero_bridge.reconcile.scheduled.Chunk``) is one source or Ecwid store
over one slice of time, checkpointed page by page in the ledger table: a chunk the
function's timeout cuts short, or one a remote stopped, comes back on the message's next
receive and resumes where it stopped (its first receive starts afresh). Publishes
``DriftCount`` (actionable findings: missing, wrong amount, extra; dimension ``source``)
and ``DriftAmount`` (their money per ``currency``), and logs one line per difference.
With ``RECONCILE_HEAL`` the actionable findings are sent back to the source's work queue,
exactly as ``partnero-bridge reconcile --apply`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import ValidationError

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.errors import ConfigurationError, RetryableError
from partnero_bridge.observability import logger, metrics, trace_libraries, tracer
from partnero_bridge.reconcile.compare import HEALABLE, Finding
from partnero_bridge.reconcile.run import Report, RunStopped
from partnero_bridge.reconcile.scheduled import (
    Chunk,
    ScheduleSettings,
    anchored,
    difference_line,
    differences,
    drift,
    drift_amounts,
    night_key,
)
from partnero_bridge.reconcile.service import paced_runtime, reconcile_source
from partnero_bridge.runtime import Runtime, get_runtime

SERVICE = "partnero-bridge"
# How long a night's claim on a drifted payment is kept after the night (seconds).
NIGHT_CLAIM_SECONDS = 7 * 24 * 3600


class WorkerSettings(ScheduleSettings, BridgeSettings):
    """The reconcile settings and the bridge's: a chunk reads the source's API and
    Partnero, and heals through the source's work queue."""


SETTINGS = requiring(
    WorkerSettings,
    "ledger_table",
    "ecwid_queue_url",
    "stripe_queue_url",
    "partnero_secret_arn",
    "ecwid_api_secret_arn",
    "stripe_api_secret_arn",
)
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)


def settings() -> WorkerSettings:
    """This container's settings (read at import, see SETTINGS)."""
    found = get_runtime(SETTINGS).settings
    assert isinstance(found, WorkerSettings)
    return found


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reconcile each record's chunk; answers the SQS partial batch response (a chunk a
    remote stopped is handed back, to resume from its checkpoint)."""
    trace_libraries()
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        try:
            chunk = Chunk.model_validate_json(record["body"])
        except ValidationError:
            # Not ours to retry: a malformed message only ever fails again.
            logger.error(
                "reconcile chunk refused: not a chunk",
                extra={"message_id": record.get("messageId")},
            )
            continue
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            reconcile_chunk(chunk, restart=receives <= 1)
        except (RunStopped, RetryableError) as exc:
            logger.warning(
                "reconcile chunk stopped; it resumes from its checkpoint",
                extra={
                    "scope": chunk.scope,
                    "since": chunk.since,
                    "until": chunk.until,
                    "receives": receives,
                    "error": str(exc),
                },
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def reconcile_chunk(chunk: Chunk, *, restart: bool) -> Report | None:
    """Reconcile one chunk and publish what it found; None when its source is not set up
    (no Stripe API key, or no token for the store)."""
    own = settings()
    # Heals go back through the source's own work queue (idempotency, the ledger).
    queue = own.stripe_queue_url if chunk.source == "stripe" else own.ecwid_queue_url
    runtime, meters = paced_runtime(own.model_copy(update={"work_queue_url": queue}), own.api_share)
    if not _set_up(runtime, chunk):
        logger.info("reconcile chunk skipped: source not set up", extra={"scope": chunk.scope})
        return None
    report = reconcile_source(
        runtime,
        meters,
        chunk.source,
        chunk.since,
        chunk.until,
        stores=[chunk.store] if chunk.store else [],
        apply=chunk.heal,
        restart=restart,
        workers=own.workers,
    )
    publish(chunk, report, lambda key: _claim(runtime, chunk, key))
    return report


def _claim(runtime: Runtime, chunk: Chunk, ledger_key: str) -> bool:
    """Whether this chunk is the first of its night to publish ``ledger_key``'s drift (a
    conditional put of the night's claim item; two chunks may list one payment)."""
    pk = night_key(chunk, ledger_key)
    if pk is None:
        return True
    try:
        runtime.dynamodb.put_item(
            TableName=runtime.settings.ledger_table,
            # Gone a week after its night (the ledger table's TTL): it only has to
            # outlive the night's chunks, retries included.
            Item={
                "pk": {"S": pk},
                "scope": {"S": chunk.scope},
                "expires_at": {"N": str(int(chunk.night_until or 0) + NIGHT_CLAIM_SECONDS)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _set_up(runtime: Runtime, chunk: Chunk) -> bool:
    settings = runtime.settings
    if chunk.source == "stripe":
        try:
            runtime.secrets.field(settings.stripe_api_secret_arn, "api_key")
        except ConfigurationError:
            return False
        return True
    from partnero_bridge.ecwid.secrets import ecwid_store_tokens

    return bool(ecwid_store_tokens(runtime).get(str(chunk.store)))


def _publish_drift(source: str, drifted: list[Finding]) -> None:
    """``DriftCount`` and ``DriftAmount`` per currency, each carrying its chunk's source
    itself: a warm container works on chunks of both sources, and a default dimension set
    again warns on every chunk."""
    dimensions = {"service": SERVICE, "source": source}
    with single_metric(
        name="DriftCount",
        unit=MetricUnit.Count,
        value=len(drifted),
        namespace=metrics.namespace,
        default_dimensions=dimensions,
    ):
        pass
    for currency, amount in drift_amounts(drifted).items():
        with single_metric(
            name="DriftAmount",
            unit=MetricUnit.NoUnit,
            value=float(amount),
            namespace=metrics.namespace,
            default_dimensions=dimensions,
        ) as metric:
            metric.add_dimension(name="currency", value=currency)


def publish(chunk: Chunk, report: Report, claim: Callable[[str], bool] = lambda _key: True) -> None:
    """The chunk's metrics and one log line per difference (see the module docstring).

    A payment two chunks of one night list is published once: its drift by the chunk that
    ``claim`` s it first, a report-only difference by the chunk ``anchored`` to it.
    """
    findings = report.findings
    drifted = [f for f in drift(findings) if claim(f.ledger_key)]
    shown = drifted + [
        f for f in differences(findings) if f.kind not in HEALABLE and anchored(chunk, f)
    ]
    _publish_drift(chunk.source, drifted)
    for finding in shown:
        logger.info("reconcile difference", extra=difference_line(chunk, finding))
    logger.info(
        "reconcile chunk done",
        extra={
            "scope": chunk.scope,
            "since": chunk.since,
            "until": chunk.until,
            "payments": len(findings),
            "counts": report.counts(),
            "drift": len(drift(findings)),
            "drift_published": len(drifted),
            "healed": chunk.heal,
            "calls": report.calls,
            "seconds": round(report.seconds, 1),
        },
    )

"""Scheduled reconcile function: plans the nightly reconciliation into chunks.

EventBridge Scheduler invokes it (``ReconcileSchedule``); it sends one message per chunk
(a source or Ecwid store, over one slice of the last ``RECONCILE_DAYS`` days) to the
reconcile queue, whose worker reconciles each one within its own timeout. Nothing here
reads an API or a secret: Stripe chunks are always planned, and the worker skips them
when no Stripe API key is set up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import BridgeSettings, requiring
from partnero_bridge.observability import logger, trace_libraries, tracer
from partnero_bridge.reconcile.scheduled import DAY_SECONDS, Chunk, ScheduleSettings, plan
from partnero_bridge.runtime import get_runtime

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

BATCH = 10  # SendMessageBatch takes ten messages at most


class PlannerSettings(ScheduleSettings, BridgeSettings):
    """The reconcile settings and the bridge's (ECWID_STORE_IDS: the stores planned)."""


SETTINGS = requiring(PlannerSettings, "queue_url")
# Read now: a missing or invalid setting fails the cold start, naming the variables.
get_runtime(SETTINGS)


def settings() -> PlannerSettings:
    """This container's settings (read at import, see SETTINGS)."""
    found = get_runtime(SETTINGS).settings
    assert isinstance(found, PlannerSettings)
    return found


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Queue the chunks; answers ``{"chunks": n, "scopes": [...], "since": s, "until": u}``
    (Unix seconds). Raises when the queue refuses a message (the schedule retries)."""
    trace_libraries()
    runtime = get_runtime(SETTINGS)
    schedule = settings()
    now = int(time.time())
    chunks = plan(
        now,
        schedule.days,
        schedule.chunk_hours,
        stripe=True,
        stores=schedule.ecwid_store_ids,
        heal=schedule.heal,
    )
    for first in range(0, len(chunks), BATCH):
        _send(runtime.sqs, schedule.queue_url, chunks[first : first + BATCH], first)
    scopes = sorted({chunk.scope for chunk in chunks})
    since = now - schedule.days * DAY_SECONDS
    logger.info(
        "reconcile planned",
        extra={
            "chunks": len(chunks),
            "scopes": scopes,
            "days": schedule.days,
            "heal": schedule.heal,
            "since": since,
            "until": now,
        },
    )
    return {"chunks": len(chunks), "scopes": scopes, "since": since, "until": now}


def _send(sqs: SQSClient, queue_url: str, chunks: list[Chunk], first: int) -> None:
    """One SendMessageBatch of at most :data:`BATCH` chunks; raises if any is refused."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "MessageBody": chunk.model_dump_json()}
        for index, chunk in enumerate(chunks, start=first)
    ]
    answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if answer.get("Failed"):
        codes = sorted({failed.get("Code", "") for failed in answer["Failed"]})
        raise RuntimeError(f"the reconcile queue refused chunks: {', '.join(codes)}")

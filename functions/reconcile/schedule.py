"""Scheduled reconcile function: plans the nightly reconciliation into chunks.

EventBridge Scheduler invokes it (``ReconcileSchedule``); it sends one message per chunk
(a source or Ecwid store, over one slice of the last ``RECONCILE_DAYS`` days) to the
reconcile queue, whose worker reconciles each one within its own timeout. Nothing here
reads an API or a secret: Stripe chunks are always planned, and the worker skips them
when no Stripe API key is set up.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from partnero_bridge.config import get_settings
from partnero_bridge.observability import logger, trace_libraries, tracer
from partnero_bridge.reconcile.scheduled import ScheduleSettings, plan
from partnero_bridge.runtime import get_runtime

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

BATCH = 10  # SendMessageBatch takes ten messages at most


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Queue the chunks; answers ``{"chunks": n, "scopes": [...], "since": s, "until": u}``
    (Unix seconds). Raises when the queue refuses a message (the schedule retries)."""
    trace_libraries()
    schedule = ScheduleSettings.model_validate(dict(os.environ))
    stores = get_settings().ecwid_store_ids
    now = int(time.time())
    chunks = plan(
        now,
        schedule.days,
        schedule.chunk_hours,
        stripe=True,
        stores=stores,
        heal=schedule.heal,
    )
    sqs = get_runtime().sqs
    for first in range(0, len(chunks), BATCH):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "MessageBody": chunk.model_dump_json()}
            for index, chunk in enumerate(chunks[first : first + BATCH], start=first)
        ]
        answer = sqs.send_message_batch(QueueUrl=schedule.queue_url, Entries=entries)
        if answer.get("Failed"):
            codes = sorted({failed.get("Code", "") for failed in answer["Failed"]})
            raise RuntimeError(f"the reconcile queue refused chunks: {', '.join(codes)}")
    scopes = sorted({chunk.scope for chunk in chunks})
    logger.info(
        "reconcile planned",
        extra={
            "chunks": len(chunks),
            "scopes": scopes,
            "days": schedule.days,
            "heal": schedule.heal,
            "since": now - schedule.days * 86400,
            "until": now,
        },
    )
    return {
        "chunks": len(chunks),
        "scopes": scopes,
        "since": now - schedule.days * 86400,
        "until": now,
    }

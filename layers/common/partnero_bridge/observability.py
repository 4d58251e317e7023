"""Logger, metrics and tracer shared by every function, and helpers that keep PII out of logs.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set in template.yaml).
"""

from __future__ import annotations

import re
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="partnero-bridge")
metrics = Metrics(namespace="PartneroBridge", service="partnero-bridge")
# Libraries are patched on the first invocation, not at import: patching botocore imports
# its client machinery (~90 ms), which a cold start pays only once it calls AWS anyway.
tracer = Tracer(service="partnero-bridge", auto_patch=False)
# An invocation that refused its request or found nothing to count publishes no metric, as
# it should; Powertools warns about that each time, which is only noise in the logs.
warnings.filterwarnings("ignore", message="No application metrics to publish")
_TRACED_LIBRARIES = ("botocore", "httpx")
_patched = False


def trace_libraries() -> None:
    """Patch AWS and HTTP clients for X-Ray subsegments, once per container."""
    global _patched
    if not _patched:
        tracer.patch(_TRACED_LIBRARIES)
        _patched = True


def count_by_reason(name: str, reason: str) -> None:
    """One count of ``name`` with a ``reason`` dimension (``IgnoredByReason``, ...).

    Emitted at once as its own metric, since a dimension applies to a whole metric blob.
    """
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="reason", value=reason or "unspecified")


_EMAIL = re.compile(r"^([^@\s]+)@([^@\s]+)$")


def mask_email(value: str | None) -> str | None:
    """Keep enough of an email to recognise it in a log, not enough to harvest it.

    ``jane.doe@example.com`` -> ``ja***@example.com``.
    """
    if not value:
        return value
    match = _EMAIL.match(value)
    if match is None:
        return "***"
    local = match.group(1)
    # Never show more than half of a short local part ("jo" -> "j***").
    shown = local[: min(2, len(local) // 2)]
    return f"{shown}***@{match.group(2)}"


def mask_key(value: str | None) -> str | None:
    """A customer key may be an email: mask it the same way; other keys are not personal.

    A ledger key keeps its readable prefix: ``customer#jane@example.com`` ->
    ``customer#ja***@example.com``.
    """
    if value and "@" in value:
        prefix, sep, key = value.rpartition("#")
        return f"{prefix}{sep}{mask_email(key)}" if sep else mask_email(value)
    return value

"""What the local stack prints while it runs: one short line per delivery's outcome.

The functions log JSON (as in CloudWatch Logs); ``partnero-bridge run --json-logs`` prints
every line as it is. By default the terminal gets, instead:

- one line per outcome of a delivery, from the delivery feed:
  ``12:03:01 stripe invoice.paid evt_1RAda0... -> created 20.00 USD: paid (Stripe invoice in_...)``;
- warnings and errors, and the nightly reconciliation's own lines, as
  ``12:03:01 Function message key=value ...``;
- anything that is not JSON (a traceback, a print) as it is, after the function's name.

Metrics (EMF lines) and the other INFO lines are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from partnero_bridge_cli.local.deliveries import summary

# Shown whatever their level: the scheduled reconciliation's findings and progress.
_ALWAYS_SHOWN: Final = ("reconcile ",)
_SHOWN_LEVELS: Final = frozenset({"WARNING", "ERROR", "CRITICAL"})
# Powertools' own keys on every line: not worth a terminal's width.
_STANDARD_KEYS: Final = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
    }
)
_MAX_WIDTH: Final = 220


def _clock(iso: str | None) -> str:
    """``HH:MM:SS`` in the machine's local time, from the feed's ISO-8601 UTC time."""
    try:
        at = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        at = datetime.now(UTC)
    return at.astimezone().strftime("%H:%M:%S")


def delivery_line(entry: Mapping[str, Any]) -> str:
    """One feed entry as a terminal line: time, source, event type, the source's id, outcome
    and, in brackets, what it concerns."""
    source = str(entry["source"])
    shown_id = str(entry["delivery_id"]).removeprefix(f"{source}-")
    if source == "signup":
        shown_id = shown_id[:12]  # a hash: its head is enough to tell deliveries apart
    words = [_clock(entry.get("updated_at")), source]
    if entry.get("event_type") and entry["event_type"] != "sign-up":
        words.append(str(entry["event_type"]))
    outcome = summary({**entry, "concerns": ""})
    line = f"{' '.join(words)} {shown_id} -> {outcome}"
    if entry.get("concerns"):
        line += f" ({entry['concerns']})"
    return line


def _record_line(function: str, record: Mapping[str, Any]) -> str:
    extras = " ".join(
        f"{key}={value}"
        for key, value in record.items()
        if key not in _STANDARD_KEYS and isinstance(value, str | int | float | bool)
    )
    level = str(record.get("level", ""))
    words = [_clock(None), function]
    if level in _SHOWN_LEVELS:
        words.append(level.lower() + ":")
    line = f"{' '.join(words)} {record.get('message', '')} {extras}".rstrip()
    return line if len(line) <= _MAX_WIDTH else line[: _MAX_WIDTH - 3] + "..."


def console_line(function: str, line: str, entry: Mapping[str, Any] | None) -> str | None:
    """What to print for one line ``function`` logged (``entry``: the feed entry it changed,
    if any); None to print nothing."""
    if entry is not None:
        return None if entry["outcome"] == "queued" else delivery_line(entry)
    if not line.startswith("{"):
        return f"[{function}] {line}" if line.strip() else None
    try:
        record = json.loads(line)
    except ValueError:
        return f"[{function}] {line}"
    if not isinstance(record, dict) or "_aws" in record:
        return None  # a metric (EMF), for CloudWatch
    message = str(record.get("message", ""))
    if record.get("level") in _SHOWN_LEVELS or message.startswith(_ALWAYS_SHOWN):
        return _record_line(function, record)
    return None

"""The AWS cost per million events of each kind, from the warm bench's measured calls, CPU
and log lines, at AWS's published us-east-1 prices (read on ``PRICES_READ``; each price's
source, and which could be confirmed, in docs/performance.md).

Units follow AWS's on-demand rules: a DynamoDB write is 1 WRU per started KB of the item
(the larger of before and after: here its size once the event is done, as an event's items
only grow), a read 1 RRU per started 4 KB strongly consistent, half eventually consistent,
transactions double; an item's size is its attribute names' and values' bytes. SQS bills
each 64 KB chunk of a request's payload as one request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import SOURCES, heading, table

PRICES_READ = "2026-11-29"
M = Decimal(10**6)
PRICES = {  # USD, us-east-1, first pricing tier
    "apigw_request": Decimal("1.00") / M,  # HTTP API, per request (512 KB increments)
    "lambda_request": Decimal("0.20") / M,
    "lambda_gb_second": Decimal("0.0000133334"),  # arm64
    "sqs_request": Decimal("0.40") / M,  # standard queue
    "dynamodb_wru": Decimal("0.625") / M,  # on-demand, standard table class
    "dynamodb_rru": Decimal("0.125") / M,
    "secrets_call": Decimal("0.05") / 10**4,
    "logs_gb": Decimal("0.50"),  # CloudWatch Logs standard ingestion, per GiB
    "xray_trace": Decimal("5.00") / M,  # traces recorded
    "metric_month": Decimal("0.30"),  # custom metric, first 10,000
}
# Assumptions, not measurements (printed with the table):
MONTHLY_EVENTS = 1_000_000  # of each kind: what metrics and secret reads are amortised over
MONTH_SECONDS = 30 * 86400
ROUND_TRIP = {"aws": 0.010, "http": 0.150}  # seconds waited per remote call on Lambda
FULL_VCPU_MB = 1769  # Lambda gives one vCPU at 1,769 MB, a share of it below
PLATFORM_LOG_BYTES = 330  # Lambda's START, END and REPORT lines (with the X-Ray line)
XRAY_SAMPLED = Decimal("0.05")  # the default sampling rule past its 1 a second reservoir
POLLER_SQS = 2  # the event source mapping's receive and delete (batch of one)
HTTP_SERVICES = ("partnero", "ecwid", "stripe")
UNIT_NAMES = ("SQS requests", "WRU", "RRU", "secret calls", "log bytes", "metrics")
NOTE = """Lambda: 2 invocations at the template's MemorySize; duration = the bridge's CPU x {} MB /
MemorySize (the vCPU share) + an assumed {:.0f} ms per AWS call and {:.0f} ms per Partnero, Ecwid
or Stripe call, rounded up to 1 ms; no cold starts. SQS: the requests measured, per 64 KB
chunk, + {} of Lambda's poller (receive, delete; batch of one). Secrets: calls after caching
+ each function's secrets read again once a cache lifetime by one warm container. Logs: the
bytes printed + {} B of Lambda's lines an invocation. X-Ray: 2 traces an event at the default
rule's {:.0%} (its reservoir of 1 a second is extra). Metrics: a distinct EMF metric costs a
month's price; both amortised over {:,} events a month. Fixed monthly costs (secrets
stored, alarms, idle polls) are not per event."""
Fetch = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def _number(text: str) -> int:
    return math.ceil(len(text.lstrip("-").replace(".", "").strip("0") or "0") / 2) + 1


_SIZES: dict[str, Callable[[Any], int]] = {
    "S": lambda v: len(v.encode()),
    "N": _number,
    "B": len,
    "BOOL": lambda _v: 1,
    "NULL": lambda _v: 1,
    "SS": lambda v: sum(len(s.encode()) for s in v),
    "NS": lambda v: sum(map(_number, v)),
    "BS": lambda v: sum(map(len, v)),
    "L": lambda v: 3 + sum(value_size(e) + 1 for e in v),
    "M": lambda v: 3 + item_size(v) + len(v),
}


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    return _SIZES[kind](raw)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in (item or {}).items())


def rru(item: dict[str, Any] | None, consistent: bool) -> float:
    return max(1, math.ceil(item_size(item) / 4096)) * (1.0 if consistent else 0.5)


def wru(spec: dict[str, Any], fetch: Fetch) -> float:
    """A put by its item, an update by the item it left, a delete or check at least 1."""
    item = fetch(spec["TableName"], spec["Key"]) if "UpdateExpression" in spec else spec.get("Item")
    return float(max(1, math.ceil(item_size(item) / 1024)))


def dynamodb_units(operation: str, params: Any, answer: Any, fetch: Fetch) -> tuple[float, float]:
    """(WRU, RRU) of one DynamoDB call."""
    answer = answer or {}
    if operation == "TransactWriteItems":
        return sum(2 * wru(next(iter(e.values())), fetch) for e in params["TransactItems"]), 0.0
    if operation == "TransactGetItems":
        return 0.0, sum(2 * rru(r.get("Item"), True) for r in answer.get("Responses", []))
    if operation == "BatchGetItem":
        found = [(t, i) for t, items in answer.get("Responses", {}).items() for i in items]
        return 0.0, sum(
            rru(i, params["RequestItems"][t].get("ConsistentRead", False)) for t, i in found
        )
    if operation in ("GetItem", "Query"):
        items = answer.get("Items") or [answer.get("Item")]
        return 0.0, sum(rru(i, params.get("ConsistentRead", False)) for i in items)
    return wru(params, fetch), 0.0  # PutItem, UpdateItem, DeleteItem


def sqs_requests(operation: str, params: Any) -> float:
    bodies = [params] if operation == "SendMessage" else params.get("Entries", [])
    payload = sum(
        len(b["MessageBody"].encode()) + len(json.dumps(b.get("MessageAttributes", {})))
        for b in bodies
    )
    return float(max(1, math.ceil(payload / 65536)))


def aws_units(calls: Iterable[Any], count: int, fetch: Fetch) -> dict[str, float]:
    """Per event: DynamoDB WRU and RRU, SQS requests, Secrets Manager calls, AWS calls."""
    units = dict.fromkeys(("wru", "rru", "sqs", "secretsmanager", "aws_calls"), 0.0)
    for call in calls:
        if call.service == "dynamodb":
            written, read = dynamodb_units(call.operation, call.params, call.answer, fetch)
            units["wru"], units["rru"] = units["wru"] + written, units["rru"] + read
        units["sqs"] += sqs_requests(call.operation, call.params) if call.service == "sqs" else 0
        units["secretsmanager"] += call.service == "secretsmanager"
        units["aws_calls"] += call.service in ("dynamodb", "sqs", "secretsmanager")
    return {name: value / count for name, value in units.items()}


def log_figures(path: Path, count: int) -> dict[str, Any]:
    """Bytes printed per event, and the distinct metrics the EMF lines publish (CloudWatch
    bills each namespace, name and dimension values combination as one metric)."""
    text, metrics = path.read_bytes(), set()
    for line in (json.loads(raw) for raw in text.splitlines() if raw.startswith(b'{"_aws"')):
        for spec in line["_aws"].get("CloudWatchMetrics", []):
            for dimensions in spec.get("Dimensions", [[]]):
                where = ",".join(f"{d}={line.get(d)}" for d in dimensions)
                metrics |= {f"{spec['Namespace']}/{m['Name']} [{where}]" for m in spec["Metrics"]}
    return {"bytes": len(text) / count, "metrics": sorted(metrics)}


def billed_seconds(path: dict[str, Any], memory_mb: int) -> float:
    """Measured bridge CPU scaled to the memory's vCPU share, plus the assumed waits, rounded
    up to the millisecond as Lambda bills an invocation."""
    cpu = (sum(path["cpu"]) - sum(path["fake_cpu"])) / len(path["cpu"])
    http = sum(n for k, n in path["calls"].items() if k.split()[0] in HTTP_SERVICES)
    waits = path["units"]["aws_calls"] * ROUND_TRIP["aws"] + http * ROUND_TRIP["http"]
    return float(math.ceil((cpu * max(1.0, FULL_VCPU_MB / memory_mb) + waits) * 1000) / 1000)


def kind_cost(result: dict[str, Any], memory: list[int]) -> tuple[dict[str, Decimal], list[str]]:
    """USD per million events of one kind by item, and the units per event behind them."""
    paths = [result["ingest"], result["process"]]
    unit = {k: Decimal(repr(sum(p["units"][k] for p in paths))) for k in paths[0]["units"]}
    seconds = [billed_seconds(p, mb) for p, mb in zip(paths, memory, strict=True)]
    gb_seconds = sum(Decimal(repr(s)) * mb / 1024 for s, mb in zip(seconds, memory, strict=True))
    # Each function's secrets are read again once a cache lifetime by one warm container.
    rereads = sum(len(p["secrets"]) for p in paths) * MONTH_SECONDS / result["secret_cache_seconds"]
    secrets = unit["secretsmanager"] + Decimal(rereads / MONTHLY_EVENTS).quantize(Decimal("1e-4"))
    log_bytes = sum(
        (Decimal(repr(p["logs"]["bytes"])) for p in paths), 2 * Decimal(PLATFORM_LOG_BYTES)
    )
    metrics = len(set(paths[0]["logs"]["metrics"]) | set(paths[1]["logs"]["metrics"]))
    sqs, price = unit["sqs"] + POLLER_SQS, PRICES
    cost = {
        "API Gateway": price["apigw_request"],
        "Lambda requests": 2 * price["lambda_request"],
        "Lambda GB-s": gb_seconds * price["lambda_gb_second"],
        "SQS": sqs * price["sqs_request"],
        "DynamoDB": unit["wru"] * price["dynamodb_wru"] + unit["rru"] * price["dynamodb_rru"],
        "Secrets Mgr": secrets * price["secrets_call"],
        "Logs": log_bytes / 1024**3 * price["logs_gb"],
        "X-Ray": 2 * XRAY_SAMPLED * price["xray_trace"],
        "metrics": metrics * price["metric_month"] / MONTHLY_EVENTS,
    }
    lambda_ms = "+".join(f"{s * 1000:.0f}" for s in seconds)
    units = [lambda_ms, f"{sqs:.2f}", f"{unit['wru']:.1f}", f"{unit['rru']:.1f}", f"{secrets}"]
    return {k: v * M for k, v in cost.items()}, [*units, f"{log_bytes:.0f}", str(metrics)]


def section(results: dict[str, Any], stack: Any) -> None:
    heading(f"AWS cost per million events (us-east-1, arm64, prices read {PRICES_READ})")
    costs, units = {}, []
    for source, (ingest, process, label) in SOURCES.items():
        memory = [stack.functions[ingest].memory_mb, stack.functions[process].memory_mb]
        costs[label], kind_units = kind_cost(results[source], memory)
        units.append([label, *kind_units])
    items = list(next(iter(costs.values())))
    rows = [
        [k, *(f"{c[i]:.2f}" for i in items), f"{sum(c.values()):.2f}"] for k, c in costs.items()
    ]
    print(table(["USD per 1M events", *items, "total"], rows))
    print("\nper event (measured, but for the waits below):")
    print(table(["kind", "Lambda ms (ingest+process)", *UNIT_NAMES], units))
    print(
        NOTE.format(
            FULL_VCPU_MB,
            *(v * 1000 for v in ROUND_TRIP.values()),
            POLLER_SQS,
            PLATFORM_LOG_BYTES,
            XRAY_SAMPLED,
            MONTHLY_EVENTS,
        )
    )

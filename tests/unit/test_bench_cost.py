"""`make bench`'s AWS cost: the units AWS bills, and the cost of a measured kind of event.

The worker's measurements are synthetic here (the bench measures the real ones); what is
checked is the arithmetic a reader would otherwise have to trust: DynamoDB item sizes and
request units, SQS's 64 KB chunks, and a kind's dollars per million events.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from bench import cost

pytestmark = pytest.mark.unit


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    item = {
        "pk": {"S": "abc"},
        "n": {"N": "123.45"},
        "ok": {"BOOL": True},
        "l": {"L": [{"S": "x"}]},
    }
    # pk 2+3, n 1+(5 digits -> 3)+1, ok 2+1, l 1+3+(1+1)
    assert cost.item_size(item) == 5 + 5 + 3 + 6
    assert cost.item_size({"m": {"M": {"a": {"S": "bb"}}}}) == 1 + 3 + (1 + 2) + 1


@pytest.mark.parametrize(
    ("operation", "params", "answer", "units"),
    [
        ("GetItem", {"ConsistentRead": True}, {"Item": {"pk": {"S": "x" * 5000}}}, (0.0, 2.0)),
        ("GetItem", {}, {}, (0.0, 0.5)),  # a miss still costs half a unit, eventually consistent
        ("PutItem", {"Item": {"pk": {"S": "x" * 1100}}}, {}, (2.0, 0.0)),
        ("DeleteItem", {"Key": {"pk": {"S": "x"}}}, {}, (1.0, 0.0)),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"Item": {"pk": {"S": "x"}}}}, {"ConditionCheck": {}}]},
            {},
            (4.0, 0.0),
        ),
    ],
)
def test_request_units(
    operation: str, params: Any, answer: Any, units: tuple[float, float]
) -> None:
    assert cost.dynamodb_units(operation, params, answer, lambda _t, _k: None) == units


def test_an_update_is_charged_at_the_size_of_the_item_it_left() -> None:
    params = {"TableName": "t", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET a = :a"}
    left = {"pk": {"S": "k"}, "history": {"S": "h" * 3000}}
    assert cost.dynamodb_units("UpdateItem", params, {}, lambda _t, _k: left) == (3.0, 0.0)


def test_sqs_bills_each_64_kb_chunk_as_a_request() -> None:
    assert cost.sqs_requests("SendMessage", {"MessageBody": "x" * 100}) == 1
    assert cost.sqs_requests("SendMessage", {"MessageBody": "x" * 70_000}) == 2
    assert cost.sqs_requests("DeleteMessage", {"QueueUrl": "q"}) == 1


def _path(cpu: float, calls: dict[str, float], units: dict[str, float]) -> dict[str, Any]:
    base = dict.fromkeys(("wru", "rru", "sqs", "secretsmanager", "aws_calls"), 0.0)
    return {
        "cpu": [cpu] * 4,
        "fake_cpu": [0.0] * 4,
        "calls": calls,
        "units": {**base, **units},
        "secrets": ["arn:secret"],
        "logs": {"bytes": 1000.0, "metrics": ["PartneroBridge/Accepted [source=signup]"]},
    }


def test_a_kinds_cost_per_million_events() -> None:
    result = {
        "ingest": _path(0.001, {"sqs SendMessage": 1}, {"sqs": 1, "aws_calls": 1}),
        "process": _path(0.002, {"partnero POST customers": 1}, {"wru": 3, "aws_calls": 3}),
        "secret_cache_seconds": 300,
    }
    dollars, units = cost.kind_cost(result, [256, 256])
    # ingest: 1 ms CPU x 1769/256 + 10 ms -> 17 ms; process: 2 ms x 6.91 + 30 ms + 150 ms -> 194 ms
    assert units[0] == "17+194"
    expected_gb_s = (Decimal("0.017") + Decimal("0.194")) / 4
    assert dollars["Lambda GB-s"] == expected_gb_s * cost.PRICES["lambda_gb_second"] * cost.M
    assert dollars["SQS"] == Decimal("1.20")  # 1 send + the poller's receive and delete
    assert dollars["DynamoDB"] == Decimal("1.875")
    assert dollars["API Gateway"] == Decimal("1.00")
    assert dollars["metrics"] == Decimal("0.30")  # one metric, over a million events a month
    # two functions' secret read every 300 s for a month, over a million events
    assert units[4] == "0.0173"


def test_the_cost_section_prints_one_row_per_kind(capsys: pytest.CaptureFixture[str]) -> None:
    result = {
        "ingest": _path(0.001, {}, {"sqs": 1}),
        "process": _path(0.002, {}, {"wru": 3}),
        "secret_cache_seconds": 300,
    }
    functions = {
        name: SimpleNamespace(memory_mb=256)
        for names in cost.SOURCES.values()
        for name in names[:2]
    }
    cost.section(dict.fromkeys(cost.SOURCES, result), SimpleNamespace(functions=functions))
    out = capsys.readouterr().out
    assert all(label in out for *_, label in cost.SOURCES.values())
    assert "prices read 2026-11-29" in out

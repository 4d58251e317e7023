"""The nightly reconciliation's plan (chunks) and what a chunk publishes (metrics, logs)."""

from __future__ import annotations

import itertools
import json
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from pydantic import ValidationError

from partnero_bridge.reconcile.common import Window
from partnero_bridge.reconcile.compare import Finding, FindingKind
from partnero_bridge.reconcile.run import Report, RunResult
from partnero_bridge.reconcile.scheduled import (
    DAY_SECONDS,
    SCHEDULED_INPUT,
    Chunk,
    ScheduleSettings,
    anchored,
    difference_line,
    drift_amounts,
    night_key,
    plan,
    slices,
)
from tests.support.inprocess import load_function_module

pytestmark = pytest.mark.unit

H = 3600
MIDNIGHT = 1_795_996_800  # 2026-11-29 00:00 UTC (a multiple of a day since the epoch)
NOW = MIDNIGHT + 3 * H + 30 * 60  # 03:30 UTC, the default schedule
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.mark.parametrize(
    ("since", "until", "chunk", "expected"),
    [
        # Aligned: whole days.
        (
            MIDNIGHT - 2 * DAY_SECONDS,
            MIDNIGHT,
            DAY_SECONDS,
            [
                (MIDNIGHT - 2 * DAY_SECONDS, MIDNIGHT - DAY_SECONDS),
                (MIDNIGHT - DAY_SECONDS, MIDNIGHT),
            ],
        ),
        # Unaligned ends: the first and last slices are the partial ones.
        (
            MIDNIGHT - 1 * H,
            MIDNIGHT + 2 * H,
            DAY_SECONDS,
            [
                (MIDNIGHT - H, MIDNIGHT),
                (MIDNIGHT, MIDNIGHT + 2 * H),
            ],
        ),
        (
            MIDNIGHT + 1 * H,
            MIDNIGHT + 7 * H,
            6 * H,
            [
                (MIDNIGHT + H, MIDNIGHT + 6 * H),
                (MIDNIGHT + 6 * H, MIDNIGHT + 7 * H),
            ],
        ),
        # Inside one slice.
        (MIDNIGHT + H, MIDNIGHT + 2 * H, DAY_SECONDS, [(MIDNIGHT + H, MIDNIGHT + 2 * H)]),
        # Nothing to do.
        (MIDNIGHT, MIDNIGHT, DAY_SECONDS, []),
        (MIDNIGHT + H, MIDNIGHT, DAY_SECONDS, []),
    ],
)
def test_slices(since: int, until: int, chunk: int, expected: list[tuple[int, int]]) -> None:
    found = slices(since, until, chunk)
    assert found == expected
    # They meet, cover the window and none is longer than a chunk.
    for (_, end), (start, _) in itertools.pairwise(found):
        assert end == start
    assert all(0 < end - start <= chunk for start, end in found)


@pytest.mark.parametrize(
    ("days", "hours", "stripe", "stores", "scopes", "chunks"),
    [
        # 3 days at 03:30 cut at midnights: 4 slices (two partial), for each source.
        (3, 24, True, ["1003"], ["stripe", "ecwid:1003"], 8),
        (3, 24, True, [], ["stripe"], 4),
        (1, 24, False, ["1003", "2001"], ["ecwid:1003", "ecwid:2001"], 4),
        # Smaller chunks when a day does not fit the worker's timeout.
        (1, 6, True, [], ["stripe"], 5),
        (3, 1, True, [], ["stripe"], 73),
        # A store listed twice is planned once.
        (1, 24, False, ["1003", "1003"], ["ecwid:1003"], 2),
    ],
)
def test_plan(
    days: int, hours: int, stripe: bool, stores: list[str], scopes: list[str], chunks: int
) -> None:
    planned = plan(NOW, days, hours, stripe=stripe, stores=stores, heal=False)
    assert len(planned) == chunks
    assert sorted({c.scope for c in planned}) == sorted(scopes)
    for scope in scopes:
        own = [c for c in planned if c.scope == scope]
        # Each source's slices cover exactly the last `days` days, oldest first.
        assert own[0].since == NOW - days * DAY_SECONDS
        assert own[-1].until == NOW
        assert all(a.until == b.since for a, b in itertools.pairwise(own))
        assert all(c.until - c.since <= hours * H for c in own)
    assert not any(c.heal for c in planned)


def test_plan_carries_healing_and_messages_round_trip() -> None:
    planned = plan(NOW, 1, 24, stripe=True, stores=["1003"], heal=True)
    assert all(c.heal for c in planned)
    for chunk in planned:
        assert Chunk.model_validate_json(chunk.model_dump_json()) == chunk


@pytest.mark.parametrize(
    "body",
    [
        {"source": "ecwid", "since": 0, "until": 1},  # an Ecwid chunk names its store
        {"source": "stripe", "store": "1003", "since": 0, "until": 1},
        {"source": "stripe", "since": 5, "until": 1},
        {"source": "paypal", "since": 0, "until": 1},
        {"source": "ecwid", "store": "../x", "since": 0, "until": 1},
        {"source": "stripe", "since": 0, "until": 1, "apply": True},
    ],
)
def test_malformed_chunks_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Chunk.model_validate_json(json.dumps(body))


def test_template_defaults_are_valid_schedule_settings() -> None:
    template: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    params = template["Parameters"]
    settings = ScheduleSettings.model_validate(
        {
            "RECONCILE_DAYS": str(params["ReconcileDays"]["Default"]),
            "RECONCILE_CHUNK_HOURS": str(params["ReconcileChunkHours"]["Default"]),
            "RECONCILE_HEAL": params["ReconcileHeal"]["Default"],
        }
    )
    assert (settings.days, settings.chunk_hours, settings.heal) == (3, 24, False)
    for hours in params["ReconcileChunkHours"]["AllowedValues"]:
        ScheduleSettings.model_validate({"RECONCILE_CHUNK_HOURS": str(hours)})
    assert ScheduleSettings.model_validate({"RECONCILE_HEAL": "true"}).heal is True


# -- what a chunk publishes -------------------------------------------------------------------


def finding(
    kind: FindingKind, currency: str, due: str | None, held: str | None, **more: Any
) -> Finding:
    key = more.pop("key", f"stripe_pi_{kind.value}_{currency}")
    return Finding(
        kind=kind,
        ledger_key=key,
        source_id=key.removeprefix("stripe_"),
        transaction_key=key,
        currency=currency,
        due=Decimal(due) if due is not None else None,
        held=Decimal(held) if held is not None else None,
        ledger_holds=None,
        detail=more.pop("detail", ""),
        **more,
    )


FINDINGS = [
    finding(FindingKind.MISSING, "EUR", "40.00", None, key="stripe_pi_1", created=MIDNIGHT + 60),
    finding(FindingKind.WRONG_AMOUNT, "EUR", "30.00", "35.50", key="stripe_pi_2"),
    finding(FindingKind.EXTRA, "USD", None, "12.00", key="stripe_pi_3"),
    finding(FindingKind.NOT_REFERRED, "USD", "99.00", None, key="stripe_pi_4"),
    finding(FindingKind.OK, "USD", "10.00", "10.00", key="stripe_pi_5"),
]


def test_drift_amounts_are_the_actionable_money_per_currency() -> None:
    # Report-only kinds and agreement are not drift; a wrong amount counts either way.
    assert drift_amounts(FINDINGS) == {"EUR": Decimal("45.50"), "USD": Decimal("12.00")}


def test_a_difference_line_names_no_email() -> None:
    chunk = Chunk(source="stripe", since=0, until=10)
    line = difference_line(
        chunk,
        finding(
            FindingKind.NOT_REFERRED,
            "EUR",
            "5",
            None,
            detail="customer jane.doe@example.com unknown",
        ),
    )
    assert "jane.doe@example.com" not in json.dumps(line)
    assert "@example.com" in line["detail"]
    assert (line["kind"], line["actionable"], line["scope"]) == ("not_referred", False, "stripe")


def value(emitted: Any) -> float:
    """An EMF value: a number, or a list of one."""
    return float(emitted[0] if isinstance(emitted, list) else emitted)


def test_a_chunk_publishes_drift_metrics_the_alarms_watch(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PartneroBridge")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "partnero-bridge")
    worker = load_function_module("ReconcileWorkerFunction")
    caplog.set_level("INFO")
    from partnero_bridge.observability import metrics

    chunk = Chunk(source="stripe", since=MIDNIGHT, until=NOW)
    run = RunResult("stripe", "run1", Window(MIDNIGHT, NOW), NOW, False, False, list(FINDINGS))
    report = Report(source="stripe", since=MIDNIGHT, until=NOW, runs=[run])
    worker.publish(chunk, report)
    metrics.flush_metrics()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]

    blobs = [line for line in lines if "_aws" in line]
    count = [b for b in blobs if "DriftCount" in b]
    assert len(count) == 1
    (directive,) = count[0]["_aws"]["CloudWatchMetrics"]
    dimensions = {name: count[0][name] for name in directive["Dimensions"][0]}
    template: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    alarm = template["Resources"]["ReconcileStripeDriftAlarm"]["Properties"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert dimensions == {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert value(count[0]["DriftCount"]) == 3  # missing, wrong amount, extra

    amounts = {
        b["currency"]: value(b["DriftAmount"])
        for b in blobs
        if "DriftAmount" in b
        and b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == ["service", "source", "currency"]
    }
    assert amounts == {"EUR": 45.5, "USD": 12.0}

    differences = [r for r in caplog.records if r.getMessage() == "reconcile difference"]
    # One line per difference: the four that are not ok.
    assert sorted(getattr(r, "ledger_key", "") for r in differences) == [
        "stripe_pi_1",
        "stripe_pi_2",
        "stripe_pi_3",
        "stripe_pi_4",
    ]
    assert differences[0].payment_created == MIDNIGHT + 60
    assert [getattr(r, "kind", "") for r in differences] == [
        "missing",
        "wrong_amount",
        "extra",
        "not_referred",
    ]


# -- one night, several chunks -----------------------------------------------------------------


def night_chunks() -> list[Chunk]:
    return plan(NOW, 2, 24, stripe=True, stores=[], heal=False)


@pytest.mark.parametrize(
    ("created", "owner"),
    [
        (NOW - 2 * DAY_SECONDS + 60, 0),  # made in the first (partial) slice
        (MIDNIGHT - DAY_SECONDS, 1),  # on a boundary: the slice it starts
        (MIDNIGHT + 60, 2),
        (NOW, 2),  # the night's very end: the last slice
    ],
)
def test_a_report_only_difference_is_logged_by_the_chunk_of_its_time(
    created: int, owner: int
) -> None:
    chunks = night_chunks()
    assert len(chunks) == 3
    found = finding(FindingKind.NOT_REFERRED, "EUR", "5", None, created=created)
    assert [anchored(c, found) for c in chunks] == [i == owner for i in range(3)]


def test_an_older_payment_is_logged_by_each_chunk_that_lists_it() -> None:
    older = finding(FindingKind.NOT_REFERRED, "EUR", "5", None, created=NOW - 30 * DAY_SECONDS)
    unknown = finding(FindingKind.UNDECIDABLE, "EUR", None, None)
    for chunk in night_chunks():
        assert anchored(chunk, older)
        assert anchored(chunk, unknown)
    alone = Chunk(source="stripe", since=0, until=10)  # a hand-made chunk of no night
    assert anchored(alone, finding(FindingKind.NOT_REFERRED, "EUR", "5", None, created=NOW))
    assert night_key(alone, "stripe_pi_1") is None


def test_one_container_publishes_each_chunk_under_its_own_source_without_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker = load_function_module("ReconcileWorkerFunction")
    sources = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dimension set twice warns: that is a failure here
        for source in ("stripe", "ecwid", "stripe"):
            store = "1003" if source == "ecwid" else None
            chunk = Chunk(source=source, store=store, since=MIDNIGHT, until=NOW)
            run = RunResult(source, "r", Window(MIDNIGHT, NOW), NOW, False, False, [])
            worker.publish(chunk, Report(source, MIDNIGHT, NOW, [run]))
            blob = next(
                json.loads(line)
                for line in capsys.readouterr().out.splitlines()
                if '"DriftCount"' in line
            )
            sources.append((blob["source"], value(blob["DriftCount"])))
    assert sources == [("stripe", 0.0), ("ecwid", 0.0), ("stripe", 0.0)]


def test_a_payment_two_chunks_list_is_counted_once(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    worker = load_function_module("ReconcileWorkerFunction")
    from partnero_bridge.observability import metrics

    caplog.set_level("INFO")
    claimed: set[str] = set()

    def claim(chunk: Chunk) -> Any:
        def first(ledger_key: str) -> bool:
            key = night_key(chunk, ledger_key)
            assert key is not None
            assert key.startswith(f"reconcile#night#{NOW}#")
            new = key not in claimed
            claimed.add(key)
            return new

        return first

    # Made in the first slice, refunded in the last: both chunks list it, missing.
    made = NOW - 2 * DAY_SECONDS + 60
    lost = finding(FindingKind.MISSING, "EUR", "40.00", None, key="stripe_pi_9", created=made)
    counts = []
    for chunk in (night_chunks()[0], night_chunks()[2]):
        run = RunResult("stripe", "r", Window(chunk.since, chunk.until), NOW, False, False, [lost])
        worker.publish(chunk, Report("stripe", chunk.since, chunk.until, [run]), claim(chunk))
        metrics.flush_metrics()
        blob = next(
            json.loads(line)
            for line in capsys.readouterr().out.splitlines()
            if '"DriftCount"' in line
        )
        counts.append(value(blob["DriftCount"]))
    assert counts == [1, 0]
    logged = [r for r in caplog.records if r.getMessage() == "reconcile difference"]
    assert len(logged) == 1


# -- the worker's handler ------------------------------------------------------------------------


def record(body: str, receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": f"m{receives}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receives)},
    }


def test_the_worker_resumes_a_chunk_after_its_first_receive_and_hands_back_a_stopped_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from partnero_bridge.reconcile.run import RunStopped

    worker = load_function_module("ReconcileWorkerFunction")
    seen: list[tuple[str, bool]] = []

    def reconcile_chunk(chunk: Chunk, *, restart: bool) -> None:
        seen.append((chunk.scope, restart))
        if chunk.store == "2001":
            raise RunStopped("ecwid:2001: Ecwid answered 503")

    monkeypatch.setattr(worker, "reconcile_chunk", reconcile_chunk)
    context = LambdaContext()
    context._function_name = "ReconcileWorkerFunction"  # type: ignore[attr-defined]
    context._aws_request_id = "r1"  # type: ignore[attr-defined]
    context._memory_limit_in_mb = 256  # type: ignore[attr-defined]
    context._invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:x"  # type: ignore[attr-defined]
    stripe = Chunk(source="stripe", since=0, until=10).model_dump_json()
    ecwid = Chunk(source="ecwid", store="2001", since=0, until=10).model_dump_json()
    event = {
        "Records": [
            record(stripe, 1),  # a first receive starts afresh
            record(stripe, 2),  # a later one resumes from the checkpoint
            record(ecwid, 3),  # a remote stopped it: handed back, to resume
            record('{"source": "paypal"}', 4),  # not a chunk: dropped, never retried
        ]
    }
    answer = worker.handler(event, context)
    assert seen == [("stripe", True), ("stripe", False), ("ecwid:2001", False)]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m3"}]}


def test_the_local_stack_reads_the_schedule_and_its_target() -> None:
    from partnero_bridge_cli.local.template import read_stack

    stack = read_stack(TEMPLATE.parent)
    (schedule,) = stack.schedules.values()
    assert (schedule.logical_id, schedule.function) == (
        "ReconcileScheduleRule",
        "ReconcileScheduleFunction",
    )
    assert schedule.input == SCHEDULED_INPUT
    assert schedule.expression == {"Ref": "ReconcileSchedule"}
    # The worker is fed by the reconcile queue, one chunk per invocation.
    worker = stack.consumer_of("ReconcileQueue")
    assert (worker.logical_id, worker.handler) == ("ReconcileWorkerFunction", "worker.handler")
    assert worker.triggers[0].batch_size == 1

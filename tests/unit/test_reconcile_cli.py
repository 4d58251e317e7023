"""``partnero-bridge reconcile``'s own parts: its dates, and its report as a table, JSON and
CSV (money as text with the currency's minor unit, the manual transaction never named)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from decimal import Decimal

import pytest

from partnero_bridge.reconcile.common import Window
from partnero_bridge.reconcile.compare import Finding, FindingKind
from partnero_bridge.reconcile.run import Report, RunResult
from partnero_bridge_cli.reconcile import parse_when, render

pytestmark = pytest.mark.unit


def test_dates_as_the_command_takes_them() -> None:
    assert parse_when("2026-11-01") == 1793491200
    assert parse_when("2026-11-01", end_of_day=True) == 1793491200 + 86399
    assert parse_when("2026-11-01T12:00:00Z") == 1793491200 + 43200
    assert parse_when("2026-11-01T12:00:00+02:00") == 1793491200 + 36000
    assert parse_when("1793491200") == 1793491200
    with pytest.raises(argparse.ArgumentTypeError, match="not a date"):
        parse_when("yesterday")


def finding(
    kind: FindingKind, key: str, due: str | None, held: str | None, currency: str
) -> Finding:
    return Finding(
        kind=kind,
        ledger_key=f"stripe#pi:{key}",
        source_id=key,
        transaction_key=f"stripe_{key}",
        currency=currency,
        due=Decimal(due) if due is not None else None,
        held=Decimal(held) if held is not None else None,
        ledger_holds=None,
        detail=f"{kind.value} detail",
    )


def report() -> Report:
    run = RunResult("stripe", "run1", Window(100, 200), 200, resumed=False, applied=False)
    run.findings = [
        finding(FindingKind.OK, "pi_ok", "5.00", "5", "USD"),
        finding(FindingKind.MISSING, "pi_b", "10.10", None, "USD"),
        finding(FindingKind.MISSING, "pi_a", "1000", None, "JPY"),
        finding(FindingKind.WRONG_AMOUNT, "pi_c", "7.00", "12.0", "EUR"),
    ]
    run.listed = 9
    return Report("stripe", 100, None, [run], {"stripe": 12, "partnero": 4}, 1.5)


def test_the_table_has_totals_per_kind_and_currency_and_the_rows_that_differ() -> None:
    text = render(report(), "table")
    assert "Reconcile stripe, 1970-01-01T00:01:40Z .. the run start" in text
    assert "remote calls: partnero 4, stripe 12 (4.0 per payment)" in text
    lines = text.splitlines()
    assert any(line.split() == ["missing", "1", "USD", "10.10", "0.00", "10.10"] for line in lines)
    assert any(line.split() == ["missing", "1", "JPY", "1000", "0", "1000"] for line in lines)
    assert any(
        line.split()[:6] == ["wrong_amount", "pi_c", "EUR", "7.00", "12.00", "-5.00"]
        for line in lines
    )
    assert "pi_ok" not in text
    assert "pi_ok" in render(report(), "table", every=True)


def test_json_and_csv_carry_the_same_findings() -> None:
    data = json.loads(render(report(), "json"))
    assert data["counts"]["missing"] == 2
    assert data["totals"]["wrong_amount"]["EUR"] == {
        "count": 1,
        "due": "7.00",
        "held": "12.00",
        "difference": "-5.00",
    }
    assert [r["source_id"] for r in data["rows"]] == ["pi_a", "pi_b", "pi_c"]
    rows = list(csv.DictReader(io.StringIO(render(report(), "csv"))))
    assert [(r["kind"], r["source_id"], r["due"], r["held"]) for r in rows] == [
        ("missing", "pi_a", "1000", ""),
        ("missing", "pi_b", "10.10", ""),
        ("wrong_amount", "pi_c", "7.00", "12.00"),
    ]

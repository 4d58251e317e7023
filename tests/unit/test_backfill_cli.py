"""``partnero-bridge backfill``'s pure parts: which missing payments it makes (the
cut-over), when it refuses, and its totals per currency and partner."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from partnero_bridge.reconcile.common import Window
from partnero_bridge.reconcile.compare import Finding, FindingKind
from partnero_bridge.reconcile.run import Report, RunResult
from partnero_bridge_cli.backfill import BY_CUSTOMER, plan, refusal, render

CUT = 1_700_000_000


def finding(
    kind: FindingKind, key: str, due: str, currency: str, created: int | None, partner: str | None
) -> Finding:
    return Finding(
        kind=kind,
        ledger_key=f"payment#{key}",
        source_id=key,
        transaction_key=f"stripe_{key}",
        currency=currency,
        due=Decimal(due),
        held=None,
        ledger_holds=None,
        detail="",
        created=created,
        partner_key=partner,
    )


def report() -> Report:
    run = RunResult("stripe", "r1", Window(0, 2 * CUT), 0, False, False)
    run.findings = [
        finding(FindingKind.MISSING, "in_1", "10.00", "USD", CUT - 1, "alpha"),
        finding(FindingKind.MISSING, "in_2", "20.50", "USD", CUT, "alpha"),
        finding(FindingKind.MISSING, "in_3", "5.00", "EUR", CUT + 10, None),
        finding(FindingKind.MISSING, "in_4", "7.00", "EUR", None, "beta"),
        finding(FindingKind.WRONG_AMOUNT, "in_5", "9.00", "EUR", CUT + 20, "beta"),
        finding(FindingKind.NOT_REFERRED, "in_6", "3.00", "USD", CUT + 30, None),
    ]
    found = Report("stripe", 0, None)
    found.runs.append(run)
    return found


def test_without_a_cut_over_every_missing_payment_and_only_those_is_made() -> None:
    found = plan(report(), 0, None, None)
    assert [f.source_id for f in found.create] == ["in_4", "in_3", "in_1", "in_2"]
    assert found.before_cutover == []
    data = found.to_json()
    assert data["per_currency"] == {
        "EUR": {"count": 2, "amount": "12.00"},
        "USD": {"count": 2, "amount": "30.50"},
    }
    assert {(p["partner"], p["currency"]): p["count"] for p in data["per_partner"]} == {
        (BY_CUSTOMER, "EUR"): 1,
        ("beta", "EUR"): 1,
        ("alpha", "USD"): 2,
    }


def test_the_cut_over_leaves_older_payments_and_ones_of_unknown_time() -> None:
    found = plan(report(), 0, None, CUT)
    assert [f.source_id for f in found.create] == ["in_3", "in_2"]
    assert sorted(f.source_id for f in found.before_cutover) == ["in_1", "in_4"]
    # The partner a customer was referred by, once Partnero named it.
    found.partners["payment#in_3"] = "gamma"
    assert [p["partner"] for p in found.to_json()["per_partner"]] == ["alpha", "gamma"]


def test_other_transactions_for_the_customers_refuse_only_without_a_cut_over() -> None:
    found = plan(report(), 0, None, None)
    assert refusal(found) is None
    found.foreign_customers = ["someone@example.com"]
    why = refusal(found)
    assert why is not None
    assert "--not-before" in why
    assert "someone@example.com" not in why  # counts customers, names none
    with_cut = plan(report(), 0, None, CUT)
    with_cut.foreign_customers = ["someone@example.com"]
    assert refusal(with_cut) is None


def test_table_json_and_csv_list_the_same_payments() -> None:
    found = plan(report(), 0, None, CUT)
    table = render(found, "table", applied=False)
    assert "would create 2 transaction(s)" in table
    assert "2 missing before --not-before: never created" in table
    assert "in_1" not in table
    assert json.loads(render(found, "json", applied=False))["count"] == 2
    rows = list(csv.DictReader(io.StringIO(render(found, "csv", applied=True))))
    assert [r["source_id"] for r in rows] == ["in_3", "in_2"]
    assert "queued to create 2" in render(found, "table", applied=True)


def test_the_tables_columns_line_up_and_times_are_readable() -> None:
    found = plan(report(), 0, None, CUT)
    lines = render(found, "table", applied=False).splitlines()
    partners = lines[lines.index(next(x for x in lines if x.startswith("PARTNER"))) :][:3]
    payments = lines[lines.index(next(x for x in lines if x.startswith("PAYMENT"))) :]
    assert partners[0].split() == ["PARTNER", "CURRENCY", "COUNT", "AMOUNT"]
    assert partners[2].split() == ["alpha", "USD", "1", "20.50"]
    # Every cell starts under its header (the partner "(customer's referral)" too).
    for table in (partners, payments):
        header = table[0]
        starts = [header.index(name) for name in header.split()]
        for row in table[1:]:
            assert all(row[start - 1] == " " and row[start] != " " for start in starts[1:]), row
    assert payments[1].split("  ")[-1] == "2023-11-14 22:13:30 UTC"  # CUT + 10 seconds
    assert payments[2].endswith("2023-11-14 22:13:20 UTC")
    assert "1700000010" not in "\n".join(payments)

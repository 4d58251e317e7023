"""A payment's delivery history (``ledger.records.HistoryEntry``), the ids ``explain`` takes
and the local stack's settings it reads with.

The history must be bounded (the 50 most recent, none older than the retention), survive
the store unchanged (amounts as exact text), and never hold an e-mail address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnero_bridge.ledger.records import (
    HISTORY_LIMIT,
    CommissionRecord,
    HistoryEntry,
    append_history,
    mask_emails_in,
    within_retention,
)
from partnero_bridge_cli.explain import EcwidId, ExplainError, StripeId, parse_id
from partnero_bridge_cli.stack_settings import local_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1, tzinfo=UTC)


def entry(at: datetime, n: int = 0, **values: object) -> HistoryEntry:
    return HistoryEntry.model_validate(
        {"at": at, "delivery_id": f"evt_{n}", "event_type": "charge.refunded", "outcome": "sent"}
        | values
    )


def test_the_history_keeps_the_most_recent_50() -> None:
    history: list[HistoryEntry] = []
    for n in range(60):
        history = append_history(history, entry(START + timedelta(minutes=n), n), 400)

    assert len(history) == HISTORY_LIMIT
    assert [e.delivery_id for e in history] == [f"evt_{n}" for n in range(10, 60)]


def test_entries_older_than_the_retention_are_dropped_when_written_and_never_shown() -> None:
    old = entry(START, 1)
    recent = entry(START + timedelta(days=30), 2)
    history = append_history([old, recent], entry(START + timedelta(days=31), 3), 30)
    assert [e.delivery_id for e in history] == ["evt_2", "evt_3"]

    # Nothing written since: the old entry is still stored, but not shown.
    assert within_retention([old, recent], START + timedelta(days=31), 30) == [recent]


def test_a_history_round_trips_through_the_item_with_exact_amounts() -> None:
    record = CommissionRecord(
        pk="stripe#pi:pi_1",
        history=[
            entry(START, 1, action="created", amount=Decimal("12.340"), currency="KWD"),
            entry(START + timedelta(seconds=1), 2, outcome="retrying", reason="retryable"),
        ],
    )
    item = record.to_item()

    assert CommissionRecord.from_item(item) == record
    stored = item["history"]["L"][0]["M"]  # type: ignore[index]
    assert stored["amount"] == {"S": "12.340"}
    assert "amount" not in item["history"]["L"][1]["M"]  # type: ignore[index]


def test_no_e_mail_address_is_kept_in_an_entry_or_a_record_detail() -> None:
    text = "Partnero answered 422: customer Jane.Doe@Example.com (jane@x.co) not found"
    kept = entry(START, detail=text).detail

    assert kept == "Partnero answered 422: customer Ja***@Example.com (ja***@x.co) not found"
    assert CommissionRecord(pk="x", detail=text).detail == kept


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab@.* x"), max_size=30))
def test_masking_twice_changes_nothing(text: str) -> None:
    once = mask_emails_in(text)
    assert mask_emails_in(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in_1Abc", StripeId("in_1Abc", "invoice")),
        ("pi_ONEOFF", StripeId("pi_ONEOFF", "payment_intent")),
        ("ch_3X", StripeId("ch_3X", "charge")),
        ("py_3X", StripeId("py_3X", "charge")),
        ("cs_test_a1", StripeId("cs_test_a1", "checkout.session")),
        ("re_1", StripeId("re_1", "refund")),
        ("pyr_1", StripeId("pyr_1", "refund")),
        ("dp_1", StripeId("dp_1", "dispute")),
        ("1003:123", EcwidId("1003", "123")),
        (" 1003:ORDER-123 ", EcwidId("1003", "ORDER-123")),
        ("01003:K8XTQ", EcwidId("1003", "K8XTQ")),
    ],
)
def test_explain_takes_stripe_ids_and_ecwid_store_order(
    text: str, expected: StripeId | EcwidId
) -> None:
    assert parse_id(text) == expected


@pytest.mark.parametrize("text", ["", "in_", "1003:", ":123", "cus_123", "order 17"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ExplainError):
        parse_id(text)


def test_the_local_stacks_settings_are_those_make_run_gives_the_process_function() -> None:
    stripe = local_settings(
        ROOT, "StripeEventProcessFunction", {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    )
    assert stripe.ledger_table == "partnero-bridge-local-LedgerTable"
    assert stripe.partnero_secret_arn == "partnero-bridge-local/partnero"
    assert stripe.stripe_api_secret_arn == "partnero-bridge-local/stripe-api"
    assert stripe.partnero_api_url == "http://127.0.0.1:4010/v1"
    assert stripe.stripe_api_url == "http://127.0.0.1:4030"
    assert stripe.stripe_livemode is False
    assert stripe.history_retention_days == 400

    ecwid = local_settings(
        ROOT,
        "EcwidOrderProcessFunction",
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "BRIDGE_ECWID_PORT": "4999",
            "ECWID_AMOUNT_BASIS": "total",
            "BRIDGE_HISTORY_RETENTION_DAYS": "30",
        },
    )
    assert ecwid.ecwid_api_url == "http://127.0.0.1:4999/api/v3"
    assert ecwid.ecwid_api_secret_arn == "partnero-bridge-local/ecwid"
    assert ecwid.ecwid_amount_basis == "total"
    assert ecwid.history_retention_days == 30

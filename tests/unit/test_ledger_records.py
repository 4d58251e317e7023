"""The ledger's persisted records (``partnero_bridge.ledger.records``) and their DynamoDB form.

Two promises: every record survives ``Model.from_item(m.to_item())`` unchanged, amounts
keeping their exact Decimal text ("12.340" stays "12.340"); and items exactly as the
previous release wrote them (DynamoDB attribute-value dicts) are read as they are.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from partnero_bridge.decision import Target, stable_identity
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import (
    Adjustment,
    AliasRecord,
    CommissionRecord,
    CustomerRecord,
    LedgerMeta,
    LedgerRecord,
    Recheck,
    StripeCustomerRecord,
)
from partnero_bridge.stripe.facts import PaymentFacts

pytestmark = pytest.mark.unit

D = Decimal
EXAMPLES = settings(max_examples=200, deadline=None)

# --- strategies: valid field values ------------------------------------------------------

texts = st.text(max_size=20)
names = st.text(min_size=1, max_size=12)  # map keys and partition keys: never empty
optional_texts = st.none() | texts
unix = st.integers(min_value=0, max_value=4_102_444_800)  # up to 2100
counts = st.integers(min_value=0, max_value=10**12)
amounts = st.builds(
    lambda units, places: D(units).scaleb(-places),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=0, max_value=3),
)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD", "usd"])

payment_facts = st.builds(
    PaymentFacts,
    amount=st.none() | amounts,
    gross_minor=counts,
    currency=st.none() | currencies,
    rank=st.integers(min_value=0, max_value=3),
    opted_out=st.booleans(),
    charge_refunded=st.dictionaries(names, counts, max_size=3),
    refunds=st.dictionaries(names, counts, max_size=3),
    failed_refunds=st.lists(names, max_size=3),
    disputes=st.dictionaries(names, st.sampled_from(["open", "won", "lost"]), max_size=3),
)
adjustments = st.builds(
    Adjustment,
    at=unix,
    transaction_key=names,
    held=amounts,
    target=amounts,
    currency=currencies,
    reason=texts,
)
rechecks = st.builds(
    Recheck,
    at=unix,
    source=st.sampled_from(["ecwid", "stripe"]),
    ref=st.dictionaries(names, texts, max_size=3),
)
commission_records = st.builds(
    CommissionRecord,
    pk=names,
    commission_state=st.sampled_from(["recorded", "absent", "not_referred"]),
    amount=st.none() | amounts,
    currency=st.none() | currencies,
    transaction_key=optional_texts,
    customer_key=optional_texts,
    partner_key=optional_texts,
    created_at_epoch=st.none() | unix,
    transaction_keys=st.lists(names, max_size=3),
    reason=optional_texts,
    detail=optional_texts,
    facts=st.none() | payment_facts,
    adjustments=st.lists(adjustments, max_size=2),
    recheck=st.none() | rechecks,
    aliases=st.lists(names, max_size=3),
    last_delivery_id=optional_texts,
    updated_at=optional_texts,
    lease_token=optional_texts,
    lease_until=st.none() | unix,
    needs_check=st.none() | st.booleans(),
)
alias_records = st.builds(AliasRecord, pk=names, alias_of=names)
customer_records = st.builds(
    CustomerRecord,
    pk=names,
    status=st.sampled_from(["created", "exists", "not_referred", "pending"]),
    partner_key=optional_texts,
    last_delivery_id=optional_texts,
    detail=optional_texts,
    created_at=optional_texts,
    updated_at=optional_texts,
    deliveries=st.none() | counts,
    not_referred_sales=st.dictionaries(names, rechecks, max_size=3),
)
stripe_customer_records = st.builds(
    StripeCustomerRecord,
    pk=names,
    customer_key=optional_texts,
    partner_key=optional_texts,
    opted_out=st.none() | st.booleans(),
    updated_at=optional_texts,
)
ledger_metas = st.builds(LedgerMeta, pk=names, since=unix)


def decimal_texts(value: Any, path: str = "") -> dict[str, str]:
    """Every Decimal inside a model, by path, as its exact text (== ignores the exponent)."""
    if isinstance(value, BaseModel):
        return decimal_texts(dict(value), path)
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, item in value.items():
            found |= decimal_texts(item, f"{path}.{key}")
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found |= decimal_texts(item, f"{path}[{index}]")
        return found
    return {path: str(value)} if isinstance(value, Decimal) else {}


def assert_round_trip(record: LedgerRecord) -> None:
    item = record.to_item()

    back = type(record).from_item(item)

    assert back == record
    assert decimal_texts(back) == decimal_texts(record)
    assert item["entity"] == {"S": record.entity_name}
    assert back.to_item() == item


# --- round trips -------------------------------------------------------------------------


@EXAMPLES
@given(commission_records)
def test_commission_record_round_trips(record: CommissionRecord) -> None:
    assert_round_trip(record)
    item = record.to_item()
    if record.amount is not None:
        # Stored as a string, digit for digit: the store never rounds an amount.
        assert item["amount"] == {"S": str(record.amount)}


@EXAMPLES
@given(alias_records)
def test_alias_record_round_trips(record: AliasRecord) -> None:
    assert_round_trip(record)


@EXAMPLES
@given(customer_records)
def test_customer_record_round_trips(record: CustomerRecord) -> None:
    assert_round_trip(record)


@EXAMPLES
@given(stripe_customer_records)
def test_stripe_customer_record_round_trips(record: StripeCustomerRecord) -> None:
    assert_round_trip(record)


@EXAMPLES
@given(ledger_metas)
def test_ledger_meta_round_trips(record: LedgerMeta) -> None:
    assert_round_trip(record)


@EXAMPLES
@given(payment_facts)
def test_payment_facts_round_trip_as_json_text(facts: PaymentFacts) -> None:
    # The previous release kept facts as JSON text; this one reads that text too.
    back = PaymentFacts.model_validate_json(facts.model_dump_json())

    assert back == facts
    assert decimal_texts(back) == decimal_texts(facts)


@pytest.mark.parametrize("text", ["12.340", "62.10", "0.001", "8820", "0", "0.00", "-5.50", "1E+2"])
def test_amount_text_is_kept_exactly(text: str) -> None:
    record = CommissionRecord(
        pk="ecwid#1003#1",
        commission_state="recorded",
        amount=D(text),
        facts=PaymentFacts(amount=D(text)),
        adjustments=[
            Adjustment(
                at=1, transaction_key="k", held=D(text), target=D(text), currency="USD", reason="r"
            )
        ],
    )

    item = record.to_item()
    back = CommissionRecord.from_item(item)

    assert item["amount"] == {"S": text}
    assert item["facts"]["M"]["amount"] == {"S": text}
    assert str(back.amount) == text
    assert back.facts is not None
    assert str(back.facts.amount) == text
    assert (str(back.adjustments[0].held), str(back.adjustments[0].target)) == (text, text)


@pytest.mark.parametrize(
    ("record", "entity"),
    [
        (CommissionRecord(pk="p"), "transaction"),
        (AliasRecord(pk="p", alias_of="q"), "alias"),
        (CustomerRecord(pk="p"), "customer"),
        (StripeCustomerRecord(pk="p"), "stripe_customer"),
        (LedgerMeta(pk=keys.META, since=1), "meta"),
    ],
    ids=["transaction", "alias", "customer", "stripe-customer", "meta"],
)
def test_entity_names_are_those_the_previous_release_wrote(
    record: LedgerRecord, entity: str
) -> None:
    assert record.to_item()["entity"] == {"S": entity}


def test_none_fields_are_left_out_of_the_item() -> None:
    item = CommissionRecord(pk="ecwid#1003#1").to_item()

    assert set(item) == {
        "pk",
        "entity",
        "commission_state",
        "transaction_keys",
        "adjustments",
        "aliases",
        "history",
    }


# --- items exactly as the previous release wrote them ------------------------------------

PREVIOUS_ECWID_ITEM: dict[str, Any] = {
    "pk": {"S": "ecwid#1003#9001"},
    "entity": {"S": "transaction"},
    "commission_state": {"S": "recorded"},
    "amount": {"S": "62.10"},
    "currency": {"S": "USD"},
    "transaction_key": {"S": "ecwid_1003_E2E1"},
    "customer_key": {"S": "jane.doe@example.com"},
    "partner_key": {"S": "demo-partner"},
    "created_at_epoch": {"N": "1795210000"},
    "last_delivery_id": {"S": "ecwid-x"},
    "detail": {"S": "created 62.10 USD"},
    "updated_at": {"S": "2026-11-01T00:00:00+00:00"},
}

# The previous release's facts: json.dumps(dump(), sort_keys=True), no failed_refunds.
PREVIOUS_FACTS_TEXT = json.dumps(
    {
        "amount": "20.00",
        "charge_refunded": {"ch_3Q1": 400},
        "currency": "USD",
        "disputes": {},
        "gross_minor": 2400,
        "opted_out": False,
        "rank": 2,
        "refunds": {"re_3Q1": 400},
    },
    sort_keys=True,
)
PREVIOUS_STRIPE_ITEM: dict[str, Any] = {
    "pk": {"S": "stripe#invoice:in_1Q1"},
    "entity": {"S": "transaction"},
    "commission_state": {"S": "recorded"},
    "amount": {"S": "16.67"},
    "currency": {"S": "USD"},
    "transaction_key": {"S": "stripe_in_1Q1"},
    "customer_key": {"S": "sam@example.net"},
    "partner_key": {"S": "acme"},
    "created_at_epoch": {"N": "1795200000"},
    "facts": {"S": PREVIOUS_FACTS_TEXT},
    "last_delivery_id": {"S": "evt_1Q1"},
    "detail": {"S": "replaced 20.00 with 16.67 USD"},
    "updated_at": {"S": "2026-11-02T00:00:00+00:00"},
}


def test_previous_release_ecwid_order_item() -> None:
    record = CommissionRecord.from_item(PREVIOUS_ECWID_ITEM)

    assert record.pk == "ecwid#1003#9001"
    assert record.commission_state == "recorded"
    assert str(record.amount) == "62.10"
    assert record.currency == "USD"
    assert record.transaction_key == "ecwid_1003_E2E1"
    assert record.customer_key == "jane.doe@example.com"
    assert record.partner_key == "demo-partner"
    assert record.created_at_epoch == 1795210000
    assert isinstance(record.created_at_epoch, int)
    assert record.last_delivery_id == "ecwid-x"
    assert record.detail == "created 62.10 USD"
    assert record.updated_at == "2026-11-01T00:00:00+00:00"
    assert record.transaction_keys == []
    assert (record.facts, record.recheck, record.adjustments) == (None, None, [])
    assert record.identity_fixed
    assert record.holds == D("62.10")
    # Written back, the old attributes keep their names and exact values.
    item = record.to_item()
    assert {name: item[name] for name in PREVIOUS_ECWID_ITEM} == PREVIOUS_ECWID_ITEM


def test_previous_release_ecwid_item_fixes_the_identity() -> None:
    record = CommissionRecord.from_item(PREVIOUS_ECWID_ITEM)
    target = Target(
        transaction_key="ecwid_1003_E2E1",
        amount=D("50.00"),
        currency="USD",
        reason="partially_refunded",
        detail="order is PARTIALLY_REFUNDED",
        customer_key="edited@example.com",
        partner_key=None,
        created_at=1795299999,
    )

    fixed = stable_identity(target, record)

    assert (fixed.customer_key, fixed.partner_key, fixed.created_at) == (
        "jane.doe@example.com",
        "demo-partner",
        1795210000,
    )


def test_previous_release_stripe_item_with_facts_as_json_text() -> None:
    record = CommissionRecord.from_item(PREVIOUS_STRIPE_ITEM)

    facts = record.facts
    assert facts is not None
    assert str(facts.amount) == "20.00"
    assert facts.gross_minor == 2400
    assert facts.currency == "USD"
    assert facts.rank == 2
    assert facts.opted_out is False
    assert facts.charge_refunded == {"ch_3Q1": 400}
    assert facts.refunds == {"re_3Q1": 400}
    assert facts.failed_refunds == []
    assert facts.disputes == {}
    assert record.holds == D("16.67")
    assert record.identity_fixed
    # This release writes facts as a map, and reads its own form back the same.
    item = record.to_item()
    assert "M" in item["facts"]
    assert item["facts"]["M"]["amount"] == {"S": "20.00"}
    assert CommissionRecord.from_item(item) == record


def test_previous_release_facts_without_an_amount() -> None:
    text = json.dumps({"amount": None, "gross_minor": 0, "currency": None, "opted_out": True})
    item = {**PREVIOUS_STRIPE_ITEM, "commission_state": {"S": "absent"}, "facts": {"S": text}}
    del item["amount"]

    record = CommissionRecord.from_item(item)

    assert record.facts is not None
    assert record.facts.amount is None
    assert record.facts.opted_out is True
    assert record.holds is None


@pytest.mark.parametrize(
    ("changes", "identity_fixed", "holds"),
    [
        pytest.param({}, True, "62.10", id="recorded"),
        pytest.param(
            {"commission_state": {"S": "absent"}, "amount": None, "detail": {"S": "reversed"}},
            True,
            None,
            id="reversed",
        ),
        pytest.param(
            {"commission_state": {"S": "not_referred"}, "amount": None},
            False,
            None,
            id="not-referred",
        ),
        pytest.param(
            {
                "commission_state": {"S": "absent"},
                "amount": None,
                "transaction_key": None,
                "customer_key": None,
                "partner_key": None,
                "created_at_epoch": None,
                "currency": None,
            },
            False,
            None,
            id="never-sent",
        ),
        pytest.param(
            {
                "lease_token": {"S": "0f3c"},
                "lease_until": {"N": "1795210300"},
                "needs_check": {"BOOL": True},
            },
            True,
            "62.10",
            id="crashed-attempt",
        ),
    ],
)
def test_previous_release_commission_states(
    changes: dict[str, Any], identity_fixed: bool, holds: str | None
) -> None:
    item = dict(PREVIOUS_ECWID_ITEM)
    for name, value in changes.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value

    record = CommissionRecord.from_item(item)

    assert record.identity_fixed is identity_fixed
    assert record.holds == (D(holds) if holds else None)
    if "lease_until" in changes:
        assert (record.lease_token, record.lease_until, record.needs_check) == (
            "0f3c",
            1795210300,
            True,
        )


def test_previous_release_item_claimed_but_never_recorded() -> None:
    # An attempt that crashed after its claim: only the lease and the entity were written.
    item: dict[str, Any] = {
        "pk": {"S": "ecwid#1003#9003"},
        "entity": {"S": "transaction"},
        "lease_token": {"S": "9a1b"},
        "lease_until": {"N": "1795210300"},
        "needs_check": {"BOOL": True},
    }

    record = CommissionRecord.from_item(item)

    assert record.commission_state == "absent"
    assert not record.identity_fixed
    assert record.holds is None
    assert (record.lease_token, record.lease_until, record.needs_check) == (
        "9a1b",
        1795210300,
        True,
    )


@pytest.mark.parametrize(
    ("status", "known"),
    [("created", True), ("exists", True), ("not_referred", False)],
)
def test_previous_release_customer_item(status: str, known: bool) -> None:
    item: dict[str, Any] = {
        "pk": {"S": "customer#jane@example.com"},
        "entity": {"S": "customer"},
        "status": {"S": status},
        "partner_key": {"S": "demo-partner"},
        "last_delivery_id": {"S": "signup-1"},
        "detail": {"S": ""},
        "updated_at": {"S": "2026-11-01T00:00:00+00:00"},
        "created_at": {"S": "2026-10-31T23:59:00+00:00"},
        "deliveries": {"N": "2"},
    }

    record = CustomerRecord.from_item(item)

    assert record.pk == keys.customer("jane@example.com")
    assert record.status == status
    assert record.known_to_partnero is known
    assert record.partner_key == "demo-partner"
    assert record.deliveries == 2
    assert record.detail == ""
    assert record.created_at == "2026-10-31T23:59:00+00:00"
    assert record.not_referred_sales == {}


def test_customer_record_pending_is_not_known_to_partnero() -> None:
    record = CustomerRecord(
        pk=keys.customer("sam@example.net"),
        not_referred_sales={
            "ecwid#1003#9002": Recheck(at=1795210000, source="ecwid", ref={"order": "E2E2"})
        },
    )

    assert record.status == "pending"
    assert not record.known_to_partnero
    assert CustomerRecord.from_item(record.to_item()) == record


def test_previous_release_alias_item() -> None:
    item: dict[str, Any] = {
        "pk": {"S": "stripe#pi:pi_3Q1"},
        "alias_of": {"S": "stripe#invoice:in_1Q1"},
        "entity": {"S": "alias"},
    }

    record = AliasRecord.from_item(item)

    assert record == AliasRecord(pk="stripe#pi:pi_3Q1", alias_of="stripe#invoice:in_1Q1")
    assert record.to_item() == item


@pytest.mark.parametrize(
    ("extra", "opted_out"),
    [
        pytest.param({"opted_out": {"BOOL": True}}, True, id="opted-out"),
        pytest.param({"opted_out": {"BOOL": False}}, False, id="not-opted-out"),
        pytest.param({}, None, id="never-said"),
    ],
)
def test_previous_release_stripe_customer_item(
    extra: dict[str, Any], opted_out: bool | None
) -> None:
    item: dict[str, Any] = {
        "pk": {"S": "stripe-customer#cus_Q1"},
        "entity": {"S": "stripe_customer"},
        "updated_at": {"S": "2026-11-01T00:00:00+00:00"},
        "customer_key": {"S": "sam@example.net"},
        "partner_key": {"S": "acme"},
        **extra,
    }

    record = StripeCustomerRecord.from_item(item)

    assert record.pk == keys.stripe_customer("cus_Q1")
    assert record.customer_key == "sam@example.net"
    assert record.partner_key == "acme"
    assert record.opted_out is opted_out
    assert record.updated_at == "2026-11-01T00:00:00+00:00"
    assert record.to_item() == item

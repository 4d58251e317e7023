"""The reconciliation's comparison, table-tested: one kind per payment, with the money.

Each case is a payment as a reconciliation sees it (the target the webhooks' decision code
makes, the ledger's record, what Partnero answered per key, whether Partnero knows the
customer) and the kind an operator should read, with what is due and what is held."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge.decision import Target
from partnero_bridge.ledger.records import CommissionRecord
from partnero_bridge.reconcile.compare import (
    HEALABLE,
    Evidence,
    Finding,
    FindingKind,
    Held,
    Referral,
    compare,
    in_namespace,
    needs_referral,
    totals,
)
from partnero_bridge_cli.reconcile import DEFAULT_SHARE

pytestmark = pytest.mark.unit

D = Decimal
SALE_AT = 1_760_000_000
KEY = "stripe_pi_1"


def target(amount: str | None = "40.00", **changes: Any) -> Target:
    base = Target(
        transaction_key=KEY,
        amount=D(amount) if amount is not None else None,
        currency="USD",
        reason="paid" if amount is not None else "refunded",
        detail="paid" if amount is not None else "100 of 100 refunded (minor units)",
        customer_key="ada@example.com",
        partner_key="partner-alpha",
        created_at=SALE_AT,
    )
    return replace(base, **changes)


def recorded(amount: str | None = "40.00", **changes: Any) -> CommissionRecord:
    values: dict[str, Any] = {
        "pk": "stripe#pi:pi_1",
        "commission_state": "recorded" if amount is not None else "absent",
        "amount": D(amount) if amount is not None else None,
        "currency": "USD",
        "transaction_key": KEY,
        "transaction_keys": [KEY],
        "customer_key": "ada@example.com",
        "partner_key": "partner-alpha",
        "updated_at": "2025-10-09T00:00:00+00:00",
    }
    values.update(changes)
    return CommissionRecord(**values)


def held(amount: str | None = "40.00", **changes: Any) -> Held:
    base = Held(KEY, D(amount) if amount is not None else None, "USD", "partner-alpha")
    return replace(base, **changes)


def evidence(**changes: Any) -> Evidence:
    base = Evidence(
        ledger_key="stripe#pi:pi_1",
        source_id="pi_1",
        target=target(),
        record=recorded(),
        held=(held(),),
        created=SALE_AT,
    )
    return replace(base, **changes)


KNOWN_BEFORE = Referral(customer_known=True, referred_at=SALE_AT - 86400)

# (case, evidence, kind, due, held)
CASES: list[tuple[str, Evidence, FindingKind, str | None, str | None]] = [
    ("agree", evidence(), FindingKind.OK, "40.00", "40.00"),
    (
        "nothing due, nothing held",
        evidence(target=target(None), record=recorded(None), held=(held(None),)),
        FindingKind.OK,
        None,
        None,
    ),
    (
        "never webhooked, referred by its partner key",
        evidence(record=None, held=(held(None),)),
        FindingKind.MISSING,
        "40.00",
        None,
    ),
    (
        "the ledger says created, Partnero lost it",
        evidence(held=(held(None),)),
        FindingKind.MISSING,
        "40.00",
        None,
    ),
    (
        "no partner key, the customer signed up before the sale",
        evidence(
            target=target(partner_key=None), record=None, held=(held(None),), referral=KNOWN_BEFORE
        ),
        FindingKind.MISSING,
        "40.00",
        None,
    ),
    (
        "no partner key, the sign-up came within the webhooks' wait",
        evidence(
            target=target(partner_key=None),
            record=None,
            held=(held(None),),
            referral=Referral(True, SALE_AT + 600),
        ),
        FindingKind.MISSING,
        "40.00",
        None,
    ),
    (
        "no partner key, the referral postdates the payment",
        evidence(
            target=target(partner_key=None),
            record=None,
            held=(held(None),),
            referral=Referral(True, SALE_AT + 2 * 86400),
        ),
        FindingKind.NOT_REFERRED,
        "40.00",
        None,
    ),
    (
        "no partner key, Partnero does not know the customer",
        evidence(
            target=target(partner_key=None),
            record=None,
            held=(held(None),),
            referral=Referral(False),
        ),
        FindingKind.NOT_REFERRED,
        "40.00",
        None,
    ),
    (
        "no partner key, the customer known but not since when",
        evidence(
            target=target(partner_key=None),
            record=None,
            held=(held(None),),
            referral=Referral(True, None),
        ),
        FindingKind.NOT_REFERRED,
        "40.00",
        None,
    ),
    (
        "no customer and no partner",
        evidence(
            target=target(partner_key=None, customer_key=None), record=None, held=(held(None),)
        ),
        FindingKind.NOT_REFERRED,
        "40.00",
        None,
    ),
    (
        "Partnero refused the partner key before",
        evidence(
            record=recorded(
                None,
                commission_state="not_referred",
                reason="invalid_partner",
                transaction_keys=[],
            ),
            held=(held(None),),
        ),
        FindingKind.NOT_REFERRED,
        "40.00",
        None,
    ),
    (
        "Partnero holds another amount",
        evidence(held=(held("35.00"),)),
        FindingKind.WRONG_AMOUNT,
        "40.00",
        "35.00",
    ),
    (
        "a refund never delivered: less is due",
        evidence(target=target("25.00", reason="partially_refunded")),
        FindingKind.WRONG_AMOUNT,
        "25.00",
        "40.00",
    ),
    (
        "the same figure in another currency",
        evidence(held=(held(currency="EUR"),)),
        FindingKind.WRONG_AMOUNT,
        "40.00",
        "40.00",
    ),
    (
        "two live transactions for one payment",
        evidence(
            record=recorded(transaction_keys=[KEY, f"{KEY}_r2"]),
            held=(held("20.00"), held("20.00", transaction_key=f"{KEY}_r2")),
        ),
        FindingKind.WRONG_AMOUNT,
        "40.00",
        "40.00",
    ),
    (
        "refunded since, the bridge's transaction still there",
        evidence(target=target(None)),
        FindingKind.EXTRA,
        None,
        "40.00",
    ),
    (
        "refunded since, a transaction the ledger never recorded",
        evidence(target=target(None), record=None),
        FindingKind.UNDECIDABLE,
        None,
        "40.00",
    ),
    (
        "the reward is paid and less is due",
        evidence(target=target("25.00"), held=(held(reward_paid=True),)),
        FindingKind.ADJUSTMENT_NEEDED,
        "25.00",
        "40.00",
    ),
    (
        "the reward is paid and nothing is due",
        evidence(target=target(None), held=(held(reward_paid=True),)),
        FindingKind.ADJUSTMENT_NEEDED,
        None,
        "40.00",
    ),
    (
        "the reward is paid and the amount is right",
        evidence(held=(held(reward_paid=True),)),
        FindingKind.OK,
        "40.00",
        "40.00",
    ),
    (
        "Partnero credits another partner",
        evidence(held=(held(partner_key="partner-beta"),)),
        FindingKind.WRONG_PARTNER,
        "40.00",
        "40.00",
    ),
    (
        "Partnero names no partner: nothing to compare",
        evidence(held=(held(partner_key=None),)),
        FindingKind.OK,
        "40.00",
        "40.00",
    ),
    (
        "the source cannot be decided",
        evidence(target=None, error="Ecwid order 7 has negative money fields: tax"),
        FindingKind.UNDECIDABLE,
        None,
        "40.00",
    ),
    (
        "Partnero could not be asked",
        evidence(held=(held(None, error="Partnero's transaction has no readable amount"),)),
        FindingKind.UNDECIDABLE,
        "40.00",
        None,
    ),
]


@pytest.mark.parametrize(
    ("evidence_", "kind", "due", "held_"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_kind_per_payment(
    evidence_: Evidence, kind: FindingKind, due: str | None, held_: str | None
) -> None:
    found = compare(evidence_)
    assert found.kind is kind, found.detail
    assert found.due == (D(due) if due is not None else None)
    assert found.held == (D(held_) if held_ is not None else None)
    assert found.difference == (found.due or 0) - (found.held or 0)
    assert found.detail


def test_only_missing_wrong_amount_and_extra_are_healed() -> None:
    assert {FindingKind.MISSING, FindingKind.WRONG_AMOUNT, FindingKind.EXTRA} == HEALABLE


def test_partnero_is_asked_about_the_customer_only_when_it_decides() -> None:
    unreferred = evidence(target=target(partner_key=None), record=None, held=(held(None),))
    assert needs_referral(unreferred)
    # Its own partner key, something held, nothing due, or an identity the ledger fixed.
    assert not needs_referral(replace(unreferred, target=target()))
    assert not needs_referral(replace(unreferred, held=(held(),)))
    assert not needs_referral(replace(unreferred, target=target(None, partner_key=None)))
    assert not needs_referral(replace(unreferred, record=recorded(None)))


def test_only_the_bridges_keys_are_its_own() -> None:
    assert in_namespace("stripe_in_1")
    assert in_namespace("ecwid_1003_K8X_r2")
    assert not in_namespace("manual_adjustment_1")
    assert not in_namespace("pi_1")


def test_totals_per_kind_and_currency_in_decimal() -> None:
    def missing(amount: str, currency: str) -> Finding:
        return compare(
            evidence(
                target=target(amount, currency=currency),
                record=None,
                held=(held(None),),
            )
        )

    found = [
        missing("10.10", "USD"),
        missing("0.20", "USD"),
        missing("5.00", "EUR"),
        compare(evidence(held=(held("35.00"),))),
        compare(evidence()),
    ]
    summed = totals(found)
    assert list(summed) == [FindingKind.MISSING, FindingKind.WRONG_AMOUNT, FindingKind.OK]
    assert list(summed[FindingKind.MISSING]) == ["EUR", "USD"]
    usd = summed[FindingKind.MISSING]["USD"]
    assert (usd.count, usd.due, usd.held, usd.difference) == (2, D("10.30"), D(0), D("10.30"))
    assert summed[FindingKind.WRONG_AMOUNT]["USD"].difference == D("5.00")
    assert summed[FindingKind.OK]["USD"].difference == 0


def test_a_finding_survives_its_row() -> None:
    found = compare(evidence(held=(held("35.00"),)))
    assert Finding.from_row(found.row()) == found


def test_the_command_line_default_share_is_the_cores() -> None:
    from partnero_bridge.reconcile.pacing import DEFAULT_SHARE as CORE

    assert DEFAULT_SHARE == CORE

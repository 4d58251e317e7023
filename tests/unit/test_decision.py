"""The pure commission decision (``partnero_bridge.decision``), one table per rule.

Next step from what Partnero holds and what is due, the paid-out guard, whether a sale is
referred, the program currency, the identity fixed by a payment's first transaction, and
the ``POST /v1/transactions`` body; plus what a transaction GET says Partnero holds
(``partnero.read_holding``) and the one customer-key rule every source uses.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.decision import (
    Commission,
    Referral,
    Step,
    Target,
    currency_problem,
    guard_paid_out,
    next_step,
    referral,
    stable_identity,
    transaction_request,
)
from partnero_bridge.errors import RetryableError
from partnero_bridge.ledger.records import CommissionRecord
from partnero_bridge.partnero import AnswerMeaning, Holding, PartneroAnswer, read_holding

pytestmark = pytest.mark.unit

D = Decimal


# --- next_step: held x due ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "due", "step"),
    [
        pytest.param(None, None, Step.NOTHING, id="nothing-held-nothing-due"),
        pytest.param(None, "45.00", Step.CREATE, id="nothing-held-due-create"),
        pytest.param("45.00", "45.00", Step.KEEP, id="same-keep"),
        pytest.param("45.0", "45.00", Step.KEEP, id="same-value-other-digits-keep"),
        pytest.param("45.00", "37.27", Step.REPLACE, id="less-due-replace"),
        pytest.param("37.27", "45.00", Step.REPLACE, id="more-due-replace"),
        pytest.param("45.00", None, Step.DELETE, id="held-nothing-due-delete"),
        pytest.param("0.01", None, Step.DELETE, id="held-a-cent-delete"),
        pytest.param("8820", "8821", Step.REPLACE, id="jpy-one-yen-replace"),
    ],
)
def test_next_step(held: str | None, due: str | None, step: Step) -> None:
    result = next_step(D(held) if held else None, D(due) if due else None)

    assert result is step


# --- guard_paid_out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "reward_paid", "expected"),
    [
        pytest.param(Step.DELETE, True, Step.ADJUST, id="paid-delete-adjust"),
        pytest.param(Step.REPLACE, True, Step.ADJUST, id="paid-replace-adjust"),
        pytest.param(Step.KEEP, True, Step.KEEP, id="paid-keep"),
        pytest.param(Step.CREATE, True, Step.CREATE, id="paid-create"),
        pytest.param(Step.NOTHING, True, Step.NOTHING, id="paid-nothing"),
        pytest.param(Step.ADJUST, True, Step.ADJUST, id="paid-adjust"),
        pytest.param(Step.DELETE, False, Step.DELETE, id="unpaid-delete"),
        pytest.param(Step.REPLACE, False, Step.REPLACE, id="unpaid-replace"),
        pytest.param(Step.KEEP, False, Step.KEEP, id="unpaid-keep"),
        pytest.param(Step.CREATE, False, Step.CREATE, id="unpaid-create"),
        pytest.param(Step.NOTHING, False, Step.NOTHING, id="unpaid-nothing"),
    ],
)
def test_guard_paid_out(step: Step, reward_paid: bool, expected: Step) -> None:
    assert guard_paid_out(step, reward_paid) is expected


# --- read_holding: what a transaction GET says Partnero holds ----------------------------


def ok(data: Any) -> PartneroAnswer:
    return PartneroAnswer(meaning=AnswerMeaning.OK, status_code=200, data=data)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            PartneroAnswer(meaning=AnswerMeaning.NOT_FOUND, status_code=404), None, id="not-found"
        ),
        pytest.param(ok({"amount": 45, "deleted": True}), None, id="deleted"),
        pytest.param(ok({"amount": 45, "deleted_at": "2026-11-01"}), None, id="deleted-at"),
        pytest.param(ok({"amount": 45, "archived": True}), None, id="archived"),
        pytest.param(ok({"amount": 45.1}), Holding(D("45.1"), False), id="no-rewards"),
        pytest.param(ok({"amount": "19.99", "rewards": []}), Holding(D("19.99"), False), id="str"),
        pytest.param(
            ok({"amount": 45, "rewards": [{"status": "approved"}, {"status": "Paid"}]}),
            Holding(D(45), True),
            id="reward-status-paid",
        ),
        pytest.param(
            ok({"amount": 45, "rewards": [{"is_paid": True}]}),
            Holding(D(45), True),
            id="reward-is-paid",
        ),
        pytest.param(
            ok({"amount": 45, "rewards": {"data": [{"paid_at": "2026-11-02T00:00:00Z"}]}}),
            Holding(D(45), True),
            id="paginated-reward-paid-at",
        ),
        pytest.param(
            ok({"amount": 45, "rewards": [{"status": "created", "is_paid": False}]}),
            Holding(D(45), False),
            id="reward-not-paid",
        ),
    ],
)
def test_read_holding(answer: PartneroAnswer, expected: Holding | None) -> None:
    assert read_holding(answer) == expected


def test_read_holding_without_an_amount_is_retried() -> None:
    with pytest.raises(RetryableError, match="no readable amount"):
        read_holding(ok({"key": "ecwid_1003_XJ12H"}))


PAID_REWARD = {"amount": 45, "rewards": [{"status": "paid"}]}


@pytest.mark.parametrize(
    ("data", "due", "expected"),
    [
        pytest.param(PAID_REWARD, None, Step.ADJUST, id="refunded-adjust"),
        pytest.param(PAID_REWARD, "30.00", Step.ADJUST, id="less-due-adjust"),
        pytest.param(PAID_REWARD, "45", Step.KEEP, id="same-keep"),
        pytest.param({"amount": 45, "rewards": []}, None, Step.DELETE, id="unpaid-delete"),
    ],
)
def test_a_paid_reward_read_from_partnero_is_never_taken_back(
    data: dict[str, Any], due: str | None, expected: Step
) -> None:
    holding = read_holding(ok(data))
    assert holding is not None

    step = guard_paid_out(next_step(holding.amount, D(due) if due else None), holding.reward_paid)

    assert step is expected


# --- referral ----------------------------------------------------------------------------

WAIT = 900.0


@pytest.mark.parametrize(
    ("partner", "known", "waited", "expected"),
    [
        pytest.param("acme", None, 0.0, Referral.SEND, id="partner-not-asked"),
        pytest.param("acme", False, 0.0, Referral.SEND, id="partner-unknown-customer"),
        pytest.param("acme", True, 0.0, Referral.SEND, id="partner-known-customer"),
        pytest.param("acme", False, math.inf, Referral.SEND, id="partner-never-waits"),
        pytest.param(None, True, 0.0, Referral.SEND, id="known-customer"),
        pytest.param(None, True, math.inf, Referral.SEND, id="known-customer-late"),
        pytest.param(None, None, 0.0, Referral.CHECK_CUSTOMER, id="not-asked-yet"),
        pytest.param(None, None, math.inf, Referral.CHECK_CUSTOMER, id="not-asked-late"),
        pytest.param("", None, 0.0, Referral.CHECK_CUSTOMER, id="empty-partner-is-none"),
        pytest.param(None, False, 0.0, Referral.WAIT_FOR_SIGNUP, id="unknown-just-now"),
        pytest.param(None, False, WAIT - 1, Referral.WAIT_FOR_SIGNUP, id="unknown-within-wait"),
        pytest.param(None, False, WAIT, Referral.NOT_REFERRED, id="unknown-wait-over"),
        pytest.param(None, False, WAIT + 1, Referral.NOT_REFERRED, id="unknown-after-wait"),
        pytest.param(None, False, math.inf, Referral.NOT_REFERRED, id="unknown-waited-before"),
        pytest.param("", False, WAIT * 2, Referral.NOT_REFERRED, id="empty-partner-after-wait"),
    ],
)
def test_referral(
    partner: str | None, known: bool | None, waited: float, expected: Referral
) -> None:
    assert referral(partner, known, waited, WAIT) is expected


def test_referral_without_a_wait_decides_at_once() -> None:
    assert referral(None, False, 0.0, 0.0) is Referral.NOT_REFERRED


# --- currency_problem --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "program", "converts", "problem"),
    [
        pytest.param("EUR", "", False, False, id="program-currency-not-set"),
        pytest.param("EUR", "", True, False, id="program-currency-not-set-converts"),
        pytest.param("USD", "USD", False, False, id="same"),
        pytest.param("usd", "USD", False, False, id="same-other-case"),
        pytest.param("USD", "usd", False, False, id="same-program-lower-case"),
        pytest.param("EUR", "USD", False, True, id="different"),
        pytest.param("jpy", "usd", False, True, id="different-lower-case"),
        pytest.param("EUR", "USD", True, False, id="different-but-converts"),
    ],
)
def test_currency_problem(currency: str, program: str, converts: bool, problem: bool) -> None:
    result = currency_problem(currency, program, converts)

    if not problem:
        assert result is None
        return
    assert result is not None
    assert currency.upper() in result
    assert program.upper() in result
    assert "does not convert" in result


# --- stable_identity ---------------------------------------------------------------------

TARGET = Target(
    transaction_key="ecwid_1003_XJ12H",
    amount=D("37.27"),
    currency="USD",
    reason="partially_refunded",
    detail="order is PARTIALLY_REFUNDED, 10.00 of 58.21 refunded",
    customer_key="new.mail@example.com",
    partner_key="other-partner",
    email="new.mail@example.com",
    name="Jane",
    surname="Doe",
    created_at=1725500000,
    product_id="MUG-BLUE",
)
FIXED = {
    "transaction_key": "ecwid_1003_XJ12H",
    "customer_key": "jane.doe@example.com",
    "partner_key": "acme",
    "created_at": 1725434529,
}
AS_IS = {
    "transaction_key": TARGET.transaction_key,
    "customer_key": TARGET.customer_key,
    "partner_key": TARGET.partner_key,
    "created_at": TARGET.created_at,
}


def record(**fields: Any) -> CommissionRecord:
    values: dict[str, Any] = {
        "pk": "ecwid#1003#103878161",
        "currency": "USD",
        "transaction_key": "ecwid_1003_XJ12H",
        "customer_key": "jane.doe@example.com",
        "partner_key": "acme",
        "created_at_epoch": 1725434529,
    }
    values.update(fields)
    return CommissionRecord(**values)


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        pytest.param(None, AS_IS, id="no-record"),
        pytest.param(
            record(
                commission_state="recorded",
                amount=D("45.00"),
                transaction_keys=["ecwid_1003_XJ12H"],
            ),
            FIXED,
            id="recorded",
        ),
        pytest.param(
            record(commission_state="absent", transaction_keys=["ecwid_1003_XJ12H"]),
            FIXED,
            id="created-then-reversed",
        ),
        pytest.param(
            record(
                commission_state="recorded",
                amount=D("45.00"),
                transaction_key="ecwid_1003_XJ12H_r2",
                transaction_keys=["ecwid_1003_XJ12H", "ecwid_1003_XJ12H_r2"],
            ),
            {**FIXED, "transaction_key": "ecwid_1003_XJ12H_r2"},
            id="re-created-under-a-suffix",
        ),
        pytest.param(
            record(
                commission_state="recorded",
                amount=D("45.00"),
                partner_key=None,
                transaction_keys=["ecwid_1003_XJ12H"],
            ),
            {**FIXED, "partner_key": None},
            id="sent-without-partner-stays-without",
        ),
        pytest.param(
            record(
                commission_state="recorded",
                amount=D("45.00"),
                created_at_epoch=None,
                transaction_keys=["ecwid_1003_XJ12H"],
            ),
            {**FIXED, "created_at": TARGET.created_at},
            id="no-sale-time-keeps-the-target-s",
        ),
        pytest.param(
            record(commission_state="recorded", amount=D("45.00")),
            FIXED,
            id="previous-release-recorded",
        ),
        pytest.param(record(commission_state="absent"), FIXED, id="previous-release-reversed"),
        pytest.param(
            record(commission_state="not_referred", reason="invalid_partner"),
            AS_IS,
            id="not-referred",
        ),
        pytest.param(
            record(commission_state="absent", transaction_key=None, customer_key=None),
            AS_IS,
            id="never-sent",
        ),
        pytest.param(
            record(commission_state="recorded", amount=D("45.00"), customer_key=None),
            AS_IS,
            id="no-customer-key",
        ),
    ],
)
def test_stable_identity(previous: CommissionRecord | None, expected: dict[str, Any]) -> None:
    result = stable_identity(TARGET, previous)

    assert {
        "transaction_key": result.transaction_key,
        "customer_key": result.customer_key,
        "partner_key": result.partner_key,
        "created_at": result.created_at,
    } == expected
    # The source's current state still decides the money and the rest.
    assert (result.amount, result.currency, result.reason, result.detail) == (
        TARGET.amount,
        TARGET.currency,
        TARGET.reason,
        TARGET.detail,
    )
    assert (result.email, result.name, result.surname, result.product_id) == (
        TARGET.email,
        TARGET.name,
        TARGET.surname,
        TARGET.product_id,
    )


def test_stable_identity_fixes_a_target_without_a_customer_key() -> None:
    # The order's email was removed after the sale: the first transaction's customer stays.
    target = replace(TARGET, customer_key=None, partner_key=None)
    previous = record(commission_state="recorded", amount=D("45.00"), transaction_keys=["k"])

    result = stable_identity(target, previous)

    assert result.customer_key == "jane.doe@example.com"
    assert result.commission() is not None


# --- Target.commission -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "has_commission"),
    [
        pytest.param({}, True, id="amount-and-customer"),
        pytest.param({"amount": None}, False, id="nothing-due"),
        pytest.param({"customer_key": None}, False, id="nobody-to-credit"),
        pytest.param({"partner_key": None}, True, id="no-partner-existing-customer"),
    ],
)
def test_target_commission(changes: dict[str, Any], has_commission: bool) -> None:
    target = replace(TARGET, **changes)

    commission = target.commission()

    assert (commission is not None) is has_commission
    if commission is not None:
        assert commission == Commission(
            transaction_key=target.transaction_key,
            amount=D("37.27"),
            currency="USD",
            customer_key="new.mail@example.com",
            partner_key=target.partner_key,
            email="new.mail@example.com",
            name="Jane",
            surname="Doe",
            created_at=1725500000,
            product_id="MUG-BLUE",
        )


# --- transaction_request -----------------------------------------------------------------

FULL = Commission(
    transaction_key="ecwid_1003_XJ12H",
    amount=D("45.00"),
    currency="USD",
    customer_key="jane.doe@example.com",
    partner_key="acme",
    email="Jane.Doe@example.com",
    name="Jane",
    surname="Doe",
    created_at=1725434529,
    product_id="MUG-BLUE",
)


def test_request_with_a_partner_creates_the_customer() -> None:
    assert transaction_request(FULL) == {
        "customer": {
            "key": "jane.doe@example.com",
            "partner": {"key": "acme"},
            "email": "Jane.Doe@example.com",
            "name": "Jane",
            "surname": "Doe",
        },
        "partner": {"key": "acme"},
        "key": "ecwid_1003_XJ12H",
        "amount": 45,
        "amount_units": "USD",
        "action": "sale",
        "options": {"create_customer": True},
        "product_id": "MUG-BLUE",
        "created_at": 1725434529,
    }


@pytest.mark.parametrize(
    ("partner", "creates"),
    [
        pytest.param("acme", True, id="partner"),
        pytest.param(None, False, id="no-partner"),
        pytest.param("", False, id="empty-partner"),
    ],
)
def test_request_partner_in_both_places_and_create_customer_only_with_one(
    partner: str | None, creates: bool
) -> None:
    body = transaction_request(replace(FULL, partner_key=partner))

    if creates:
        assert body["customer"]["partner"] == {"key": partner}
        assert body["partner"] == {"key": partner}
        assert body["options"] == {"create_customer": True}
    else:
        # An existing customer (from a sign-up): only its key, no person fields.
        assert body["customer"] == {"key": "jane.doe@example.com"}
        assert "partner" not in body
        assert "options" not in body
    assert body["key"] == "ecwid_1003_XJ12H"
    assert body["action"] == "sale"


def test_request_with_a_partner_leaves_out_missing_person_fields() -> None:
    commission = Commission(
        transaction_key="ecwid_1003_A",
        amount=D("10.00"),
        currency="USD",
        customer_key="a@b.test",
        partner_key="acme",
        email=None,
        name="",
        surname=None,
    )

    assert transaction_request(commission)["customer"] == {
        "key": "a@b.test",
        "partner": {"key": "acme"},
    }


def test_request_minimal_has_no_optional_fields() -> None:
    commission = Commission(
        transaction_key="ecwid_1003_A", amount=D("19.99"), currency="usd", customer_key="a@b.test"
    )

    assert transaction_request(commission) == {
        "customer": {"key": "a@b.test"},
        "key": "ecwid_1003_A",
        "amount": 19.99,
        "amount_units": "USD",
        "action": "sale",
    }


@pytest.mark.parametrize(
    ("field", "value", "present"),
    [
        pytest.param("created_at", 1725434529, True, id="created-at"),
        pytest.param("created_at", None, False, id="created-at-none"),
        pytest.param("created_at", 0, False, id="created-at-zero"),
        pytest.param("product_id", "561133", True, id="product-id"),
        pytest.param("product_id", None, False, id="product-id-none"),
        pytest.param("product_id", "", False, id="product-id-empty"),
        pytest.param("product_type", "subscription", True, id="product-type"),
        pytest.param("product_type", None, False, id="product-type-none"),
    ],
)
def test_request_optional_fields_only_when_set(field: str, value: Any, present: bool) -> None:
    body = transaction_request(replace(FULL, **{field: value}))

    assert (field in body) is present
    if present:
        assert body[field] == value


@pytest.mark.parametrize(
    ("amount", "currency", "written"),
    [
        ("71.39", "USD", '"amount": 71.39,'),
        ("0.10", "USD", '"amount": 0.1,'),
        ("19.99", "EUR", '"amount": 19.99,'),
        ("12.99", "USD", '"amount": 12.99,'),
        ("45.00", "USD", '"amount": 45,'),
        ("8820", "JPY", '"amount": 8820,'),
        ("1.235", "KWD", '"amount": 1.235,'),
        ("5.833", "kwd", '"amount": 5.833,'),
        ("123456789.12", "USD", '"amount": 123456789.12,'),
    ],
)
def test_request_amount_is_an_exact_json_number(amount: str, currency: str, written: str) -> None:
    body = transaction_request(replace(FULL, amount=D(amount), currency=currency))

    text = json.dumps(body)

    assert written in text
    assert json.loads(text, parse_float=Decimal)["amount"] == D(amount)
    assert json.loads(text)["amount_units"] == currency.upper()


def test_request_refuses_an_amount_a_json_number_cannot_carry() -> None:
    with pytest.raises(ValueError, match="cannot be sent exactly"):
        transaction_request(replace(FULL, amount=D("1234567890123456.78")))


# --- customer keys: one rule for every source --------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("jane.doe@example.com", "jane.doe@example.com", id="email"),
        pytest.param("Jane.Doe@Example.COM", "jane.doe@example.com", id="email-lower-cased"),
        pytest.param(" Jane.Doe@Example.com \n", "jane.doe@example.com", id="email-stripped"),
        pytest.param("\tJANE@X.TEST", "jane@x.test", id="email-tab"),
        pytest.param("Cus_A1", "Cus_A1", id="id-keeps-case"),
        pytest.param("  Cus_A1  ", "Cus_A1", id="id-stripped"),
        pytest.param("270919557", "270919557", id="numeric-id"),
        pytest.param(
            "ecwid_1003_customer_270919557", "ecwid_1003_customer_270919557", id="namespaced-id"
        ),
        pytest.param("ABC@", "abc@", id="anything-with-at-is-lower-cased"),
        pytest.param("", "", id="empty"),
        pytest.param("   ", "", id="blank"),
    ],
)
def test_normalize_customer_key(key: str, expected: str) -> None:
    assert normalize_customer_key(key) == expected
    assert normalize_customer_key(expected) == expected  # idempotent

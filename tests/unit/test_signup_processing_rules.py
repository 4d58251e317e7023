"""Processing a queued sign-up: partner budgets (postponed, never dropped) and who claims
later sales (SIGNUP_SALES_CLAIMED_BY)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge.envelope import OutcomeStatus, QueueEnvelope, Source
from partnero_bridge.errors import RetryableError
from partnero_bridge.ledger.records import CustomerRecord
from partnero_bridge.observability import metrics
from partnero_bridge.partnero import AnswerMeaning, PartneroAnswer
from partnero_bridge.ratelimit import window_of
from partnero_bridge.runtime import Runtime
from partnero_bridge.signup.mapping import delivery_id
from partnero_bridge.signup.models import SignupDelivery
from partnero_bridge.signup.process import (
    BUDGET_LIMIT,
    PartnerBudgetExceeded,
    process_signup,
    spend_partner_budget,
)
from tests.support.signup import FakeCounters

pytestmark = pytest.mark.unit


class FakePartnero:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_customer(self, body: dict[str, Any]) -> PartneroAnswer:
        self.created.append(body)
        return PartneroAnswer(AnswerMeaning.OK, 200)


class FakeLedger:
    def record_customer(
        self, customer_key: str, status: str, partner_key: str, delivery_id: str, detail: str
    ) -> CustomerRecord:
        return CustomerRecord(pk=f"customer#{customer_key}", status=status, partner_key=partner_key)


class Processing:
    def __init__(self, **env: str) -> None:
        self.partnero = FakePartnero()
        self.counters = FakeCounters()
        self.runtime = Runtime(
            BridgeSettings.from_environ(env),
            partnero=self.partnero,
            ledger=FakeLedger(),
            rate_limits=self.counters,
        )

    def process(self, email: str, partner: str = "acme", *, signed: bool = False) -> Any:
        delivery = SignupDelivery(
            customer_key=email, partner_key=partner, email=email, trusted=signed
        )
        envelope = QueueEnvelope.new(
            Source.SIGNUP,
            delivery_id(delivery),
            delivery.model_dump(mode="json"),
            meta={"request_id": "r", "trusted": str(signed)},
        )
        return process_signup(envelope, self.runtime)


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def counted(name: str) -> float:
    return sum(metrics.metric_set.get(name, {}).get("Value", []))


# --- partner budget ----------------------------------------------------------------------


def test_sign_ups_over_the_partners_budget_are_postponed_to_the_next_hour() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="2")

    for i in range(2):
        assert processing.process(f"u{i}@example.com").status == OutcomeStatus.SENT
    before = time.time()
    with pytest.raises(PartnerBudgetExceeded) as caught:
        processing.process("u2@example.com")

    error = caught.value
    assert isinstance(error, RetryableError)  # retried, never dead-lettered at once
    assert error.kind == "partner_budget"
    assert error.retry_after is not None
    until_next_hour = window_of(before, 3600).end - before
    assert until_next_hour - 1 <= error.retry_after <= until_next_hour + 61
    assert [c["email"] for c in processing.partnero.created] == [
        "u0@example.com",
        "u1@example.com",
    ]
    assert counted("PartnerBudgetExceeded") == 1


def test_each_partner_has_its_own_budget() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="1")

    assert processing.process("a@example.com", "acme").status == OutcomeStatus.SENT
    assert processing.process("b@example.com", "beta").status == OutcomeStatus.SENT
    with pytest.raises(PartnerBudgetExceeded):
        processing.process("c@example.com", "acme")


def test_a_postponed_sign_up_goes_through_in_the_next_hour() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="1")
    hour = window_of(time.time(), 3600).start
    spend_partner_budget("acme", processing.runtime, now=hour + 10)
    with pytest.raises(PartnerBudgetExceeded):
        spend_partner_budget("acme", processing.runtime, now=hour + 20)

    spend_partner_budget("acme", processing.runtime, now=hour + 3600 + 5)  # no error


def test_signed_sign_ups_are_outside_the_budget() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="1")
    processing.process("a@example.com")

    outcomes = [processing.process(f"s{i}@example.com", signed=True).status for i in range(3)]

    assert outcomes == [OutcomeStatus.SENT] * 3
    assert [limit for limit, _subject, _start in processing.counters.counts] == [BUDGET_LIMIT]
    assert sum(processing.counters.counts.values()) == 1


def test_zero_means_no_budget() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="0")

    outcomes = [processing.process(f"u{i}@example.com").status for i in range(5)]

    assert outcomes == [OutcomeStatus.SENT] * 5
    assert processing.counters.subjects == []


def test_a_failing_budget_store_never_holds_a_sign_up_up() -> None:
    processing = Processing(SIGNUP_PARTNER_BUDGET_PER_HOUR="1")
    processing.counters.failing = True

    outcomes = [processing.process(f"u{i}@example.com").status for i in range(3)]

    assert outcomes == [OutcomeStatus.SENT] * 3
    assert counted("RateLimitUnavailable") == 3
    assert counted("PartnerBudgetExceeded") == 0


def test_the_default_budget_is_two_hundred_an_hour() -> None:
    assert BridgeSettings.from_environ({}).signup_partner_budget_per_hour == 200


# --- who claims later sales --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "signed", "sent"),
    [
        pytest.param("any", False, True, id="any-unsigned"),
        pytest.param("any", True, True, id="any-signed"),
        pytest.param("signed", True, True, id="signed-signed"),
        pytest.param("signed", False, False, id="signed-unsigned"),
    ],
)
def test_claims_mode_decides_which_sign_ups_create_the_referred_customer(
    mode: str, signed: bool, sent: bool
) -> None:
    processing = Processing(SIGNUP_SALES_CLAIMED_BY=mode)

    outcome = processing.process("jane@example.com", signed=signed)

    assert (len(processing.partnero.created) == 1) is sent
    if sent:
        assert outcome.status == OutcomeStatus.SENT
    else:
        # Counted with its reason, never silently dropped.
        assert outcome.status == OutcomeStatus.NOT_REFERRED
        assert outcome.reason == "unsigned_signup"
        assert outcome.ledger_key == "customer#jane@example.com"


def test_by_default_browser_sign_ups_claim_later_sales() -> None:
    assert BridgeSettings.from_environ({}).signup_sales_claimed_by == "any"


def test_unsigned_sign_ups_that_claim_nothing_spend_no_budget() -> None:
    processing = Processing(SIGNUP_SALES_CLAIMED_BY="signed", SIGNUP_PARTNER_BUDGET_PER_HOUR="1")

    for i in range(3):
        processing.process(f"u{i}@example.com")

    assert processing.counters.subjects == []


def test_a_signed_sign_up_is_not_a_duplicate_of_an_unsigned_one() -> None:
    # With SIGNUP_SALES_CLAIMED_BY=signed, an unsigned copy sent first must not make
    # idempotency drop the shop backend's signed sign-up.
    unsigned = SignupDelivery(customer_key="j@x.co", partner_key="acme", email="j@x.co")
    signed = unsigned.model_copy(update={"trusted": True})

    assert delivery_id(unsigned) != delivery_id(signed)

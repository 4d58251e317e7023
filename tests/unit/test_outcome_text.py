"""The texts a person reads about a commission: each step of the decision says what it did
to Partnero, with every amount in its currency's decimals (send's output, the local stack's
terminal, the sandbox page, the ledger's history and explain all show these texts)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from partnero_bridge.commissions import ACTIONS, outcome_text
from partnero_bridge.decision import Step

pytestmark = pytest.mark.unit

D = Decimal
REFUND = "1999 of 1999 refunded or disputed (minor units)"

CASES = [
    pytest.param(
        Step.CREATE, None, D("20"), "USD", "paid", "", "created 20.00 USD: paid", id="create"
    ),
    pytest.param(
        Step.CREATE, None, D("1500"), "JPY", "paid", "", "created 1500 JPY: paid", id="create-jpy"
    ),
    pytest.param(
        Step.REPLACE,
        D("19.99"),
        D("14.99"),
        "USD",
        "paid, 500 of 1999 refunded",
        "USD",
        "replaced 19.99 with 14.99 USD: paid, 500 of 1999 refunded",
        id="replace",
    ),
    pytest.param(
        Step.REPLACE,
        D("69"),
        D("62.1"),
        "USD",
        "order is PARTIALLY_REFUNDED",
        "",
        "replaced 69.00 with 62.10 USD: order is PARTIALLY_REFUNDED",
        id="replace-pads-both",
    ),
    pytest.param(
        Step.REPLACE,
        D("1.5"),
        D("1.25"),
        "KWD",
        "paid",
        "KWD",
        "replaced 1.500 with 1.250 KWD: paid",
        id="replace-kwd",
    ),
    pytest.param(
        Step.REPLACE,
        D("64.89"),
        D("64.89"),
        "EUR",
        "paid",
        "USD",
        "replaced 64.89 USD with 64.89 EUR: paid",
        id="replace-another-currency-names-both",
    ),
    pytest.param(
        Step.DELETE,
        D("14.99"),
        None,
        "USD",
        REFUND,
        "",
        f"reversed 14.99 USD: {REFUND}",
        id="delete-says-what-was-taken-back",
    ),
    pytest.param(
        Step.DELETE,
        D("3000"),
        None,
        "JPY",
        "refunded",
        "",
        "reversed 3000 JPY: refunded",
        id="delete-jpy",
    ),
    pytest.param(
        Step.KEEP,
        D("20"),
        D("20"),
        "USD",
        "paid",
        "",
        "paid; Partnero holds 20.00 USD",
        id="keep",
    ),
    pytest.param(
        Step.NOTHING,
        None,
        None,
        "USD",
        "order is REFUNDED",
        "",
        "order is REFUNDED; Partnero holds nothing",
        id="nothing",
    ),
    pytest.param(
        Step.ADJUST,
        D("64.89"),
        D("34.9"),
        "USD",
        "partially_refunded",
        "",
        "Partnero holds 64.89 USD with a paid reward; 34.90 USD is due (partially_refunded): "
        "adjust by hand",
        id="adjust",
    ),
    pytest.param(
        Step.ADJUST,
        D("2.5"),
        None,
        "KWD",
        "refunded",
        "",
        "Partnero holds 2.500 KWD with a paid reward; nothing is due (refunded): adjust by hand",
        id="adjust-nothing-due-kwd",
    ),
]


@pytest.mark.parametrize(
    ("step", "held", "due", "currency", "why", "held_currency", "expected"), CASES
)
def test_each_step_says_what_it_did_to_partnero(
    step: Step,
    held: Decimal | None,
    due: Decimal | None,
    currency: str,
    why: str,
    held_currency: str,
    expected: str,
) -> None:
    assert outcome_text(step, held, due, currency, why, held_currency) == expected


def test_every_step_has_a_case_and_the_changes_start_with_their_history_action() -> None:
    assert {case.values[0] for case in CASES} == set(Step)
    for case in CASES:
        step, text = case.values[0], case.values[-1]
        assert isinstance(step, Step)
        assert isinstance(text, str)
        if step in ACTIONS:
            assert text.split(" ", 1)[0] == ACTIONS[step]
        # A text never says a change happened to nothing.
        assert "reversed nothing" not in text
        assert "replaced nothing" not in text

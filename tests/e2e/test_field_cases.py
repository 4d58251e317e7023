"""Every field case (``../shared/cases/*.json``, or ``$BRIDGE_CASES_DIR``) replayed through the
running local stack by one generic replayer (tests/support/cases.py): no code per case."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import ECWID_CLIENT_SECRET, SIGNUP_SECRET, STRIPE_SECRET
from tests.support.cases import (
    CASES_DIR_VARIABLE,
    Replayer,
    case_files,
    cases_dir,
    load_case,
)
from tests.support.local_stack import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _params() -> list[Any]:
    directory = cases_dir()
    if not directory.is_dir():
        reason = f"no field cases: {directory} is missing (or set {CASES_DIR_VARIABLE})"
        return [pytest.param(None, id="no-cases", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(path, id=path.stem) for path in case_files(directory)]


@pytest.fixture(scope="module")
def replayer(
    stack: RunningStack, partnero: PartneroSandbox, ecwid: FakeEcwid, stripe_api: FakeStripeApi
) -> Replayer:
    return Replayer(
        stack,
        partnero,
        ecwid,
        ecwid_client_secret=ECWID_CLIENT_SECRET,
        stripe_secret=STRIPE_SECRET,
        # Sign-up steps are signed, as a shop's backend sends them.
        signup_secret=SIGNUP_SECRET,
        stripe_api=stripe_api,
    )


@pytest.mark.parametrize("path", _params())
def test_field_case(replayer: Replayer, path: Path) -> None:
    replayer.run(load_case(path))


def test_cases_do_not_share_events_or_transactions() -> None:
    """The bridge's ledger and idempotency records outlive a case (one stack per session):
    two cases naming the same event or transaction would see each other's history."""
    directory = cases_dir()
    if not directory.is_dir():
        pytest.skip(f"no field cases: {directory} is missing")
    owners: defaultdict[str, list[str]] = defaultdict(list)
    for path in case_files(directory):
        case = load_case(path)
        for name in case.event_ids | set(case.transactions):
            owners[name].append(case.name)
    assert {name: cases for name, cases in owners.items() if len(cases) > 1} == {}

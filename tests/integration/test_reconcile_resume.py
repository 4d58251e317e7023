"""A reconciliation stopped anywhere resumes where it stopped, from its checkpoint in the
ledger table (moto), and reports every payment of the window once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from partnero_bridge.errors import RetryableError
from partnero_bridge.ledger.checkpoints import Checkpoints
from partnero_bridge.reconcile.common import Listed, ListedPage, Window
from partnero_bridge.reconcile.compare import Finding, FindingKind
from partnero_bridge.reconcile.run import RunResult, RunStopped, reconcile

pytestmark = pytest.mark.integration

TABLE = "ledger"
SINCE, UNTIL = 1_760_000_000, 1_760_086_399
PAGES = {"sales": [["a1", "a2", "a3"], ["a4", "a5", "a6"]], "refunds": [["a2", "b1"]]}


class Source:
    """Two listings; one payment (``a2``) is listed by both, like a sale and its refund."""

    scope = "stripe"
    streams = ("sales", "refunds")

    def __init__(self, failing: str | None = None) -> None:
        self.failing = failing
        self.listed: list[tuple[str, str | None]] = []
        self.compared: list[str] = []
        self.healed: list[str] = []

    def page(self, stream: str, cursor: str | None, window: Window) -> ListedPage:
        assert window == Window(SINCE, UNTIL)
        self.listed.append((stream, cursor))
        number = int(cursor or 0)
        pages = PAGES[stream]
        items = [Listed(stream, {"id": i}) for i in pages[number]]
        return ListedPage(items, str(number + 1) if number + 1 < len(pages) else None)

    def evaluate(self, item: Listed, first: Callable[[str], bool]) -> Finding | None:
        payment = str(item.obj["id"])
        if payment == self.failing:
            raise RetryableError("Stripe answered 503")
        if not first(f"stripe#pi:{payment}"):
            return None
        self.compared.append(payment)
        return Finding(
            kind=FindingKind.MISSING if payment.endswith(("1", "4")) else FindingKind.OK,
            ledger_key=f"stripe#pi:{payment}",
            source_id=payment,
            transaction_key=f"stripe_{payment}",
            currency="USD",
            due=Decimal("10.00"),
            held=None if payment.endswith(("1", "4")) else Decimal("10.00"),
            ledger_holds=None,
            detail="",
        )

    def heal(self, finding: Finding, run_id: str) -> None:
        self.healed.append(finding.source_id)


@pytest.fixture
def checkpoints() -> Iterator[Checkpoints]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Checkpoints(dynamodb, TABLE)


def run(
    source: Source, checkpoints: Checkpoints, *, apply: bool = False, restart: bool = False
) -> RunResult:
    return reconcile(
        source,
        SINCE,
        UNTIL,
        checkpoints,
        apply=apply,
        restart=restart,
        workers=2,
        sleep=lambda _seconds: None,
        clock=lambda: SINCE + 200_000,
    )


def test_a_stopped_run_resumes_where_it_stopped_and_reports_every_payment_once(
    checkpoints: Checkpoints,
) -> None:
    broken = Source(failing="a5")
    with pytest.raises(RunStopped, match="503"):
        run(broken, checkpoints, apply=True)
    assert sorted(broken.compared) == ["a1", "a2", "a3", "a4", "a6"]
    assert broken.healed == ["a1"]  # the first page was done and kept; the second was not

    again = Source()
    resumed = run(again, checkpoints, apply=True)
    assert resumed.resumed
    assert again.listed == [("sales", "1"), ("refunds", None)]  # from the page that failed
    assert sorted(again.compared) == ["a4", "a5", "a6", "b1"]  # a2 was compared before
    assert [f.source_id for f in resumed.findings] == ["a1", "a4", "b1", "a2", "a3", "a5", "a6"]
    assert [f.healing for f in resumed.findings if f.kind is FindingKind.MISSING] == ["queued"] * 3
    assert again.healed == ["a4", "b1"]  # a1 was healed by the stopped run, not twice

    fresh = run(Source(), checkpoints)
    assert not fresh.resumed
    assert fresh.run_id != resumed.run_id
    assert len(fresh.findings) == 7


def test_restart_starts_the_window_over(checkpoints: Checkpoints) -> None:
    with pytest.raises(RunStopped):
        run(Source(failing="b1"), checkpoints)
    over = Source()
    result = run(over, checkpoints, restart=True)
    assert not result.resumed
    assert over.listed[0] == ("sales", None)
    assert len(result.findings) == 7

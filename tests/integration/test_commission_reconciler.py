"""The reconciler against moto's DynamoDB and the Partnero sandbox over HTTP.

Each test states what Partnero holds in the end and how many calls it took: the ledger
must make duplicates free and crashes harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from partnero_bridge.commissions import Commission, Reconciler, TransactionLedger
from partnero_bridge.envelope import OutcomeStatus
from partnero_bridge.partnero import PartneroClient
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from tests.conftest import SANDBOX_KEY

pytestmark = pytest.mark.integration

KEY = "ecwid#1003#516483487"
SALE = Commission(
    transaction_key="ecwid_1003_K8XTQ",
    amount=Decimal("64.89"),
    currency="USD",
    customer_key="jane@example.com",
    partner_key="demo-partner",
    email="Jane@Example.com",
    created_at=1795212149,
)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, str]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="ledger",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        yield dynamodb, "ledger"


@pytest.fixture
def reconciler(table: tuple[object, str], sandbox: PartneroSandbox) -> Reconciler:
    dynamodb, name = table
    partnero = PartneroClient(sandbox.url, lambda: SANDBOX_KEY, timeout_seconds=2)
    return Reconciler(TransactionLedger(dynamodb, name, lease_seconds=90), partnero)  # type: ignore[arg-type]


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal]]:
    return [
        (t["key"], Decimal(str(t["amount"])))
        for t in sandbox.transactions()
        if not t.get("deleted")
    ]


def calls(sandbox: PartneroSandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests()]


def test_one_transaction_however_often_the_same_sale_arrives(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    first = reconciler.apply(KEY, SALE, "evt-1")
    assert first.status == OutcomeStatus.SENT
    for n in range(5):
        again = reconciler.apply(KEY, SALE, f"evt-{n + 2}")
        assert again.status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("64.89"))]
    assert calls(sandbox) == ["POST /v1/transactions"]
    body = sandbox.requests()[0].body
    assert body["customer"] == {
        "key": "jane@example.com",
        "partner": {"key": "demo-partner"},
        "email": "Jane@Example.com",
    }
    assert body["options"] == {"create_customer": True}
    assert body["created_at"] == 1795212149


def test_partial_refund_recreates_with_original_date_then_full_refund_reverses(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    reconciler.apply(KEY, SALE, "evt-1")
    later = Commission(**{**SALE.__dict__, "amount": Decimal("34.89"), "created_at": None})
    assert reconciler.apply(KEY, later, "evt-2").status == OutcomeStatus.SENT
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("34.89"))]
    assert sandbox.requests()[-1].body["created_at"] == 1795212149

    assert reconciler.apply(KEY, None, "evt-3").status == OutcomeStatus.SENT
    assert reconciler.apply(KEY, None, "evt-4").status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == []
    assert calls(sandbox) == [
        "POST /v1/transactions",
        "DELETE /v1/transactions/ecwid_1003_K8XTQ",
        "POST /v1/transactions",
        "DELETE /v1/transactions/ecwid_1003_K8XTQ",
    ]


def test_reversal_of_a_sale_never_recorded_is_an_outcome(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    assert reconciler.apply("ecwid#1003#1", None, "evt").status == OutcomeStatus.IGNORED
    assert sandbox.requests() == []


def test_crash_after_partnero_accepted_does_not_pay_twice(
    reconciler: Reconciler,
    sandbox: PartneroSandbox,
    table: tuple[object, str],
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
) -> None:
    """The process dies between Partnero's 200 and the ledger write."""

    class Crash(BaseException):
        pass

    def die(*_args: object, **_kwargs: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(TransactionLedger, "record", die)
        with pytest.raises(Crash):
            reconciler.apply(KEY, SALE, "evt-1")
    assert len(live(sandbox)) == 1

    # While the dead invocation's lease runs, others wait instead of sending.
    with pytest.raises(Exception, match="another invocation"):
        reconciler.apply(KEY, SALE, "evt-2")
    dynamodb, name = table
    dynamodb.update_item(
        TableName=name,
        Key={"pk": {"S": KEY}},  # type: ignore[attr-defined]
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    outcome = reconciler.apply(KEY, SALE, "evt-2")
    assert outcome.status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("64.89"))]
    assert calls(sandbox) == ["POST /v1/transactions", "GET /v1/transactions/ecwid_1003_K8XTQ"]
    figures(crashes=1, retries=2, transactions_created=1, partnero_calls=len(calls(sandbox)))


def test_lost_answer_is_checked_before_sending_again(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    """Partnero created the transaction but the answer was a 502: the retry looks first."""
    sandbox.inject_fault(Fault(status=502, after_success=True, count=1))
    with pytest.raises(Exception, match="502"):
        reconciler.apply(KEY, SALE, "evt-1")
    assert reconciler.apply(KEY, SALE, "evt-1").status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("64.89"))]


def test_failed_create_is_sent_once_it_is_known_not_to_exist(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    sandbox.inject_fault(Fault(status=503, count=1))
    with pytest.raises(Exception, match="503"):
        reconciler.apply(KEY, SALE, "evt-1")
    assert reconciler.apply(KEY, SALE, "evt-1").status == OutcomeStatus.SENT
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("64.89"))]


def test_unknown_customer_without_partner_is_not_referred_and_not_resent(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    unreferred = Commission(**{**SALE.__dict__, "partner_key": None})
    assert reconciler.apply(KEY, unreferred, "evt-1").status == OutcomeStatus.NOT_REFERRED
    assert reconciler.apply(KEY, unreferred, "evt-2").status == OutcomeStatus.NOT_REFERRED
    assert calls(sandbox) == ["POST /v1/transactions"]
    assert live(sandbox) == []


def test_existing_customer_from_signup_gets_the_transaction(
    reconciler: Reconciler, sandbox: PartneroSandbox
) -> None:
    PartneroClient(sandbox.url, lambda: SANDBOX_KEY, 2).create_customer(
        {"partner": {"key": "acme"}, "key": "jane@example.com", "email": "jane@example.com"}
    )
    unreferred = Commission(**{**SALE.__dict__, "partner_key": None})
    assert reconciler.apply(KEY, unreferred, "evt-1").status == OutcomeStatus.SENT
    [transaction] = sandbox.transactions()
    assert transaction["partner"]["key"] == "acme"

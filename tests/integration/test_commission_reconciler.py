"""The reconciler against moto's DynamoDB (the template's LedgerTable) and the Partnero
sandbox over HTTP, through its public API: ``Reconciler.apply(ledger_key, Plan, Delivery)``.

Each test states what reached Partnero (the sandbox's requests and transactions) and the
outcome: the ledger must make duplicates free, crashes harmless, paid rewards untouched
and a commission's identity fixed once its first transaction exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from partnero_bridge.commissions import (
    AwaitingSignup,
    Delivery,
    Plan,
    Reconciler,
    ReconcileRules,
)
from partnero_bridge.decision import Target
from partnero_bridge.envelope import OutcomeStatus
from partnero_bridge.errors import PermanentError
from partnero_bridge.ledger.records import Adjustment, CommissionRecord, CustomerRecord, Recheck
from partnero_bridge.ledger.store import Claim, LeaseHeld, Ledger
from partnero_bridge.partnero import PartneroClient
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.template import read_stack
from tests.conftest import SANDBOX_KEY

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEDGER = "ecwid#1003#516483487"
TXN = "ecwid_1003_K8XTQ"
JANE = "jane@example.com"
DAY = 86400
LEASE_SECONDS = 90


class Clock:
    """The reconciler's clock, moved by hand (leases and sign-up waits read it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    """One ledger table, one sandbox, one clock; reconcilers built on demand."""

    dynamodb: Any
    table: str
    ledger: Ledger
    sandbox: PartneroSandbox
    clock: Clock

    def reconciler(
        self,
        rules: ReconcileRules | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> Reconciler:
        partnero = PartneroClient(
            self.sandbox.url, lambda: SANDBOX_KEY, timeout_seconds=2, transport=transport
        )
        return Reconciler(self.ledger, partnero, rules or ReconcileRules(), clock=self.clock)

    def delivery(self, delivery_id: str, age_seconds: float = 0) -> Delivery:
        """A delivery the bridge received ``age_seconds`` before the clock's now."""
        return Delivery(delivery_id, datetime.fromtimestamp(self.clock.now - age_seconds, UTC))

    @property
    def fresh(self) -> int:
        """A sale's time after this release's first ledger write: no need to ask Partnero."""
        return self.ledger.since() + 60

    @property
    def old(self) -> int:
        """A sale's time before this release's first ledger write: maybe sent by an older one."""
        return self.ledger.since() - 30 * DAY

    def record(self, ledger_key: str = LEDGER) -> CommissionRecord:
        found = self.ledger.commission(ledger_key)
        assert isinstance(found, CommissionRecord)
        return found


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    props = read_stack(ROOT).tables["LedgerTable"].properties
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="ledger",
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ledger = Ledger(dynamodb, "ledger", lease_seconds=LEASE_SECONDS)
        yield World(dynamodb, "ledger", ledger, sandbox, Clock())


def sale(created_at: int | None, amount: str | None = "64.89", **changes: Any) -> Target:
    """An Ecwid-like sale: Jane, referred by demo-partner."""
    target = Target(
        transaction_key=TXN,
        amount=Decimal(amount) if amount is not None else None,
        currency="USD",
        reason="paid" if amount is not None else "refunded",
        detail="order is PAID" if amount is not None else "order is REFUNDED",
        customer_key=JANE,
        partner_key="demo-partner",
        email="Jane@Example.com",
        name="Jane",
        created_at=created_at,
    )
    return replace(target, **changes)


def nothing_due(reason: str = "refunded") -> Target:
    """What an order says when nothing is due any more (as ``_reverse_gone`` builds it)."""
    return Target(
        transaction_key=TXN, amount=None, currency="USD", reason=reason, detail=f"order {reason}"
    )


def calls(sandbox: PartneroSandbox, start: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests()[start:]]


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal, str, str]]:
    """Every live transaction: (key, amount, customer key, partner key)."""
    return [
        (t["key"], Decimal(str(t["amount"])), t["customer"]["key"], t["partner"]["key"])
        for t in sandbox.transactions()
        if not t.get("deleted")
    ]


def posted(sandbox: PartneroSandbox) -> list[Any]:
    return [
        r.body for r in sandbox.requests() if (r.method, r.path) == ("POST", "/v1/transactions")
    ]


# -- one transaction, whatever arrives how often -------------------------------------------


def test_same_target_is_one_transaction_and_changes_replace_then_delete_it(
    world: World, sandbox: PartneroSandbox
) -> None:
    reconciler = world.reconciler()
    created_at = world.fresh
    first = reconciler.apply(LEDGER, Plan(sale(created_at)), world.delivery("evt-1"))
    assert (first.status, first.reason) == (OutcomeStatus.SENT, "paid")
    assert first.detail == "created 64.89 USD: order is PAID"
    for n in range(5):
        again = reconciler.apply(LEDGER, Plan(sale(created_at)), world.delivery(f"evt-{n + 2}"))
        assert again.status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "demo-partner")]
    # A sale after this release's first ledger write: nothing to ask Partnero first.
    assert calls(sandbox) == ["POST /v1/transactions"]
    [body] = posted(sandbox)
    assert body["customer"] == {
        "key": JANE,
        "partner": {"key": "demo-partner"},
        "email": "Jane@Example.com",
        "name": "Jane",
    }
    assert body["options"] == {"create_customer": True}
    assert body["created_at"] == created_at

    # A partial refund: the same key re-created with the new amount and the sale's date.
    mark = len(sandbox.requests())
    refund = sale(None, "34.89", reason="partially_refunded")
    outcome = reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SENT, "partially_refunded")
    assert outcome.detail == "replaced 64.89 with 34.89 USD: order is PAID"
    assert calls(sandbox, mark) == [
        f"GET /v1/transactions/{TXN}",  # rewards read before anything is taken back
        f"DELETE /v1/transactions/{TXN}",
        "POST /v1/transactions",
    ]
    assert posted(sandbox)[-1]["created_at"] == created_at
    assert posted(sandbox)[-1]["amount"] == Decimal("34.89")
    assert live(sandbox) == [(TXN, Decimal("34.89"), JANE, "demo-partner")]
    assert world.record().holds == Decimal("34.89")

    # Nothing due: deleted.
    mark = len(sandbox.requests())
    outcome = reconciler.apply(LEDGER, Plan(nothing_due()), world.delivery("evt-full"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SENT, "refunded")
    # It says what Partnero lost, not what it holds after.
    assert outcome.detail == "reversed 34.89 USD: order refunded"
    assert world.record().history[-1].action == "reversed"
    assert calls(sandbox, mark) == [
        f"GET /v1/transactions/{TXN}",
        f"DELETE /v1/transactions/{TXN}",
    ]
    assert live(sandbox) == []
    assert world.record().commission_state == "absent"

    # Nothing due again: nothing sent.
    mark = len(sandbox.requests())
    for n in range(3):
        outcome = reconciler.apply(LEDGER, Plan(nothing_due()), world.delivery(f"evt-again-{n}"))
        assert outcome.status == OutcomeStatus.ALREADY_RECORDED
        assert outcome.detail == "order refunded; Partnero holds nothing"
    assert calls(sandbox, mark) == []
    assert [t["key"] for t in sandbox.transactions()] == [TXN, TXN]  # both deleted


def test_nothing_due_for_a_sale_never_sent_is_ignored(
    world: World, sandbox: PartneroSandbox
) -> None:
    outcome = world.reconciler().apply(LEDGER, Plan(nothing_due()), world.delivery("evt"))
    assert outcome.status == OutcomeStatus.IGNORED
    assert sandbox.requests() == []


# -- a crash between Partnero's answer and the ledger write ---------------------------------


class Killed(BaseException):
    """The Lambda runtime killing the invocation: no ``except Exception`` runs."""


class WriteFailed(Exception):
    """DynamoDB failing the ledger write after Partnero answered."""


@pytest.mark.parametrize("failure", [WriteFailed, Killed], ids=["write-failed", "killed"])
def test_a_crash_after_partnero_answered_does_not_pay_twice(
    world: World,
    sandbox: PartneroSandbox,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
    failure: type[BaseException],
) -> None:
    original = Ledger.record
    failures: list[str] = []

    def record_fails_once(self: Ledger, claim: Claim, record: CommissionRecord) -> list[str]:
        if not failures:
            failures.append(claim.ledger_key)
            raise failure("lost between Partnero's answer and the ledger write")
        return original(self, claim, record)

    monkeypatch.setattr(Ledger, "record", record_fails_once)
    reconciler = world.reconciler()
    target = sale(world.fresh)
    with pytest.raises(failure):
        reconciler.apply(LEDGER, Plan(target), world.delivery("evt-1"))
    assert len(live(sandbox)) == 1

    retries = 1
    if failure is Killed:
        # The dead invocation's lease still runs: others wait instead of sending.
        with pytest.raises(LeaseHeld, match="another invocation"):
            reconciler.apply(LEDGER, Plan(target), world.delivery("evt-1"))
        retries += 1
        world.clock.advance(LEASE_SECONDS + 1)

    outcome = reconciler.apply(LEDGER, Plan(target), world.delivery("evt-1"))
    assert outcome.status == OutcomeStatus.ALREADY_RECORDED
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "demo-partner")]
    # The next attempt asked Partnero before sending anything.
    assert calls(sandbox) == ["POST /v1/transactions", f"GET /v1/transactions/{TXN}"]
    assert world.record().holds == Decimal("64.89")
    figures(crashes=1, retries=retries, transactions_created=1, partnero_calls=len(calls(sandbox)))


# -- payments the ledger has no record of ----------------------------------------------------


def _earlier_release_sent(sandbox: PartneroSandbox, amount: str, created_at: int) -> None:
    """A transaction an earlier release created without a ledger record of it."""
    client = PartneroClient(sandbox.url, lambda: SANDBOX_KEY, timeout_seconds=2)
    body = {
        "customer": {"key": JANE, "partner": {"key": "demo-partner"}},
        "key": TXN,
        "amount": float(amount),
        "amount_units": "USD",
        "action": "sale",
        "created_at": created_at,
        "options": {"create_customer": True},
    }
    assert client.create_transaction(body).status_code == 200


def test_an_unrecorded_old_payment_partnero_holds_is_not_created_again(
    world: World, sandbox: PartneroSandbox
) -> None:
    created_at = world.old
    _earlier_release_sent(sandbox, "64.89", created_at)
    mark = len(sandbox.requests())
    outcome = world.reconciler().apply(LEDGER, Plan(sale(created_at)), world.delivery("evt"))
    assert outcome.status == OutcomeStatus.ALREADY_RECORDED
    assert calls(sandbox, mark) == [f"GET /v1/transactions/{TXN}"]
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "demo-partner")]
    record = world.record()
    assert (record.commission_state, record.holds) == ("recorded", Decimal("64.89"))

    # From now on the ledger's word is enough.
    mark = len(sandbox.requests())
    world.reconciler().apply(LEDGER, Plan(sale(created_at)), world.delivery("evt-2"))
    assert calls(sandbox, mark) == []

    # The transaction Partnero held fixed the identity: a refund naming another customer
    # and no date re-creates it under the original customer, partner and date.
    refund = sale(None, "34.89", reason="partially_refunded", customer_key="other@example.com")
    outcome = world.reconciler().apply(LEDGER, Plan(refund), world.delivery("evt-3"))
    assert outcome.status == OutcomeStatus.SENT
    assert live(sandbox) == [(TXN, Decimal("34.89"), JANE, "demo-partner")]
    assert posted(sandbox)[-1]["created_at"] == created_at


def test_an_unrecorded_old_payment_with_another_amount_is_replaced_once(
    world: World, sandbox: PartneroSandbox
) -> None:
    created_at = world.old
    _earlier_release_sent(sandbox, "80.00", created_at)
    mark = len(sandbox.requests())
    outcome = world.reconciler().apply(LEDGER, Plan(sale(created_at)), world.delivery("evt"))
    assert outcome.status == OutcomeStatus.SENT
    assert calls(sandbox, mark) == [
        f"GET /v1/transactions/{TXN}",
        f"DELETE /v1/transactions/{TXN}",
        "POST /v1/transactions",
    ]
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "demo-partner")]


def test_an_unrecorded_old_payment_partnero_lacks_is_asked_then_created(
    world: World, sandbox: PartneroSandbox
) -> None:
    outcome = world.reconciler().apply(LEDGER, Plan(sale(world.old)), world.delivery("evt"))
    assert outcome.status == OutcomeStatus.SENT
    assert calls(sandbox) == [f"GET /v1/transactions/{TXN}", "POST /v1/transactions"]
    assert len(live(sandbox)) == 1


def test_an_unrecorded_payment_after_the_ledgers_start_is_created_without_asking(
    world: World, sandbox: PartneroSandbox
) -> None:
    outcome = world.reconciler().apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt"))
    assert outcome.status == OutcomeStatus.SENT
    assert calls(sandbox) == ["POST /v1/transactions"]


# -- a paid reward is never taken back ---------------------------------------------------


@pytest.mark.parametrize(
    ("refund", "due"),
    [
        (sale(None, "34.89", reason="partially_refunded"), Decimal("34.89")),
        (nothing_due(), Decimal(0)),
    ],
    ids=["partial-refund", "full-refund"],
)
def test_a_paid_reward_is_never_deleted_the_adjustment_is_recorded(
    world: World, sandbox: PartneroSandbox, refund: Target, due: Decimal
) -> None:
    reconciler = world.reconciler()
    reconciler.apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt-sale"))
    [paid] = sandbox.pay_rewards(TXN)
    assert paid["rewards"][0]["status"] == "paid"

    mark = len(sandbox.requests())
    outcome = reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.ADJUSTMENT_NEEDED, "reward_paid")
    assert outcome.detail.startswith("Partnero holds 64.89 USD with a paid reward; ")
    assert outcome.detail.endswith(f"is due ({refund.reason}): adjust by hand")
    assert calls(sandbox, mark) == [f"GET /v1/transactions/{TXN}"]  # nothing deleted
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "demo-partner")]
    record = world.record()
    assert (record.commission_state, record.holds) == ("recorded", Decimal("64.89"))
    [adjustment] = record.adjustments
    assert isinstance(adjustment, Adjustment)
    assert (adjustment.transaction_key, adjustment.held, adjustment.target) == (
        TXN,
        Decimal("64.89"),
        due,
    )
    assert (adjustment.currency, adjustment.reason) == ("USD", refund.reason)


def test_an_approved_but_unpaid_reward_is_still_replaced(
    world: World, sandbox: PartneroSandbox
) -> None:
    reconciler = world.reconciler()
    reconciler.apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt-sale"))
    sandbox.approve_rewards(TXN)
    refund = sale(None, "34.89", reason="partially_refunded")
    assert reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-2")).status == (
        OutcomeStatus.SENT
    )
    assert live(sandbox) == [(TXN, Decimal("34.89"), JANE, "demo-partner")]


# -- a re-created key Partnero refuses as taken ---------------------------------------------


class RefuseUsedKeys(httpx.BaseTransport):
    """Forwards to the sandbox, but refuses (422 "already been taken") the key of any
    transaction Partnero ever held, deleted ones included: a Partnero that keeps deleted
    transactions and their keys."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.used: set[str] = set()
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/transactions"):
            return self._inner.handle_request(request)
        key = json.loads(request.read())["key"]
        if key in self.used:
            self.refused.append(key)
            message = "The key has already been taken."
            return httpx.Response(422, json={"message": message, "errors": {"key": [message]}})
        response = self._inner.handle_request(request)
        if response.status_code == 200:
            self.used.add(key)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_recreated_key_refused_as_taken_goes_to_the_next_suffix(
    world: World, sandbox: PartneroSandbox
) -> None:
    transport = RefuseUsedKeys()
    reconciler = world.reconciler(transport=transport)
    created_at = world.fresh
    reconciler.apply(LEDGER, Plan(sale(created_at)), world.delivery("evt-sale"))

    refund = sale(None, "34.89", reason="partially_refunded")
    outcome = reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund"))
    assert outcome.status == OutcomeStatus.SENT
    assert transport.refused == [TXN]
    assert live(sandbox) == [(f"{TXN}_r2", Decimal("34.89"), JANE, "demo-partner")]
    assert posted(sandbox)[-1]["created_at"] == created_at
    record = world.record()
    assert record.transaction_keys == [TXN, f"{TXN}_r2"]
    assert record.transaction_key == f"{TXN}_r2"

    # The suffixed transaction is the one reconciled from now on.
    mark = len(sandbox.requests())
    assert reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-again")).status == (
        OutcomeStatus.ALREADY_RECORDED
    )
    assert calls(sandbox, mark) == []
    reconciler.apply(LEDGER, Plan(nothing_due()), world.delivery("evt-full"))
    assert calls(sandbox, mark) == [
        f"GET /v1/transactions/{TXN}_r2",
        f"DELETE /v1/transactions/{TXN}_r2",
    ]
    assert live(sandbox) == []


def test_a_crash_after_a_suffixed_recreate_does_not_pay_twice(
    world: World, sandbox: PartneroSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partnero created ``<key>_r2``, then the ledger write failed: the next attempt must
    find that transaction rather than create yet another one."""
    transport = RefuseUsedKeys()
    reconciler = world.reconciler(transport=transport)
    reconciler.apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt-sale"))

    original = Ledger.record
    failures: list[str] = []

    def record_fails_once(self: Ledger, claim: Claim, record: CommissionRecord) -> list[str]:
        if not failures:
            failures.append(claim.ledger_key)
            raise WriteFailed("lost between Partnero's answer and the ledger write")
        return original(self, claim, record)

    monkeypatch.setattr(Ledger, "record", record_fails_once)
    refund = sale(None, "34.89", reason="partially_refunded")
    with pytest.raises(WriteFailed):
        reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund"))
    assert live(sandbox) == [(f"{TXN}_r2", Decimal("34.89"), JANE, "demo-partner")]

    reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund"))
    # Exactly one live transaction for the order, whatever its key.
    held = live(sandbox)
    assert [amount for _key, amount, _c, _p in held] == [Decimal("34.89")], held
    record = world.record()
    assert record.holds == Decimal("34.89")
    assert record.transaction_key in [key for key, *_ in live(sandbox)]


# -- the program's currency ------------------------------------------------------------------


def test_a_payment_in_another_currency_than_the_programs_is_refused(
    world: World, sandbox: PartneroSandbox
) -> None:
    euros = sale(world.fresh, currency="EUR")
    strict = world.reconciler(ReconcileRules(program_currency="USD"))
    with pytest.raises(PermanentError) as refused:
        strict.apply(LEDGER, Plan(euros), world.delivery("evt"))
    assert "EUR" in refused.value.reason
    assert "USD" in refused.value.reason
    assert sandbox.requests() == []
    assert world.record().commission_state == "absent"

    converting = world.reconciler(ReconcileRules(program_currency="USD", converts_currencies=True))
    assert converting.apply(LEDGER, Plan(euros), world.delivery("evt")).status == (
        OutcomeStatus.SENT
    )
    [body] = posted(sandbox)
    assert (body["amount"], body["amount_units"]) == (Decimal("64.89"), "EUR")


def test_a_payment_in_the_programs_currency_is_sent(world: World, sandbox: PartneroSandbox) -> None:
    reconciler = world.reconciler(ReconcileRules(program_currency="usd"))
    assert reconciler.apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt")).status == (
        OutcomeStatus.SENT
    )


# -- not referred ---------------------------------------------------------------------------


def test_a_partner_key_partnero_refuses_is_not_referred_and_not_sent_again(
    world: World, sandbox: PartneroSandbox
) -> None:
    reconciler = world.reconciler()
    unknown = sale(world.fresh, partner_key="no-such-partner")
    outcome = reconciler.apply(LEDGER, Plan(unknown), world.delivery("evt-1"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.NOT_REFERRED, "invalid_partner")
    assert [r.status for r in sandbox.requests()] == [400]
    assert sandbox.requests()[0].body["customer"]["partner"] == {"key": "no-such-partner"}

    again = reconciler.apply(LEDGER, Plan(unknown), world.delivery("evt-2"))
    assert (again.status, again.reason) == (OutcomeStatus.NOT_REFERRED, "invalid_partner")
    assert calls(sandbox) == ["POST /v1/transactions"]  # no second POST
    assert live(sandbox) == []

    # The order now names a partner Partnero knows: sent under it.
    fixed = reconciler.apply(
        LEDGER, Plan(sale(world.fresh, partner_key="acme")), world.delivery("evt-3")
    )
    assert fixed.status == OutcomeStatus.SENT
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "acme")]


@pytest.mark.parametrize("age", [0, 300])
def test_an_unknown_customer_without_partner_waits_for_its_signup(
    world: World, sandbox: PartneroSandbox, age: int
) -> None:
    reconciler = world.reconciler(ReconcileRules(signup_wait_seconds=900))
    unreferred = sale(world.fresh, partner_key=None)
    with pytest.raises(AwaitingSignup) as waiting:
        reconciler.apply(LEDGER, Plan(unreferred), world.delivery("evt", age_seconds=age))
    assert waiting.value.retry_after == pytest.approx(900 - age, abs=1)
    assert calls(sandbox) == ["GET /v1/customers/jane%40example.com"]
    # Nothing recorded: neither a state for the sale nor a waiting customer.
    record = world.record()
    assert (record.commission_state, record.updated_at, record.lease_token) == (
        "absent",
        None,
        None,
    )
    assert world.ledger.customer(JANE) is None


@pytest.mark.parametrize("with_recheck", [True, False], ids=["recheck", "no-recheck"])
def test_an_unknown_customer_after_the_wait_is_not_referred_and_remembered(
    world: World, sandbox: PartneroSandbox, with_recheck: bool
) -> None:
    reconciler = world.reconciler(ReconcileRules(signup_wait_seconds=900))
    recheck = Recheck(
        at=int(world.clock.now) - 1000, source="ecwid", ref={"store": "1003", "order": "K8XTQ"}
    )
    plan = Plan(sale(world.fresh, partner_key=None), recheck=recheck if with_recheck else None)
    outcome = reconciler.apply(LEDGER, plan, world.delivery("evt", age_seconds=1000))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.NOT_REFERRED, "unknown_customer")
    assert calls(sandbox) == ["GET /v1/customers/jane%40example.com"]
    assert live(sandbox) == []
    assert world.record().commission_state == "not_referred"
    customer = world.ledger.customer(JANE)
    if with_recheck:
        assert customer is not None
        assert customer.status == "pending"
        assert customer.not_referred_sales == {LEDGER: recheck}
    else:
        assert customer is None

    # Delivered again (received just now): still not referred, nothing sent, no new wait.
    outcome = reconciler.apply(LEDGER, plan, world.delivery("evt-2"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.NOT_REFERRED, "unknown_customer")
    assert [r for r in sandbox.requests() if r.method != "GET"] == []


def _signed_up(sandbox: PartneroSandbox) -> None:
    client = PartneroClient(sandbox.url, lambda: SANDBOX_KEY, timeout_seconds=2)
    answer = client.create_customer({"partner": {"key": "acme"}, "key": JANE, "email": JANE})
    assert answer.status_code == 200


def test_a_customer_the_ledger_knows_from_a_signup_gets_the_sale_without_a_customer_get(
    world: World, sandbox: PartneroSandbox
) -> None:
    _signed_up(sandbox)
    world.ledger.record_customer(JANE, "created", "acme", "signup-1", "")
    mark = len(sandbox.requests())
    outcome = world.reconciler().apply(
        LEDGER, Plan(sale(world.fresh, partner_key=None)), world.delivery("evt")
    )
    assert outcome.status == OutcomeStatus.SENT
    assert calls(sandbox, mark) == ["POST /v1/transactions"]
    [body] = posted(sandbox)
    assert "options" not in body  # to the existing customer, not creating one
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "acme")]


def test_a_customer_only_partnero_knows_is_asked_for_then_gets_the_sale(
    world: World, sandbox: PartneroSandbox
) -> None:
    _signed_up(sandbox)
    mark = len(sandbox.requests())
    outcome = world.reconciler().apply(
        LEDGER, Plan(sale(world.fresh, partner_key=None)), world.delivery("evt")
    )
    assert outcome.status == OutcomeStatus.SENT
    assert calls(sandbox, mark) == [
        "GET /v1/customers/jane%40example.com",
        "POST /v1/transactions",
    ]


# -- a commission's identity is fixed by its first transaction ------------------------------


def test_an_edited_order_is_recreated_under_the_original_customer_and_partner(
    world: World, sandbox: PartneroSandbox
) -> None:
    reconciler = world.reconciler()
    created_at = world.fresh
    reconciler.apply(LEDGER, Plan(sale(created_at)), world.delivery("evt-sale"))

    edited = {"customer_key": "someone.else@example.com", "partner_key": "acme"}
    mark = len(sandbox.requests())
    same_amount = sale(created_at + 3600, **edited)
    assert reconciler.apply(LEDGER, Plan(same_amount), world.delivery("evt-edit")).status == (
        OutcomeStatus.ALREADY_RECORDED
    )
    assert calls(sandbox, mark) == []

    refund = sale(None, "34.89", reason="partially_refunded", **edited)
    assert reconciler.apply(LEDGER, Plan(refund), world.delivery("evt-refund")).status == (
        OutcomeStatus.SENT
    )
    assert live(sandbox) == [(TXN, Decimal("34.89"), JANE, "demo-partner")]
    body = posted(sandbox)[-1]
    assert body["customer"]["key"] == JANE
    assert body["customer"]["partner"] == {"key": "demo-partner"}
    assert body["created_at"] == created_at
    record = world.record()
    assert (record.customer_key, record.partner_key, record.created_at_epoch) == (
        JANE,
        "demo-partner",
        created_at,
    )
    assert [c["key"] for c in sandbox.customers()] == [JANE]


def test_a_signup_landing_between_the_customer_check_and_the_wait_note_still_counts(
    world: World, sandbox: PartneroSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sign-up is processed after the sale's customer GET (404) and before the sale
    # notes itself on the customer: the sale must not wait for a sign-up that came.
    reconciler = world.reconciler(ReconcileRules(signup_wait_seconds=900))
    original = Ledger.wait_for_signup

    def signup_lands_first(
        self: Ledger, customer_key: str, ledger_key: str, recheck: Recheck
    ) -> CustomerRecord:
        _signed_up(sandbox)
        self.record_customer(customer_key, "created", "acme", "signup-1", "")
        return original(self, customer_key, ledger_key, recheck)

    monkeypatch.setattr(Ledger, "wait_for_signup", signup_lands_first)
    recheck = Recheck(at=int(world.clock.now), source="ecwid", ref={"store": "1", "order": "X"})
    plan = Plan(sale(world.fresh, partner_key=None), recheck=recheck)
    outcome = reconciler.apply(LEDGER, plan, world.delivery("evt", age_seconds=1000))
    assert outcome.status == OutcomeStatus.SENT
    assert live(sandbox) == [(TXN, Decimal("64.89"), JANE, "acme")]


def test_the_same_figure_in_another_currency_is_replaced(
    world: World, sandbox: PartneroSandbox
) -> None:
    reconciler = world.reconciler()
    reconciler.apply(LEDGER, Plan(sale(world.fresh)), world.delivery("evt-1"))
    outcome = reconciler.apply(
        LEDGER, Plan(sale(world.fresh, currency="EUR")), world.delivery("evt-2")
    )
    assert outcome.status == OutcomeStatus.SENT
    assert outcome.detail == "replaced 64.89 USD with 64.89 EUR: order is PAID"
    [transaction] = [t for t in sandbox.transactions() if not t.get("deleted")]
    assert (transaction["amount_units"], world.record().currency) == ("EUR", "EUR")

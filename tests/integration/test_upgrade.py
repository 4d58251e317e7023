"""Safe to upgrade: a ledger the previous release wrote keeps one transaction per payment.

Ledger items are put exactly as the previous release wrote them (raw DynamoDB attribute
values, its attribute names, a Stripe payment's ``facts`` as a JSON string) and Partnero
(the sandbox) holds what that release sent; later events are then replayed through the
functions in-process (moto for AWS, fake Ecwid and the sandbox over HTTP).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from partnero_bridge_cli.local.template import read_stack
from tests.conftest import SANDBOX_KEY
from tests.support import ecwid as ecwid_events
from tests.support import stripe as stripe_events
from tests.support.ecwid import ORDER
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STORE = 1003
STORE_TOKEN = "secret_store_token_1003"
ECWID_CLIENT_SECRET = "test-ecwid-client-secret"
STRIPE_SECRET = "whsec_test_upgrade_1"
STRIPE_KEY = "rk_test_upgrade_reader"

ORDER_LEDGER = "ecwid#1003#516483487"  # the previous release: ecwid#<store>#<entityId>
ORDER_TXN = "ecwid_1003_K8XTQ"
JANE = "jane.doe@example.com"

INVOICE_LEDGER = "stripe#invoice:in_FIRSTAdaPartneroDemo"
INVOICE_TXN = "stripe_in_FIRSTAdaPartneroDemo"
INVOICE_CREATED = 1748858519  # invoice.paid.subscription_create's event time
ADA = "ada@example.com"


@pytest.fixture
def ecwid() -> Iterator[FakeEcwid]:
    with FakeEcwid(stores={STORE: STORE_TOKEN}) as server:
        server.put_order(STORE, ORDER)
        yield server


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=(STRIPE_KEY,)) as server:
        yield server


@pytest.fixture
def stripe_api(stripe_server: FakeStripeApi) -> FakeStripeApi:
    """The Stripe API the bridge reads each payment's state from (the event is a trigger)."""
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def bridge(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PartneroSandbox,
    ecwid: FakeEcwid,
    stripe_api: FakeStripeApi,
) -> Iterator[InProcessBridge]:
    env = {
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": STRIPE_KEY,
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "ECWID_API_URL": ecwid.url,
        "ECWID_CLIENT_SECRET": ECWID_CLIENT_SECRET,
        "ECWID_STORE_TOKENS": json.dumps({str(STORE): STORE_TOKEN}),
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
        "BRIDGE_MAX_RECEIVES": "3",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_SIGNUP_WAIT_SECONDS": "2",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


# -- the previous release's items, attribute for attribute ----------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def previous_commission(
    pk: str,
    *,
    amount: str,
    currency: str,
    transaction_key: str,
    customer_key: str,
    partner_key: str,
    created_at: int,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A recorded commission as the previous release's ``TransactionLedger.record`` left it
    (``entity`` from its claim; lease fields removed)."""
    item: dict[str, Any] = {
        "pk": _s(pk),
        "entity": _s("transaction"),
        "commission_state": _s("recorded"),
        "last_delivery_id": _s("evt-previous-release"),
        "detail": _s(f"created {amount} {currency}"),
        "updated_at": _s("2026-11-20T09:00:00.000000+00:00"),
        "transaction_key": _s(transaction_key),
        "customer_key": _s(customer_key),
        "currency": _s(currency),
        "partner_key": _s(partner_key),
        "created_at_epoch": _n(created_at),
        "amount": _s(amount),
    }
    if facts is not None:
        item["facts"] = _s(json.dumps(facts, sort_keys=True, default=str))
    return item


def previous_alias(pk: str, alias_of: str) -> dict[str, Any]:
    return {"pk": _s(pk), "alias_of": _s(alias_of), "entity": _s("alias")}


def previous_customer(customer_key: str, status: str, partner_key: str) -> dict[str, Any]:
    return {
        "pk": _s(f"customer#{customer_key}"),
        "entity": _s("customer"),
        "status": _s(status),
        "partner_key": _s(partner_key),
        "last_delivery_id": _s("signup-previous-release"),
        "detail": _s(""),
        "updated_at": _s("2026-11-01T08:00:00.000000+00:00"),
        "created_at": _s("2026-11-01T08:00:00.000000+00:00"),
        "deliveries": _n(1),
    }


def previous_stripe_customer(
    stripe_id: str, customer_key: str, partner_key: str, opted_out: bool = False
) -> dict[str, Any]:
    return {
        "pk": _s(f"stripe-customer#{stripe_id}"),
        "entity": _s("stripe_customer"),
        "updated_at": _s("2026-11-01T08:00:00.000000+00:00"),
        "customer_key": _s(customer_key),
        "partner_key": _s(partner_key),
        "opted_out": {"BOOL": opted_out},
    }


def put(bridge: InProcessBridge, *items: dict[str, Any]) -> None:
    for item in items:
        bridge.dynamodb.put_item(TableName=bridge.resources.refs["LedgerTable"], Item=item)


def previous_release_sent(sandbox: PartneroSandbox, body: dict[str, Any]) -> None:
    """A transaction as the previous release created it (its ``transaction_request``)."""
    answer = httpx.post(
        f"{sandbox.url}/transactions",
        json=body,
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def sale_body(
    key: str, amount: int | float, currency: str, customer: str, partner: str, created_at: int
) -> dict[str, Any]:
    return {
        "customer": {"key": customer, "partner": {"key": partner}},
        "key": key,
        "amount": amount,
        "amount_units": currency,
        "action": "sale",
        "options": {"create_customer": True},
        "created_at": created_at,
    }


# -- replaying events ----------------------------------------------------------------------


def send_ecwid(bridge: InProcessBridge, event_type: str, order: dict[str, Any]) -> None:
    raw, headers = ecwid_events.signed(
        ecwid_events.webhook(event_type, STORE, order), ECWID_CLIENT_SECRET
    )
    assert bridge.call("POST", "/webhooks/ecwid", raw, headers).status == 200
    bridge.drain("ecwid")


def send_stripe(
    bridge: InProcessBridge,
    stripe_api: FakeStripeApi,
    *events: dict[str, Any],
    holds: tuple[dict[str, Any], ...] = (),
) -> None:
    """Post events (each loaded into the fake Stripe first, with what Stripe also holds:
    ``holds``, usually the sample's sidecar), then process them."""
    for event in events:
        stripe_api.load_event(event, holds)
        raw, headers = stripe_events.signed(event, STRIPE_SECRET)
        answer = bridge.call("POST", "/webhooks/stripe", raw, headers)
        assert answer.status == 200, answer.body
    bridge.drain("stripe")


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal, str, str]]:
    return sorted(
        (t["key"], Decimal(str(t["amount"])), t["customer"]["key"], t["partner"]["key"])
        for t in sandbox.transactions()
        if not t.get("deleted")
    )


def calls(sandbox: PartneroSandbox, start: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests()[start:]]


def posts(sandbox: PartneroSandbox, start: int) -> list[Any]:
    return [
        r.body
        for r in sandbox.requests()[start:]
        if (r.method, r.path) == ("POST", "/v1/transactions")
    ]


def no_dead_letters(bridge: InProcessBridge) -> None:
    for queue in ("EcwidOrderDeadLetterQueue", "StripeEventDeadLetterQueue"):
        assert bridge.messages(queue) == [], queue


# -- the table ------------------------------------------------------------------------------


def test_the_ledger_tables_key_schema_is_unchanged(bridge: InProcessBridge) -> None:
    """Changing it would make CloudFormation replace the table (and lose the ledger)."""
    props = read_stack(ROOT).tables["LedgerTable"].properties
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    described = bridge.dynamodb.describe_table(TableName=bridge.resources.refs["LedgerTable"])
    assert described["Table"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


# -- Ecwid ----------------------------------------------------------------------------------


def test_an_ecwid_order_the_previous_release_recorded_keeps_one_transaction(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    put(
        bridge,
        previous_commission(
            ORDER_LEDGER,
            amount="60.00",
            currency="USD",
            transaction_key=ORDER_TXN,
            customer_key=JANE,
            partner_key="demo-partner",
            created_at=ORDER["createTimestamp"],
        ),
    )
    previous_release_sent(
        sandbox, sale_body(ORDER_TXN, 60, "USD", JANE, "demo-partner", ORDER["createTimestamp"])
    )
    mark = len(sandbox.requests())

    # The same order again: the previous release's record is the ledger's word.
    send_ecwid(bridge, "order.updated", ORDER)
    assert calls(sandbox, mark) == []
    assert live(sandbox) == [(ORDER_TXN, Decimal("60"), JANE, "demo-partner")]
    item = bridge.ledger_item(ORDER_LEDGER)
    assert item is not None
    assert (item["commission_state"], Decimal(item["amount"])) == ("recorded", Decimal("60"))

    # A partial refund: the same transaction, re-created with the share not refunded.
    partial = {
        **copy.deepcopy(ORDER),
        "paymentStatus": "PARTIALLY_REFUNDED",
        "refundedAmount": 20.0,
        "refunds": [
            {
                "date": "2026-11-21 10:00:00 +0000",
                "source": "CP",
                "reason": "damaged",
                "amount": 20.0,
            }
        ],
    }
    ecwid.put_order(STORE, partial)
    send_ecwid(bridge, "order.updated", partial)
    # 60.00 x (71.39 - 20) / 71.39 = 43.19
    assert live(sandbox) == [(ORDER_TXN, Decimal("43.19"), JANE, "demo-partner")]
    [body] = posts(sandbox, mark)
    assert body["created_at"] == ORDER["createTimestamp"]
    assert calls(sandbox, mark) == [
        f"GET /v1/transactions/{ORDER_TXN}",
        f"DELETE /v1/transactions/{ORDER_TXN}",
        "POST /v1/transactions",
    ]
    item = bridge.ledger_item(ORDER_LEDGER)
    assert item is not None
    assert Decimal(item["amount"]) == Decimal("43.19")
    no_dead_letters(bridge)


@pytest.mark.parametrize("old_shape", [False, True], ids=["data.orderId", "entityId-only"])
def test_an_ecwid_order_the_previous_release_recorded_is_reversed_when_deleted(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid, old_shape: bool
) -> None:
    """The previous release wrote no alias for an order's public id: deleting the order
    after the upgrade, before any other event about it, must still reverse it."""
    put(
        bridge,
        previous_commission(
            ORDER_LEDGER,
            amount="60.00",
            currency="USD",
            transaction_key=ORDER_TXN,
            customer_key=JANE,
            partner_key="demo-partner",
            created_at=ORDER["createTimestamp"],
        ),
    )
    previous_release_sent(
        sandbox, sale_body(ORDER_TXN, 60, "USD", JANE, "demo-partner", ORDER["createTimestamp"])
    )
    ecwid.delete_order(STORE, ORDER["id"])
    body = ecwid_events.webhook("order.deleted", STORE, ORDER, deleted_old_shape=old_shape)
    raw, headers = ecwid_events.signed(body, ECWID_CLIENT_SECRET)
    assert bridge.call("POST", "/webhooks/ecwid", raw, headers).status == 200
    bridge.drain("ecwid")
    assert live(sandbox) == []
    item = bridge.ledger_item(ORDER_LEDGER)
    assert item is not None
    assert item["commission_state"] == "absent"
    no_dead_letters(bridge)


def test_an_ecwid_sale_for_a_customer_signed_up_under_the_previous_release(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    """The previous release's customer item says Partnero has the customer: no GET."""
    put(bridge, previous_customer(JANE, "created", "acme"))
    answer = httpx.post(
        f"{sandbox.url}/customers",
        json={"partner": {"key": "acme"}, "key": JANE, "email": JANE},
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 200
    unreferred = {**ORDER, "extraFields": {}, "orderExtraFields": []}
    ecwid.put_order(STORE, unreferred)
    mark = len(sandbox.requests())
    send_ecwid(bridge, "order.created", unreferred)
    assert [c for c in calls(sandbox, mark) if "/customers" in c] == []
    assert live(sandbox) == [(ORDER_TXN, Decimal("60"), JANE, "acme")]
    no_dead_letters(bridge)


def test_an_ecwid_order_partnero_holds_but_the_ledger_does_not_is_not_created_again(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    """An earlier release keyed the order by the public id from the webhook body; this
    release keys it by the fetched internal id and finds no record: it asks Partnero."""
    put(
        bridge,
        previous_commission(
            "ecwid#1003#K8XTQ",
            amount="60.00",
            currency="USD",
            transaction_key=ORDER_TXN,
            customer_key=JANE,
            partner_key="demo-partner",
            created_at=ORDER["createTimestamp"],
        ),
    )
    previous_release_sent(
        sandbox, sale_body(ORDER_TXN, 60, "USD", JANE, "demo-partner", ORDER["createTimestamp"])
    )
    mark = len(sandbox.requests())
    send_ecwid(bridge, "order.updated", ORDER)
    assert calls(sandbox, mark) == [f"GET /v1/transactions/{ORDER_TXN}"]
    assert live(sandbox) == [(ORDER_TXN, Decimal("60"), JANE, "demo-partner")]
    item = bridge.ledger_item(ORDER_LEDGER)
    assert item is not None
    assert item["commission_state"] == "recorded"
    no_dead_letters(bridge)


# -- Stripe ---------------------------------------------------------------------------------


def _previous_invoice_items() -> list[dict[str, Any]]:
    facts = {  # the previous release's PaymentFacts.dump()
        "amount": "20.00",
        "gross_minor": 2400,
        "currency": "USD",
        "rank": 3,
        "opted_out": False,
        "charge_refunded": {},
        "refunds": {},
        "disputes": {},
    }
    return [
        previous_commission(
            INVOICE_LEDGER,
            amount="20.00",
            currency="USD",
            transaction_key=INVOICE_TXN,
            customer_key=ADA,
            partner_key="demo-partner",
            created_at=INVOICE_CREATED,
            facts=facts,
        ),
        previous_alias("stripe#pi:pi_FIRSTAdaPartneroDemo", INVOICE_LEDGER),
        previous_stripe_customer("cus_SAda0PartneroDemo", ADA, "demo-partner"),
    ]


def test_a_stripe_payment_the_previous_release_recorded_keeps_one_transaction(
    bridge: InProcessBridge, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    """Changed: the previous release's folded ``facts`` are no longer updated (the payment's
    state is read from Stripe, where the refund is), so the check of the refund folded
    into them is gone; its record (amount, key, sale date) is what is checked."""
    put(bridge, *_previous_invoice_items())
    previous_release_sent(
        sandbox, sale_body(INVOICE_TXN, 20, "USD", ADA, "demo-partner", INVOICE_CREATED)
    )
    mark = len(sandbox.requests())

    sample = "invoice.paid.subscription_create"
    held = tuple(stripe_events.state(sample))
    invoice = stripe_events.load(sample)
    send_stripe(bridge, stripe_api, invoice, holds=held)
    # Stripe's retry: deduplicated
    send_stripe(bridge, stripe_api, stripe_events.redelivered(invoice), holds=held)
    another = stripe_events.redelivered(invoice)
    another["id"] = "evt_1RAda0InvoicePaidAgain00"  # another event about the same invoice
    send_stripe(bridge, stripe_api, another, holds=held)
    assert calls(sandbox, mark) == []
    assert live(sandbox) == [(INVOICE_TXN, Decimal("20"), ADA, "demo-partner")]

    # A refund naming only the charge and payment intent: found through the old alias.
    refund = stripe_events.load("charge.refunded.partial")
    refund["data"]["object"].update(
        id="ch_FIRSTAdaPartneroDemo",
        payment_intent="pi_FIRSTAdaPartneroDemo",
        amount=2400,
        amount_refunded=1200,
        metadata={},
    )
    # Stripe holds the refund behind it.
    half = {
        **stripe_events.load("refund.created")["data"]["object"],
        "id": "re_FIRSTAdaHalf0",
        "amount": 1200,
        "charge": "ch_FIRSTAdaPartneroDemo",
        "payment_intent": "pi_FIRSTAdaPartneroDemo",
        "balance_transaction": "txn_FIRSTAdaHalf0",
    }
    send_stripe(bridge, stripe_api, refund, holds=(half,))
    assert live(sandbox) == [(INVOICE_TXN, Decimal("10.00"), ADA, "demo-partner")]
    [body] = posts(sandbox, mark)
    assert body["created_at"] == INVOICE_CREATED
    item = bridge.dynamodb.get_item(
        TableName=bridge.resources.refs["LedgerTable"], Key={"pk": {"S": INVOICE_LEDGER}}
    )["Item"]
    assert item["amount"] == {"S": "10.00"}
    assert item["transaction_key"] == {"S": INVOICE_TXN}
    no_dead_letters(bridge)


def test_a_renewal_finds_its_customer_in_the_previous_releases_identity_map(
    bridge: InProcessBridge, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    """Nothing in Stripe names Ada's Partnero customer any more (her customer record has
    another email and no metadata): only the previous release's identity map does."""
    put(bridge, previous_stripe_customer("cus_SAda0PartneroDemo", ADA, "demo-partner"))
    sample = "invoice.paid.subscription_cycle"
    renewal = stripe_events.load(sample)
    renewal["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    renewal["data"]["object"]["customer_email"] = "someone-else@example.com"
    held = []
    for obj in stripe_events.state(sample):
        if obj["object"] in ("customer", "subscription"):
            obj = {**obj, "metadata": {}}
        if obj["object"] == "customer":
            obj["email"] = "someone-else@example.com"
        held.append(obj)
    send_stripe(bridge, stripe_api, renewal, holds=tuple(held))
    assert live(sandbox) == [
        ("stripe_in_CYCLE1AdaPartneroDemo", Decimal("20.00"), ADA, "demo-partner")
    ]
    no_dead_letters(bridge)


def test_a_stripe_payment_partnero_holds_but_the_ledger_does_not_is_not_created_again(
    bridge: InProcessBridge, sandbox: PartneroSandbox, stripe_api: FakeStripeApi
) -> None:
    """An earlier release sent this payment (keyed from the webhook body) before the ledger
    recorded payments: this release asks Partnero before creating it."""
    checkout = stripe_events.load("checkout.session.completed.payment")
    key = "stripe_pi_ONEOFFGracePartnero"
    previous_release_sent(
        sandbox,
        sale_body(key, 19.99, "USD", "grace@example.com", "demo-partner", checkout["created"]),
    )
    mark = len(sandbox.requests())
    send_stripe(
        bridge,
        stripe_api,
        checkout,
        holds=tuple(stripe_events.state("checkout.session.completed.payment")),
    )
    assert calls(sandbox, mark) == [f"GET /v1/transactions/{key}"]
    assert live(sandbox) == [(key, Decimal("19.99"), "grace@example.com", "demo-partner")]
    assert datetime.fromtimestamp(checkout["created"], UTC) < datetime.now(UTC)

    # A later refund re-creates that one transaction with the sale's original date.
    mark = len(sandbox.requests())
    send_stripe(
        bridge,
        stripe_api,
        stripe_events.load("charge.refunded.partial"),
        holds=tuple(stripe_events.state("charge.refunded.partial")),
    )
    assert live(sandbox) == [(key, Decimal("14.99"), "grace@example.com", "demo-partner")]
    [body] = posts(sandbox, mark)
    # Changed: the sale's date is now the payment's own (its PaymentIntent's ``created``,
    # read from Stripe), no longer the checkout event's time the previous release sent
    # (7 seconds later here); the re-created transaction keeps the date recorded when this
    # release adopted the transaction Partnero held.
    intent = next(
        o
        for o in stripe_events.state("checkout.session.completed.payment")
        if o["object"] == "payment_intent"
    )
    assert body["created_at"] == intent["created"]
    no_dead_letters(bridge)

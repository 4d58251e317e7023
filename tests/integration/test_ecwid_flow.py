"""Ecwid: signed webhooks in, one Partnero transaction per order out (functions in-process,
moto for AWS, fake Ecwid and Partnero sandbox over real HTTP)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from tests.conftest import SANDBOX_KEY
from tests.support.ecwid import ORDER, signed, webhook
from tests.support.inprocess import InProcessBridge, in_process_bridge

pytestmark = pytest.mark.integration

STORE = 1003
TOKEN = "secret_store_token_1003"
CLIENT_SECRET = "test-ecwid-client-secret"
NET = Decimal("60.00")  # 71.39 - 4.89 tax - 5.00 shipping - 1.50 handling


@pytest.fixture
def ecwid() -> Iterator[FakeEcwid]:
    with FakeEcwid(stores={STORE: TOKEN}) as server:
        server.put_order(STORE, ORDER)
        yield server


@pytest.fixture
def bridge(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> Iterator[InProcessBridge]:
    env = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "ECWID_API_URL": ecwid.url,
        "ECWID_CLIENT_SECRET": CLIENT_SECRET,
        "ECWID_STORE_TOKENS": json.dumps({str(STORE): TOKEN}),
        "BRIDGE_MAX_RECEIVES": "3",
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        # A sale without a partner waits this long for its customer's sign-up.
        "BRIDGE_SIGNUP_WAIT_SECONDS": "2",
        # Sign-ups come from the shop's page, unsigned, on this origin.
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
    }
    with in_process_bridge(monkeypatch, env) as bridge:
        yield bridge


def send(
    bridge: InProcessBridge,
    body: dict[str, Any],
    secret: str = CLIENT_SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    raw, signed_headers = signed(body, secret)
    return bridge.call("POST", "/webhooks/ecwid", raw, {**signed_headers, **(headers or {})})


def live(sandbox: PartneroSandbox) -> list[tuple[str, Decimal, str]]:
    return [
        (t["key"], Decimal(str(t["amount"])), t["amount_units"])
        for t in sandbox.transactions()
        if not t.get("deleted")
    ]


def transaction_posts(sandbox: PartneroSandbox) -> list[Any]:
    return [
        r.body for r in sandbox.requests() if (r.method, r.path) == ("POST", "/v1/transactions")
    ]


def test_paid_order_makes_exactly_one_transaction(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    created = webhook("order.created", STORE, ORDER)
    answer = send(bridge, created)
    assert (answer.status, answer.body) == (200, {"status": "accepted"})
    bridge.drain("ecwid")

    [body] = transaction_posts(sandbox)
    assert body == {
        "customer": {
            "key": "jane.doe@example.com",
            "partner": {"key": "demo-partner"},
            "email": "Jane.Doe@Example.com",
            "name": "Jane",
            "surname": "Doe",
        },
        # Both places the docs name for the referring partner (same value).
        "partner": {"key": "demo-partner"},
        "key": "ecwid_1003_K8XTQ",
        "amount": 60,
        "amount_units": "USD",
        "action": "sale",
        "created_at": 1795210000,
        "options": {"create_customer": True},
    }
    assert live(sandbox) == [("ecwid_1003_K8XTQ", NET, "USD")]
    fetches = [r for r in ecwid.requests() if "/orders/" in r.path]
    assert fetches[0].headers["authorization"] == f"Bearer {TOKEN}"

    for _ in range(10):  # the same webhook again and again
        assert send(bridge, created).status == 200
    for _ in range(5):  # other events about the same order
        assert send(bridge, webhook("order.updated", STORE, ORDER)).status == 200
    bridge.drain("ecwid")
    assert len(transaction_posts(sandbox)) == 1
    assert live(sandbox) == [("ecwid_1003_K8XTQ", NET, "USD")]


def test_partial_then_full_refund_then_nothing(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")

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
    send(bridge, webhook("order.updated", STORE, partial))
    bridge.drain("ecwid")
    # The commission keeps the share not refunded: 60.00 x (71.39 - 20) / 71.39.
    assert live(sandbox) == [("ecwid_1003_K8XTQ", Decimal("43.19"), "USD")]
    assert transaction_posts(sandbox)[-1]["created_at"] == 1795210000

    ecwid.put_order(STORE, {**partial, "paymentStatus": "REFUNDED", "refundedAmount": 71.39})
    send(bridge, webhook("order.updated", STORE, partial))
    bridge.drain("ecwid")
    assert live(sandbox) == []


def test_order_deleted_reverses_even_in_the_old_shape(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")
    ecwid.delete_order(STORE, ORDER["id"])
    send(bridge, webhook("order.deleted", STORE, ORDER, deleted_old_shape=True))
    bridge.drain("ecwid")
    assert live(sandbox) == []


def test_order_gone_from_ecwid_on_update_is_reversed(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")
    ecwid.delete_order(STORE, ORDER["id"])
    send(bridge, webhook("order.updated", STORE, ORDER))
    bridge.drain("ecwid")
    assert live(sandbox) == []


@pytest.mark.parametrize("how", ["wrong secret", "missing header", "tampered event id"])
def test_bad_signature_is_401_and_nothing_is_queued(
    bridge: InProcessBridge, sandbox: PartneroSandbox, how: str
) -> None:
    body = webhook("order.created", STORE, ORDER)
    if how == "wrong secret":
        answer = send(bridge, body, secret="not-the-secret")
    elif how == "missing header":
        answer = bridge.call("POST", "/webhooks/ecwid", json.dumps(body))
    else:
        raw, headers = signed(body, CLIENT_SECRET)
        answer = bridge.call(
            "POST",
            "/webhooks/ecwid",
            raw.replace(body["eventId"].encode(), b"another-event"),
            headers,
        )
    assert (answer.status, answer.body["error"]) == (401, "invalid_signature")
    assert bridge.queue_depth("EcwidOrderQueue") == 0
    assert sandbox.requests() == []


def test_unknown_store_is_acknowledged_and_parked_not_dead_lettered(
    bridge: InProcessBridge, sandbox: PartneroSandbox
) -> None:
    answer = send(bridge, webhook("order.created", 777, ORDER))
    assert (answer.status, answer.body) == (
        200,
        {"status": "parked", "reason": "store_not_configured"},
    )
    assert bridge.queue_depth("EcwidOrderQueue") == 0
    assert bridge.messages("EcwidOrderDeadLetterQueue") == []
    table = bridge.resources.refs["ParkedWebhooksTable"]
    [parked] = [
        item
        for item in bridge.dynamodb.scan(TableName=table)["Items"]
        if item["pk"]["S"].startswith("webhook#")
    ]
    assert parked["store_id"]["S"] == "777"
    assert json.loads(parked["envelope"]["S"])["payload"]["storeId"] == 777
    assert sandbox.requests() == []


@pytest.mark.parametrize(
    "event_type",
    [
        "product.updated",
        "customer.created",
        "application.installed",
        "unfinished_order.created",
        "unfinished_order.updated",
    ],
)
def test_other_events_are_acknowledged_and_dropped(
    bridge: InProcessBridge, event_type: str
) -> None:
    answer = send(bridge, webhook(event_type, STORE, ORDER))
    assert answer.status == 200
    assert answer.body["status"] == "ignored"
    assert bridge.queue_depth("EcwidOrderQueue") == 0


def test_ecwid_rate_limit_is_honoured_and_the_sale_counted_once(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    ecwid.inject_fault(
        Fault(status=429, retry_after="1", count=1, path_prefix="/api/v3/1003/orders")
    )
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")
    assert [r.status for r in ecwid.requests() if "/orders/" in r.path] == [429, 200]
    assert len(transaction_posts(sandbox)) == 1


def test_unpaid_order_waits_and_counts_once_paid(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    ecwid.put_order(STORE, {**ORDER, "paymentStatus": "AWAITING_PAYMENT"})
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")
    assert sandbox.requests() == []
    ecwid.put_order(STORE, ORDER)
    send(bridge, webhook("order.updated", STORE, ORDER))
    bridge.drain("ecwid")
    assert live(sandbox) == [("ecwid_1003_K8XTQ", NET, "USD")]


def test_order_without_partner_goes_to_the_customer_from_signup(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    unreferred = {
        **ORDER,
        "id": "NOREF",
        "internalId": 1,
        "extraFields": {},
        "orderExtraFields": [],
    }
    ecwid.put_order(STORE, unreferred)
    send(bridge, webhook("order.created", STORE, unreferred))
    bridge.drain("ecwid")  # waits for a sign-up, then is not referred
    assert live(sandbox) == []  # unknown customer: not referred, not an error
    # Asked once on arrival and once after the wait; nothing sent.
    assert [(r.method, r.path) for r in sandbox.requests() if "customers" in r.path] == [
        ("GET", "/v1/customers/jane.doe%40example.com"),
        ("GET", "/v1/customers/jane.doe%40example.com"),
    ]
    assert [r for r in sandbox.requests() if r.method != "GET"] == []
    assert bridge.messages("EcwidOrderDeadLetterQueue") == []

    # The sign-up comes late: it re-checks the waiting sale, which now counts.
    bridge.call(
        "POST",
        "/signup",
        {"email": "Jane.Doe@example.com", "partner_key": "acme"},
        {"origin": "https://shop.example"},
    )
    bridge.drain("signup")
    bridge.drain("ecwid")
    second = {**unreferred, "id": "NOREF2", "internalId": 2}
    ecwid.put_order(STORE, second)
    send(bridge, webhook("order.created", STORE, second))
    bridge.drain("ecwid")
    transactions = [t for t in sandbox.transactions() if not t.get("deleted")]
    assert sorted(t["key"] for t in transactions) == ["ecwid_1003_NOREF", "ecwid_1003_NOREF2"]
    assert {t["partner"]["key"] for t in transactions} == {"acme"}
    # The second sale found the customer in the ledger: no customer GET for it.
    customer_gets = [r for r in sandbox.requests() if r.path.startswith("/v1/customers/")]
    assert len(customer_gets) == 2


def test_revoked_store_token_is_retried_then_dead_lettered(
    bridge: InProcessBridge, sandbox: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    ecwid.add_store(STORE, "secret_rotated_token")
    send(bridge, webhook("order.created", STORE, ORDER))
    bridge.drain("ecwid")
    [dead] = bridge.messages("EcwidOrderDeadLetterQueue")
    assert dead["MessageAttributes"]["error_kind"]["StringValue"] == "configuration"
    assert TOKEN not in json.dumps(dead)
    assert sandbox.requests() == []

"""Signed Ecwid webhooks through the running local stack, to a fake Ecwid and Partnero."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from tests.e2e.conftest import ECWID_CLIENT_SECRET, ECWID_STORE
from tests.support.ecwid import signed, webhook
from tests.support.inprocess import ROOT
from tests.support.local_stack import RunningStack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDERS = ROOT / "events" / "ecwid" / "orders"


def order(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ORDERS / f"{name}.json").read_text())
    return {**loaded, **changes}


def post(stack: RunningStack, body: dict[str, Any], secret: str = ECWID_CLIENT_SECRET) -> Any:
    raw, headers = signed(body, secret)
    return stack.http.post("/webhooks/ecwid", content=raw, headers=headers)


def live(partnero: PartneroSandbox) -> list[tuple[str, Decimal]]:
    return [
        (t["key"], Decimal(str(t["amount"])))
        for t in partnero.transactions()
        if not t.get("deleted")
    ]


def posts(partnero: PartneroSandbox) -> list[Any]:
    return [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/transactions")]


def test_paid_order_is_one_transaction_however_often_it_is_announced(
    stack: RunningStack, partnero: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    paid = order("paid-with-partner", id="E2E1", internalId=9001)
    ecwid.put_order(ECWID_STORE, paid)
    created = webhook("order.created", ECWID_STORE, paid)
    assert post(stack, created).status_code == 200

    [request] = wait_for(lambda: posts(partnero), 20, "the transaction")
    assert request.body["key"] == "ecwid_1003_E2E1"
    assert request.body["amount"] == Decimal("62.1")  # 71.39 - 2.79 tax - 5 shipping - 1.5
    assert request.body["amount_units"] == "USD"
    assert request.body["customer"]["key"] == "jane.doe@example.com"
    assert request.body["customer"]["partner"] == {"key": "demo-partner"}

    for _ in range(10):
        assert post(stack, created).status_code == 200
    for _ in range(5):
        assert post(stack, webhook("order.updated", ECWID_STORE, paid)).status_code == 200
    stack.wait_until_drained("ecwid-order")
    assert len(posts(partnero)) == 1
    assert live(partnero) == [("ecwid_1003_E2E1", Decimal("62.10"))]


def test_partial_refund_then_refund_then_deleted(
    stack: RunningStack, partnero: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    paid = order("paid-with-partner", id="E2E2", internalId=9002)
    ecwid.put_order(ECWID_STORE, paid)
    post(stack, webhook("order.created", ECWID_STORE, paid))
    wait_for(lambda: live(partnero), 20, "the transaction")

    partial = {**copy.deepcopy(paid), "paymentStatus": "PARTIALLY_REFUNDED", "refundedAmount": 12.1}
    ecwid.put_order(ECWID_STORE, partial)
    post(stack, webhook("order.updated", ECWID_STORE, partial))
    wait_for(
        # The share not refunded: 62.10 x (71.39 - 12.10) / 71.39.
        lambda: live(partnero) == [("ecwid_1003_E2E2", Decimal("51.57"))],
        20,
        "the partial refund",
    )

    ecwid.put_order(ECWID_STORE, {**partial, "paymentStatus": "REFUNDED", "refundedAmount": 71.39})
    post(stack, webhook("order.updated", ECWID_STORE, partial))
    wait_for(lambda: live(partnero) == [], 20, "the reversal")

    other = order("paid-with-partner", id="E2E3", internalId=9003)
    ecwid.put_order(ECWID_STORE, other)
    post(stack, webhook("order.created", ECWID_STORE, other))
    wait_for(lambda: live(partnero), 20, "the second order's transaction")
    ecwid.delete_order(ECWID_STORE, "E2E3")
    post(stack, webhook("order.deleted", ECWID_STORE, other, deleted_old_shape=True))
    wait_for(lambda: live(partnero) == [], 20, "order.deleted to reverse")


@pytest.mark.parametrize("secret", ["wrong-secret", None])
def test_bad_or_missing_signature_is_refused(
    stack: RunningStack, partnero: PartneroSandbox, secret: str | None
) -> None:
    body = webhook("order.created", ECWID_STORE, order("paid-with-partner"))
    if secret is None:
        answer = stack.http.post("/webhooks/ecwid", json=body)
    else:
        answer = post(stack, body, secret)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_signature"
    assert stack.queue_depth("ecwid-order") == 0
    assert partnero.requests() == []


def test_unknown_store_is_acknowledged_and_parked(
    stack: RunningStack, partnero: PartneroSandbox
) -> None:
    body = webhook("order.created", 424242, order("paid-with-partner"))
    answer = post(stack, body)
    assert (answer.status_code, answer.json()["status"]) == (200, "parked")
    assert stack.queue_depth("ecwid-order") == 0
    assert stack.dead_letters("ecwid-order") == []

    listed = stack.cli("parked", "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["event_id"] == body["eventId"]]
    assert row["store_id"] == "424242"
    # The store is still not configured (the stack's ECWID_STORE_IDS is the stores with a
    # token): replay leaves it parked and says why.
    replayed = stack.cli("parked", "replay", ECWID_STORE_TOKENS=json.dumps({"1003": "x"}))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "424242 (1)" in replayed.stdout
    assert stack.queue_depth("ecwid-order") == 0
    assert partnero.requests() == []


def test_ecwid_429_with_retry_after_then_created_once(
    stack: RunningStack, partnero: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    paid = order("paid-with-partner", id="E2E4", internalId=9004)
    ecwid.put_order(ECWID_STORE, paid)
    ecwid.inject_fault(
        Fault(
            status=429, retry_after="1", count=1, path_prefix=f"/api/v3/{ECWID_STORE}/orders/E2E4"
        )
    )
    post(stack, webhook("order.created", ECWID_STORE, paid))
    wait_for(lambda: live(partnero), 30, "the transaction after the rate limit")
    stack.wait_until_drained("ecwid-order")
    statuses = [r.status for r in ecwid.requests() if r.path.endswith("/orders/E2E4")]
    assert statuses[:2] == [429, 200]
    assert len(posts(partnero)) == 1

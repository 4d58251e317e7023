"""The local Partnero sandbox: documented API behaviour, fault injection and admin interface."""

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.sandbox import NO_ANSWER_STATUS, Fault, PartneroSandbox

pytestmark = pytest.mark.integration

API_KEY = "test-key"
PARTNER = "partner-a"


@pytest.fixture
def sandbox() -> Iterator[PartneroSandbox]:
    with PartneroSandbox(api_key=API_KEY, partners=[PARTNER]) as running:
        yield running


@pytest.fixture
def client(sandbox: PartneroSandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=5.0) as http:
        yield http


@pytest.fixture
def admin(sandbox: PartneroSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.root_url + "/_sandbox", timeout=5.0) as http:
        yield http


def new_customer(key: str = "cust-1", **extra: Any) -> dict[str, Any]:
    return {"partner": {"key": PARTNER}, "key": key, **extra}


def new_transaction(key: str = "order-1", customer: str = "cust-1", **extra: Any) -> dict[str, Any]:
    return {"customer": {"key": customer}, "key": key, "amount": 10, "action": "sale", **extra}


# ---- basics and auth --------------------------------------------------------------------------


def test_urls_point_at_the_running_server(sandbox: PartneroSandbox) -> None:
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/v1"
    assert sandbox.root_url == f"http://127.0.0.1:{sandbox.port}"


def test_every_api_call_needs_the_bearer_key(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    missing = httpx.get(sandbox.url + "/test")
    wrong = httpx.get(sandbox.url + "/test", headers={"Authorization": "Bearer nope"})
    posted = httpx.post(sandbox.url + "/customers", json=new_customer())
    ok = client.get("/test")

    assert missing.status_code == 401
    assert missing.json() == {"message": "Unauthenticated."}
    assert wrong.status_code == 401
    assert posted.status_code == 401
    assert sandbox.customers() == []
    assert ok.status_code == 200
    assert [r.status for r in sandbox.requests()] == [401, 401, 401, 200]
    assert sandbox.requests()[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_unknown_route_wrong_method_and_malformed_json(client: httpx.Client) -> None:
    unknown = client.get("/nope")
    wrong_method = client.patch("/customers", json={})
    malformed = client.post(
        "/customers", content=b'{"key": ', headers={"Content-Type": "application/json"}
    )

    assert unknown.status_code == 404
    assert "message" in unknown.json()
    assert wrong_method.status_code == 405
    assert "message" in wrong_method.json()
    assert malformed.status_code == 400
    assert malformed.json() == {"message": "Malformed JSON"}


# ---- customers --------------------------------------------------------------------------------


def test_create_customer(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    body = new_customer(
        "cust-1",
        email="ada@example.com",
        name="Ada",
        surname="Lovelace",
        tags=["signup"],
        options={"referral_url": "https://shop.example/?ref=x"},
    )
    response = client.post("/customers", json=body)

    assert response.status_code == 200
    payload = response.json()
    assert payload["status"] == 1
    data = payload["data"]
    assert data["key"] == "cust-1"
    assert data["email"] == "ada@example.com"
    assert data["name"] == "Ada"
    assert data["surname"] == "Lovelace"
    assert data["tags"] == ["signup"]
    assert data["partner"] == {"key": PARTNER}
    assert data["referral_url"] == "https://shop.example/?ref=x"
    assert isinstance(data["created_at"], str)
    assert sandbox.customers() == [data]

    fetched = client.get("/customers/cust-1")
    assert fetched.status_code == 200
    assert fetched.json()["data"] == data
    missing = client.get("/customers/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Customer not found"}


def test_customer_with_unknown_partner_is_a_400_and_stores_nothing(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    response = client.post("/customers", json={"partner": {"key": "ghost"}, "key": "cust-1"})

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid partner key"}
    assert sandbox.customers() == []


def test_added_partner_becomes_valid(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    sandbox.add_partner("late-partner")
    response = client.post("/customers", json={"partner": {"key": "late-partner"}, "key": "c"})
    assert response.status_code == 200


def test_duplicate_customer_key_is_a_422(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    assert client.post("/customers", json=new_customer()).status_code == 200
    response = client.post("/customers", json=new_customer())

    assert response.status_code == 422
    payload = response.json()
    assert payload["message"] == "Customer with this key already exists"
    assert payload["errors"]["key"] == ["Customer with this key already exists"]
    assert len(sandbox.customers()) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"partner": {"key": PARTNER}}, {"key"}),
        ({"key": "c1"}, {"partner"}),
        ({"partner": {"key": PARTNER}, "key": "c1", "email": "not-an-email"}, {"email"}),
        ({"partner": {"key": PARTNER}, "key": 42, "tags": "vip"}, {"key", "tags"}),
        ({"partner": {"key": PARTNER}, "key": "x" * 256}, {"key"}),
        ({"partner": {}, "key": "c1"}, {"partner.key"}),
    ],
)
def test_customer_validation_names_the_fields(
    sandbox: PartneroSandbox, client: httpx.Client, body: dict[str, Any], fields: set[str]
) -> None:
    response = client.post("/customers", json=body)

    assert response.status_code == 422
    payload = response.json()
    assert set(payload["errors"]) == fields
    assert isinstance(payload["message"], str)
    assert sandbox.customers() == []


# ---- transactions -----------------------------------------------------------------------------


def test_transaction_for_existing_customer(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    client.post("/customers", json=new_customer())
    response = client.post(
        "/transactions",
        json=new_transaction(amount_units="USD", product_id="sku-1", created_at=1725434529),
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["key"] == "order-1"
    assert data["amount"] == 10
    assert data["amount_units"] == "USD"
    assert data["customer"] == {"key": "cust-1"}
    assert data["partner"] == {"key": PARTNER}
    assert data["action"] == "sale"
    assert data["product_id"] == "sku-1"
    assert data["created_at"].startswith("2024-09-04T07:22:09")
    assert data["deleted"] is False
    assert client.get("/transactions/order-1").json()["data"]["key"] == "order-1"


def test_transaction_can_create_its_customer(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    body = {
        "customer": {
            "key": "buyer@example.com",
            "email": "buyer@example.com",
            "name": "Buy",
            "partner": {"key": PARTNER},
        },
        "key": "order-1",
        "amount": 25,
        "options": {"create_customer": True},
    }
    first = client.post("/transactions", json=body)
    second = client.post("/transactions", json={**body, "key": "order-2"})

    assert first.status_code == 200
    assert second.status_code == 200
    customers = sandbox.customers()
    assert [c["key"] for c in customers] == ["buyer@example.com"]
    assert customers[0]["partner"] == {"key": PARTNER}
    assert customers[0]["name"] == "Buy"
    assert [t["key"] for t in sandbox.transactions()] == ["order-1", "order-2"]

    bad_partner = client.post(
        "/transactions",
        json={**body, "customer": {"key": "other", "partner": {"key": "ghost"}}},
    )
    assert bad_partner.status_code == 400
    assert bad_partner.json() == {"message": "Invalid partner key"}
    assert len(sandbox.customers()) == 1
    assert len(sandbox.transactions()) == 2


@pytest.mark.parametrize(
    "where",
    ["customer.partner and top-level partner", "top-level partner only (legacy docs)"],
)
def test_create_customer_transaction_takes_the_partner_in_either_place(
    sandbox: PartneroSandbox, client: httpx.Client, where: str
) -> None:
    """What the bridge sends: the same partner at customer.partner.key and partner.key."""
    customer: dict[str, Any] = {"key": "buyer@example.com", "email": "buyer@example.com"}
    if where.startswith("customer.partner"):
        customer["partner"] = {"key": PARTNER}
    body = {
        "customer": customer,
        "partner": {"key": PARTNER},
        "key": "order-1",
        "amount": 25,
        "options": {"create_customer": True},
    }

    response = client.post("/transactions", json=body)

    assert response.status_code == 200
    assert response.json()["data"]["partner"] == {"key": PARTNER}
    assert [(c["key"], c["partner"]) for c in sandbox.customers()] == [
        ("buyer@example.com", {"key": PARTNER})
    ]
    ghost = {"key": "ghost"}
    unknown = {
        **body,
        "customer": {
            **customer,
            "key": "other",
            **({"partner": ghost} if "partner" in customer else {}),
        },
        "partner": ghost,
    }
    refused = client.post("/transactions", json=unknown)
    assert refused.status_code == 400
    assert refused.json() == {"message": "Invalid partner key"}
    assert len(sandbox.customers()) == 1


def test_unknown_customer_key_is_a_404(client: httpx.Client) -> None:
    client.post("/customers", json=new_customer("ada@example.com"))

    assert client.get("/customers/ada%40example.com").status_code == 200
    for key in ("grace%40example.com", "ADA%40example.com", "cust-1"):
        missing = client.get(f"/customers/{key}")
        assert missing.status_code == 404
        assert missing.json() == {"message": "Customer not found"}


def test_an_encoded_slash_is_part_of_the_key_over_http_and_in_process(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer("a/b@example.com"))
    headers = dict(client.headers)
    with httpx.Client(
        transport=sandbox.transport(), base_url=sandbox.url, headers=headers
    ) as local:
        for http in (client, local):
            found = http.get("/customers/a%2Fb%40example.com")
            assert found.status_code == 200
            assert found.json()["data"]["key"] == "a/b@example.com"
            assert http.get("/customers/a/b%40example.com").status_code == 404  # two segments
    assert sandbox.requests()[-1].path == "/v1/customers/a/b%40example.com"


def test_transaction_for_unknown_customer_is_a_422(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    response = client.post("/transactions", json=new_transaction(customer="ghost"))

    assert response.status_code == 422
    payload = response.json()
    assert payload["message"] == "Customer not found"
    assert "customer.key" in payload["errors"]
    assert sandbox.transactions() == []


def test_transaction_validation_names_the_fields(client: httpx.Client) -> None:
    client.post("/customers", json=new_customer())
    response = client.post(
        "/transactions",
        json={"customer": {"key": "cust-1"}, "amount": "lots", "amount_units": "dollars"},
    )

    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"amount", "amount_units"}
    missing = client.post("/transactions", json={"key": "x"})
    assert set(missing.json()["errors"]) == {"customer", "amount"}


def test_create_customer_takes_only_laravel_booleans(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    """Laravel's ``boolean``: true, false, 1, 0, "1", "0"; "" and null are left out (false)."""
    customer = {"key": "new", "partner": {"key": PARTNER}}
    must = ["The options.create_customer field must be true or false."]
    for lenient in ("yes", "on", "true", "false", "no", 2, 1.0, [True]):
        body = new_transaction(customer="new", options={"create_customer": lenient})
        refused = client.post("/transactions", json=body | {"customer": customer})
        assert refused.status_code == 422, lenient
        assert refused.json() == {"message": must[0], "errors": {"options.create_customer": must}}
    for yes in (True, 1, "1"):
        body = new_transaction(key=f"t{yes!r}", options={"create_customer": yes})
        assert client.post("/transactions", json=body | {"customer": customer}).status_code == 200
    for no in (False, 0, "0", "", None):
        body = new_transaction(customer="ghost", options={"create_customer": no})
        assert client.post("/transactions", json=body).json()["message"] == "Customer not found"
    assert [t["key"] for t in sandbox.transactions()] == ["tTrue", "t1", "t'1'"]


@pytest.mark.parametrize(
    ("amount", "tail"),
    [
        ("1e400", "must not be greater than 1000000000000000."),
        ("-1e400", "must be at least -1000000000000000."),
        (10**40, "must not be greater than 1000000000000000."),
        ("1e-400", "must not have more than 10 decimal places."),
        ("NaN", "must be a number."),
        ("Infinity", "must be a number."),
        ("1_000", "must be a number."),
        ("1 000", "must be a number."),
        ("0x10", "must be a number."),
        (True, "must be a number."),
    ],
)
def test_hostile_amounts_are_a_422_naming_the_field(
    sandbox: PartneroSandbox, client: httpx.Client, amount: Any, tail: str
) -> None:
    client.post("/customers", json=new_customer())
    response = client.post("/transactions", json=new_transaction(amount=amount))

    assert response.status_code == 422
    assert response.json()["errors"] == {"amount": [f"The amount field {tail}"]}
    raw = b'{"customer": {"key": "cust-1"}, "amount": 1e400}'  # a JSON number, not text
    as_number = client.post(
        "/transactions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert as_number.status_code == 422
    assert sandbox.transactions() == []


def test_odd_but_numeric_amounts_are_kept(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    client.post("/customers", json=new_customer())
    for key, amount in [("a", "-0"), ("b", " 10 "), ("c", "1e3"), ("d", "0.0000000001")]:
        assert client.post("/transactions", json=new_transaction(key, amount=amount)).is_success

    stored = [(t["amount"], t["rewards"][0]["amount"]) for t in sandbox.transactions()]
    assert stored == [(0, 0), (10, 2), (1000, 200), (Decimal("1E-10"), 0)]


def test_same_key_twice_creates_two_transactions(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    """The documented trap: Partnero does not enforce unique transaction keys."""
    client.post("/customers", json=new_customer())
    first = client.post("/transactions", json=new_transaction("order-1"))
    second = client.post("/transactions", json=new_transaction("order-1"))

    assert first.status_code == 200
    assert second.status_code == 200
    assert [t["key"] for t in sandbox.transactions()] == ["order-1", "order-1"]
    listed = client.get("/transactions", params={"key": "order-1"}).json()
    assert len(listed["data"]) == 2
    assert listed["links"]["next"] is None
    assert listed["meta"]["total"] == 2


def test_transactions_are_read_by_key_and_listed_by_customer_or_partner(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    """What a reconciler reads: one key, and the whole list paged (15 by default)."""
    sandbox.add_partner("partner-b")
    client.post("/customers", json=new_customer())
    client.post("/customers", json={"partner": {"key": "partner-b"}, "key": "cust-2"})
    for number in range(20):
        customer = "cust-1" if number % 4 else "cust-2"
        client.post("/transactions", json=new_transaction(f"order-{number}", customer))

    one = client.get("/transactions/order-3")
    assert one.status_code == 200
    assert (one.json()["data"]["key"], one.json()["data"]["customer"]) == (
        "order-3",
        {"key": "cust-1"},
    )
    assert client.get("/transactions/order-99").status_code == 404

    first = client.get("/transactions").json()
    assert (first["meta"]["per_page"], first["meta"]["total"], first["meta"]["last_page"]) == (
        15,
        20,
        2,
    )
    second = client.get(first["links"]["next"]).json()
    keys = [t["key"] for t in first["data"] + second["data"]]
    assert keys == [f"order-{number}" for number in range(20)]

    by_customer = client.get("/transactions", params={"customer.key": "cust-2"}).json()
    assert [t["key"] for t in by_customer["data"]] == [f"order-{n}" for n in (0, 4, 8, 12, 16)]
    by_partner = client.get("/transactions", params={"partner.key": "partner-b", "limit": 2})
    assert by_partner.json()["meta"]["total"] == 5
    both = client.get("/transactions", params={"partner.key": PARTNER, "customer.key": "cust-2"})
    assert both.json()["data"] == []


def test_delete_by_path_marks_every_copy_deleted(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    client.post("/transactions", json=new_transaction("order-1"))
    client.post("/transactions", json=new_transaction("order-1"))
    client.post("/transactions", json=new_transaction("order-2"))

    response = client.delete("/transactions/order-1")

    assert response.status_code == 200
    stored = sandbox.transactions()
    assert [(t["key"], t["deleted"]) for t in stored] == [
        ("order-1", True),
        ("order-1", True),
        ("order-2", False),
    ]
    assert all("deleted_at" in t for t in stored[:2])
    assert [t["key"] for t in sandbox.transactions(include_deleted=False)] == ["order-2"]
    assert client.get("/transactions/order-1").status_code == 404
    again = client.delete("/transactions/order-1")
    assert again.status_code == 404
    assert again.json() == {"message": "Transaction not found"}


def test_amounts_keep_their_exact_decimal_text(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    answers = []
    for key, amount in [("a", "19.99"), ("b", "0.1"), ("c", "19.990"), ("d", "100")]:
        raw = f'{{"customer": {{"key": "cust-1"}}, "key": "{key}", "amount": {amount}}}'
        response = client.post(
            "/transactions", content=raw.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        assert f'"amount":{amount},' in response.text
        answers.append(json.loads(response.text, parse_float=Decimal)["data"]["amount"])

    stored = [t["amount"] for t in sandbox.transactions()]
    assert stored == [Decimal("19.99"), Decimal("0.1"), Decimal("19.990"), 100]
    assert [str(value) for value in stored] == ["19.99", "0.1", "19.990", "100"]
    assert answers == stored
    assert sandbox.requests()[1].body["amount"] == Decimal("19.99")
    state = httpx.get(sandbox.root_url + "/_sandbox/state")
    assert '"amount":19.99,' in state.text
    assert '"amount":0.1,' in state.text


# ---- rewards ----------------------------------------------------------------------------------


def test_every_transaction_carries_a_pending_reward(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    created = client.post("/transactions", json=new_transaction("order-1", amount=59.99))
    direct = client.post(
        "/transactions", json=new_transaction("order-2", amount=7.5, amount_units="reward")
    )

    [reward] = created.json()["data"]["rewards"]
    assert reward == {"id": reward["id"], "amount": 12.0, "status": "pending", "paid_at": None}
    assert '"amount":12.00,' in created.text  # 20 % of 59.99, to the cent
    assert [r["amount"] for r in direct.json()["data"]["rewards"]] == [7.5]  # set directly
    assert client.get("/transactions/order-1").json()["data"]["rewards"] == [reward]
    listed = client.get("/transactions", params={"key": "order-1"}).json()["data"]
    assert [t["rewards"] for t in listed] == [[reward]]
    by_customer = client.get("/transactions", params={"customer.key": "cust-1"}).json()["data"]
    assert [len(t["rewards"]) for t in by_customer] == [1, 1]
    assert sandbox.transactions()[0]["rewards"][0]["amount"] == Decimal("12.00")
    ids = [t["rewards"][0]["id"] for t in sandbox.transactions()]
    assert len(set(ids)) == 2


def test_rewards_are_approved_then_paid_by_transaction_key(
    sandbox: PartneroSandbox, client: httpx.Client, admin: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    client.post("/transactions", json=new_transaction("order-1"))
    client.post("/transactions", json=new_transaction("order-1"))  # keys are not unique
    client.post("/transactions", json=new_transaction("order-2"))

    approved = admin.post("/transactions/order-1/rewards/approve")
    assert approved.status_code == 200
    assert [
        (r["status"], r["paid_at"]) for t in approved.json()["transactions"] for r in t["rewards"]
    ] == [("approved", None), ("approved", None)]

    paid = sandbox.pay_rewards("order-1")
    assert [r["status"] for t in paid for r in t["rewards"]] == ["paid", "paid"]
    paid_at = paid[0]["rewards"][0]["paid_at"]
    assert paid_at.endswith("Z")
    assert datetime.fromisoformat(paid_at).tzinfo is not None
    fetched = client.get("/transactions/order-1").json()["data"]["rewards"][0]
    assert (fetched["status"], fetched["paid_at"]) == ("paid", paid_at)

    # Approving again never takes a payout back; other keys are untouched.
    sandbox.approve_rewards("order-1")
    assert client.get("/transactions/order-1").json()["data"]["rewards"][0]["status"] == "paid"
    assert client.get("/transactions/order-2").json()["data"]["rewards"][0]["status"] == "pending"
    assert admin.post("/transactions/order-2/rewards/pay").status_code == 200
    assert sandbox.transactions()[2]["rewards"][0]["status"] == "paid"

    client.delete("/transactions/order-2")
    missing = admin.post("/transactions/order-2/rewards/pay")
    assert missing.status_code == 404
    assert "order-2" in missing.json()["message"]
    assert admin.post("/transactions/nope/rewards/approve").status_code == 404
    with pytest.raises(KeyError):
        sandbox.pay_rewards("nope")
    assert admin.get("/transactions/order-1/rewards/pay").status_code == 405
    assert admin.post("/transactions/order-1/rewards/refund").status_code == 404
    assert admin.post("/transactions/order-1/rewards").status_code == 404
    assert [r.path for r in sandbox.requests() if r.path.startswith("/_sandbox")] == []


def test_reward_rate_is_configurable(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    client.post("/customers", json=new_customer())
    with PartneroSandbox(api_key=API_KEY, partners=[PARTNER], reward_rate="0.1") as tenth:
        assert tenth.reward_rate == Decimal("0.1")
    sandbox.set_reward_rate("0.333")
    created = client.post("/transactions", json=new_transaction(amount=10))
    assert '"amount":3.33,' in created.text
    with pytest.raises(ValueError, match="reward_rate"):
        sandbox.set_reward_rate("1.5")
    assert sandbox.reward_rate == Decimal("0.333")


def test_accept_any_partner_switch(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    ghost = {"partner": {"key": "ghost"}, "key": "cust-1"}
    assert client.post("/customers", json=ghost).status_code == 400

    with sandbox.any_partner_accepted():
        assert sandbox.accepts_any_partner is True
        assert client.post("/customers", json=ghost).status_code == 200
        transaction = {
            "customer": {"key": "cust-2", "partner": {"key": "anyone"}},
            "partner": {"key": "anyone"},
            "key": "order-1",
            "amount": 10,
            "options": {"create_customer": True},
        }
        assert client.post("/transactions", json=transaction).status_code == 200
        sandbox.reset()
        assert sandbox.accepts_any_partner is True  # a setting, not data

    assert sandbox.accepts_any_partner is False
    assert client.post("/customers", json=ghost).status_code == 400
    assert sandbox.partners() == [PARTNER]

    with PartneroSandbox(api_key=API_KEY, partners=[], accept_any_partner=True) as open_door:
        assert open_door.accepts_any_partner is True


# ---- faults -----------------------------------------------------------------------------------


def test_status_fault_with_retry_after_is_consumed_once(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    sandbox.inject_fault(Fault(status=429, retry_after="7"))

    limited = client.post("/transactions", json=new_transaction())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert "message" in limited.json()
    assert sandbox.transactions() == []  # a plain fault means nothing was processed

    assert client.post("/transactions", json=new_transaction()).status_code == 200
    assert len(sandbox.transactions()) == 1
    assert [r.status for r in sandbox.requests()] == [200, 429, 200]


def test_delay_fault_makes_the_client_time_out(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    sandbox.inject_fault(Fault(delay_seconds=2.0))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/test", timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert client.get("/test").status_code == 200


def test_delay_fault_with_status_answers_late(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    sandbox.inject_fault(Fault(delay_seconds=0.3, status=503))
    started = time.monotonic()
    response = client.get("/test")
    assert response.status_code == 503
    assert time.monotonic() - started >= 0.3


def test_reset_fault_drops_the_connection(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    sandbox.inject_fault(Fault(reset=True))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        client.get("/test")
    assert sandbox.requests()[-1].status == NO_ANSWER_STATUS
    assert client.get("/test").status_code == 200


def test_malformed_fault_answers_200_with_non_json(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    sandbox.inject_fault(Fault(malformed=True))
    response = client.post("/transactions", json=new_transaction())

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert sandbox.transactions() == []


def test_after_success_fault_stores_then_loses_the_answer(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    sandbox.inject_fault(Fault(status=502, after_success=True, method="POST"))

    response = client.post("/transactions", json=new_transaction("order-1"))

    assert response.status_code == 502
    assert [t["key"] for t in sandbox.transactions()] == ["order-1"]
    assert sandbox.requests()[-1].status == 502


def test_after_success_reset_stores_then_drops_the_connection(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    sandbox.inject_fault(Fault(reset=True, after_success=True))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        client.post("/transactions", json=new_transaction("order-1"))
    assert [t["key"] for t in sandbox.transactions()] == ["order-1"]


def test_fault_count_and_path_filter(sandbox: PartneroSandbox, client: httpx.Client) -> None:
    client.post("/customers", json=new_customer())
    sandbox.inject_fault(Fault(status=503, count=2, path_prefix="/v1/transactions"))

    assert client.get("/test").status_code == 200
    assert client.get("/customers/cust-1").status_code == 200
    assert client.post("/transactions", json=new_transaction()).status_code == 503
    assert client.get("/transactions/order-1").status_code == 503
    assert client.post("/transactions", json=new_transaction()).status_code == 200
    assert sandbox.faults() == []


def test_fault_method_filter_and_prefix_without_version(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    client.post("/transactions", json=new_transaction())
    sandbox.inject_fault(Fault(status=500, method="DELETE", path_prefix="/transactions"))

    assert client.get("/transactions/order-1").status_code == 200
    assert client.delete("/transactions/order-1").status_code == 500
    assert client.delete("/transactions/order-1").status_code == 200


def test_unlimited_fault_lasts_until_cleared(
    sandbox: PartneroSandbox, client: httpx.Client
) -> None:
    sandbox.inject_fault(Fault(status=500, count=-1))
    assert [client.get("/test").status_code for _ in range(3)] == [500, 500, 500]
    sandbox.clear_faults()
    assert client.get("/test").status_code == 200


def test_faults_do_not_touch_admin_calls(sandbox: PartneroSandbox, admin: httpx.Client) -> None:
    sandbox.inject_fault(Fault(status=500, count=-1))
    assert admin.get("/state").status_code == 200


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="at most one"):
        Fault(status=500, reset=True)
    with pytest.raises(ValueError, match="count"):
        Fault(status=500, count=0)
    with pytest.raises(ValueError, match="does nothing"):
        Fault()


# ---- admin interface --------------------------------------------------------------------------


def test_admin_state_requests_and_reset(
    sandbox: PartneroSandbox, client: httpx.Client, admin: httpx.Client
) -> None:
    client.post("/customers", json=new_customer())
    client.post("/transactions", json=new_transaction())

    state = admin.get("/state").json()
    assert [c["key"] for c in state["customers"]] == ["cust-1"]
    assert [t["key"] for t in state["transactions"]] == ["order-1"]
    assert state["partners"] == [PARTNER]

    recorded = admin.get("/requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [
        ("POST", "/v1/customers", 200),
        ("POST", "/v1/transactions", 200),
    ]
    assert recorded[0]["headers"]["authorization"] == "Bearer ***"
    assert recorded[1]["body"]["key"] == "order-1"
    assert "raw_body" not in recorded[0]
    assert API_KEY not in admin.get("/requests").text

    assert admin.post("/reset").status_code == 200
    assert sandbox.customers() == []
    assert sandbox.transactions() == []
    assert sandbox.requests() == []
    assert admin.get("/state").json()["partners"] == [PARTNER]


def test_admin_settings(
    sandbox: PartneroSandbox, client: httpx.Client, admin: httpx.Client
) -> None:
    assert admin.get("/settings").json() == {"accept_any_partner": False, "reward_rate": 0.20}
    assert admin.get("/state").json()["settings"]["accept_any_partner"] is False

    changed = admin.put("/settings", json={"accept_any_partner": True, "reward_rate": 0.5})
    assert changed.status_code == 200
    assert changed.json() == {"accept_any_partner": True, "reward_rate": 0.5}
    assert sandbox.accepts_any_partner is True
    assert client.post("/customers", json={"partner": {"key": "x"}, "key": "c"}).status_code == 200

    assert admin.put("/settings", json={"accept_any_partner": False}).status_code == 200
    assert sandbox.reward_rate == Decimal("0.5")
    for bad in ({"accept_any_partner": "yes"}, {"reward_rate": -1}, {"bogus": 1}, [1]):
        refused = admin.put("/settings", json=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["message"]
    assert admin.post("/settings").status_code == 405
    assert admin.get("/settings").json() == {"accept_any_partner": False, "reward_rate": 0.5}


def test_admin_faults(sandbox: PartneroSandbox, client: httpx.Client, admin: httpx.Client) -> None:
    queued = admin.post("/faults", json={"status": 503, "retry_after": "2", "count": 2})
    assert queued.status_code == 200
    assert len(queued.json()["faults"]) == 1
    first = client.get("/test")
    assert first.status_code == 503
    assert first.headers["retry-after"] == "2"

    assert admin.delete("/faults").status_code == 200
    assert client.get("/test").status_code == 200
    assert admin.post("/faults", json={"bogus": 1}).status_code == 400
    assert admin.post("/faults", json={"status": 500, "reset": True}).status_code == 400
    assert admin.get("/nope").status_code == 404
    assert [r.path for r in sandbox.requests()] == ["/v1/test", "/v1/test"]


# ---- lifecycle --------------------------------------------------------------------------------


def test_stop_frees_the_port_and_is_idempotent() -> None:
    sandbox = PartneroSandbox(api_key=API_KEY)
    sandbox.start()
    port = sandbox.port
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(headers=headers, timeout=2.0) as http:
        assert http.get(sandbox.url + "/test").status_code == 200
        sandbox.stop()
        sandbox.stop()
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{port}/v1/test")

    with PartneroSandbox(api_key=API_KEY, port=port) as again:
        assert again.port == port
        response = httpx.get(again.url + "/test", headers=headers)
        assert response.status_code == 200


def test_stop_does_not_wait_for_a_hanging_request() -> None:
    sandbox = PartneroSandbox(api_key=API_KEY)
    sandbox.start()
    sandbox.inject_fault(Fault(delay_seconds=30))
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as conn:
        conn.sendall(b"GET /v1/test HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - started < 3


def test_module_runs_in_the_foreground_until_sigterm() -> None:
    command = [sys.executable, "-m", "partnero_bridge_cli.local.sandbox", "--port", "0"]
    command += ["--api-key", "cli-key", "--partner", "p-1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.split(" on ", 1)[1].strip()
            assert url.endswith("/v1")
            response = httpx.post(
                url + "/customers",
                json={"partner": {"key": "p-1"}, "key": "c"},
                headers={"Authorization": "Bearer cli-key"},
                timeout=5,
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            assert "stopped" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_module_can_accept_any_partner() -> None:
    command = [sys.executable, "-m", "partnero_bridge_cli.local.sandbox", "--port", "0"]
    command += ["--api-key", "cli-key", "--accept-any-partner"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split(" on ", 1)[1].strip()
            assert "any other key" in process.stdout.readline()
            response = httpx.post(
                url + "/customers",
                json={"partner": {"key": "someone"}, "key": "c"},
                headers={"Authorization": "Bearer cli-key"},
                timeout=5,
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            assert "stopped" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

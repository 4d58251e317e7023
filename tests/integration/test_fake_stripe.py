"""The local fake of the Stripe API, over HTTP: auth, retrieve and expand, lists, derived
fields, version conversion to the pinned version and the field cases' snapshot rules."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.stripe_api import PINNED_VERSION, FakeStripeApi
from tests.support.cases import cases_dir

pytestmark = pytest.mark.integration

TEST_KEY = "rk_test_fakeStripeReader"
LIVE_KEY = "rk_live_fakeStripeReader"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=[TEST_KEY, LIVE_KEY]) as fake:
        yield fake


@pytest.fixture
def stripe_api(server: FakeStripeApi) -> FakeStripeApi:
    server.reset()
    return server


@pytest.fixture(scope="module")
def http(server: FakeStripeApi) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TEST_KEY}", "Stripe-Version": PINNED_VERSION}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
        yield client


def event(
    obj: dict[str, Any],
    created: int = 1764400000,
    version: str = PINNED_VERSION,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": f"evt_{obj['id']}_{created}",
        "object": "event",
        "api_version": version,
        "created": created,
        "livemode": False,
        "type": f"{obj['object']}.updated",
        "data": {"object": obj},
        **extra,
    }


def charge(charge_id: str = "ch_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": 2000,
        "amount_captured": 2000,
        "amount_refunded": 0,
        "refunded": False,
        "captured": True,
        "status": "succeeded",
        "currency": "usd",
        "customer": "cus_1",
        "payment_intent": "pi_1",
        "created": 1764400000,
        "livemode": False,
        **fields,
    }


def refund(refund_id: str, amount: int, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": "ch_1",
        "payment_intent": "pi_1",
        "currency": "usd",
        "status": status,
        "created": 1764400100,
        **fields,
    }


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    return error


# ---- auth ------------------------------------------------------------------------------------


def test_a_missing_or_unknown_key_is_401_in_stripes_shape(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.load_event(event(charge()))
    missing = httpx.get(f"{stripe_api.url}/v1/charges/ch_1")
    assert missing.status_code == 401
    assert error_of(missing)["type"] == "invalid_request_error"
    assert "did not provide an API key" in error_of(missing)["message"]
    wrong = http.get("/v1/charges/ch_1", headers={"Authorization": "Bearer rk_test_other"})
    assert wrong.status_code == 401
    assert error_of(wrong)["message"].startswith("Invalid API Key provided")
    assert "rk_test_other" not in wrong.text
    assert http.get("/v1/charges/ch_1").status_code == 200


def test_a_live_key_sees_no_test_objects(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    stripe_api.load_event(event(charge()))
    live = http.get("/v1/charges/ch_1", headers={"Authorization": f"Bearer {LIVE_KEY}"})
    assert live.status_code == 404
    assert "exists in test mode" in error_of(live)["message"]
    listed = http.get("/v1/charges", headers={"Authorization": f"Bearer {LIVE_KEY}"})
    assert listed.json()["data"] == []


def test_a_connected_accounts_objects_need_its_stripe_account_header(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.load_event(event(charge("ch_conn"), account="acct_1Shop"))
    assert http.get("/v1/charges/ch_conn").status_code == 404
    seen = http.get("/v1/charges/ch_conn", headers={"Stripe-Account": "acct_1Shop"})
    assert seen.status_code == 200


def test_reads_only_and_unknown_routes(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    assert http.post("/v1/charges/ch_1", data={"metadata[a]": "b"}).status_code == 405
    unknown = http.get("/v1/balance_transactions/txn_1")
    assert unknown.status_code == 404
    assert error_of(unknown)["message"].startswith("Unrecognized request URL")


# ---- retrieve and expand -----------------------------------------------------------------------


def test_retrieve_answers_ids_and_expand_replaces_them(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2000,
        "status": "succeeded",
        "customer": "cus_1",
        "latest_charge": charge(),  # nested: indexed by its own id, answered as an id
        "created": 1764400000,
    }
    customer = {"id": "cus_1", "object": "customer", "email": "a@example.com", "created": 1}
    stripe_api.load_event(event(intent), [customer])
    plain = http.get("/v1/payment_intents/pi_1").json()
    assert plain["latest_charge"] == "ch_1"
    assert plain["customer"] == "cus_1"
    assert http.get("/v1/charges/ch_1").json()["amount"] == 2000

    expanded = http.get(
        "/v1/payment_intents/pi_1", params={"expand[]": ["latest_charge.customer", "customer"]}
    ).json()
    assert expanded["latest_charge"]["object"] == "charge"
    assert expanded["latest_charge"]["customer"]["email"] == "a@example.com"
    assert expanded["customer"]["id"] == "cus_1"
    # stripe-python's indexed form
    indexed = http.get("/v1/payment_intents/pi_1", params={"expand[0]": "latest_charge"})
    assert indexed.json()["latest_charge"]["id"] == "ch_1"
    listed = http.get("/v1/charges", params={"expand[]": "data.customer"}).json()
    assert listed["data"][0]["customer"]["id"] == "cus_1"

    too_deep = http.get("/v1/payment_intents/pi_1", params={"expand[]": "a.b.c.d.e"})
    assert too_deep.status_code == 400
    not_expandable = http.get("/v1/payment_intents/pi_1", params={"expand[]": "amount"})
    assert not_expandable.status_code == 400
    assert "cannot be expanded" in error_of(not_expandable)["message"]


def test_unknown_ids_are_404_resource_missing(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    for path, kind in [
        ("charges/ch_none", "charge"),
        ("payment_intents/pi_none", "payment_intent"),
        ("invoices/in_none", "invoice"),
        ("checkout/sessions/cs_none", "checkout.session"),
        ("subscriptions/sub_none", "subscription"),
        ("customers/cus_none", "customer"),
        ("refunds/re_none", "refund"),
        ("disputes/dp_none", "dispute"),
    ]:
        answer = http.get(f"/v1/{path}")
        assert answer.status_code == 404, path
        error = error_of(answer)
        assert error["code"] == "resource_missing"
        assert error["message"] == f"No such {kind}: '{path.rsplit('/', 1)[1]}'"


# ---- lists -------------------------------------------------------------------------------------


def test_each_list_filter(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    stripe_api.put_objects(
        [
            charge("ch_1"),
            charge("ch_2", payment_intent="pi_2", customer="cus_2"),
            refund("re_1", 500, "succeeded"),
            refund("re_2", 500, "succeeded", charge="ch_2", payment_intent=None),
            {"id": "dp_1", "object": "dispute", "charge": "ch_2", "payment_intent": "pi_2"},
            {
                "id": "cs_1",
                "object": "checkout.session",
                "subscription": "sub_1",
                "payment_intent": None,
                "customer": "cus_1",
            },
            {
                "id": "cs_2",
                "object": "checkout.session",
                "payment_intent": "pi_2",
                "customer": None,
            },
            {
                "id": "in_1",
                "object": "invoice",
                "customer": "cus_1",
                "status": "paid",
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": "sub_1", "metadata": {}},
                },
            },
            {
                "id": "inpay_1",
                "object": "invoice_payment",
                "invoice": "in_1",
                "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
                "status": "paid",
            },
        ]
    )

    def ids(path: str, **params: str) -> list[str]:
        answer = http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["object"] == "list"
        assert body["url"] == path
        return [item["id"] for item in body["data"]]

    assert ids("/v1/refunds", charge="ch_1") == ["re_1"]
    # a refund made on the charge still belongs to its PaymentIntent
    assert ids("/v1/refunds", payment_intent="pi_2") == ["re_2"]
    assert ids("/v1/checkout/sessions", subscription="sub_1") == ["cs_1"]
    assert ids("/v1/checkout/sessions", payment_intent="pi_2") == ["cs_2"]
    assert ids("/v1/checkout/sessions", customer="cus_1") == ["cs_1"]
    assert ids("/v1/invoice_payments", invoice="in_1") == ["inpay_1"]
    assert ids("/v1/disputes", charge="ch_2") == ["dp_1"]
    assert ids("/v1/disputes", payment_intent="pi_1") == []
    assert ids("/v1/invoices", subscription="sub_1") == ["in_1"]
    assert ids("/v1/invoices", customer="cus_2") == []
    assert ids("/v1/charges", payment_intent="pi_2") == ["ch_2"]
    assert ids("/v1/charges", customer="cus_1") == ["ch_1"]
    assert http.get("/v1/charges/ch_2").json()["disputed"] is True

    unknown = http.get("/v1/refunds", params={"subscription": "sub_1"})
    assert unknown.status_code == 400
    assert error_of(unknown)["message"] == "Received unknown parameter: subscription"


def test_lists_page_newest_first(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    stripe_api.put_objects(
        [refund(f"re_{n}", 100, "succeeded", created=1764400000 + n) for n in range(1, 6)]
    )
    first = http.get("/v1/refunds", params={"charge": "ch_1", "limit": 2}).json()
    assert [r["id"] for r in first["data"]] == ["re_5", "re_4"]
    assert first["has_more"] is True
    second = http.get(
        "/v1/refunds", params={"charge": "ch_1", "limit": 2, "starting_after": "re_4"}
    ).json()
    assert [r["id"] for r in second["data"]] == ["re_3", "re_2"]
    back = http.get("/v1/refunds", params={"limit": 2, "ending_before": "re_2"}).json()
    assert [r["id"] for r in back["data"]] == ["re_4", "re_3"]
    last = http.get(
        "/v1/refunds", params={"charge": "ch_1", "limit": 2, "starting_after": "re_2"}
    ).json()
    assert ([r["id"] for r in last["data"]], last["has_more"]) == (["re_1"], False)
    assert len(http.get("/v1/refunds").json()["data"]) == 5  # default limit 10
    since = http.get("/v1/refunds", params={"created[gte]": 1764400004}).json()
    assert [r["id"] for r in since["data"]] == ["re_5", "re_4"]
    for limit in ("0", "101", "x"):
        assert http.get("/v1/refunds", params={"limit": limit}).status_code == 400
    assert http.get("/v1/refunds", params={"starting_after": "re_none"}).status_code == 404


# ---- derived fields ----------------------------------------------------------------------------


def test_a_charges_refund_fields_follow_its_refunds_current_statuses(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    carried = charge(amount_refunded=2000, refunded=True)
    stripe_api.load_event(event(carried, created=1764400200))
    # no refund names it: the carried values stand
    assert http.get("/v1/charges/ch_1").json()["amount_refunded"] == 2000

    stripe_api.load_event(event(refund("re_a", 1500, "succeeded"), created=1764400200))
    stripe_api.load_event(event(refund("re_b", 500, "pending"), created=1764400200))
    answer = http.get("/v1/charges/ch_1").json()
    assert (answer["amount_refunded"], answer["refunded"]) == (2000, True)

    stripe_api.load_event(event(refund("re_a", 1500, "failed"), created=1764400300))
    answer = http.get("/v1/charges/ch_1").json()
    assert (answer["amount_refunded"], answer["refunded"]) == (500, False)

    stripe_api.load_event(event(refund("re_b", 500, "canceled"), created=1764400400))
    answer = http.get("/v1/charges/ch_1").json()
    assert (answer["amount_refunded"], answer["refunded"]) == (0, False)
    assert "refunds" not in answer  # since 2022-11-15: listed, not embedded
    embedded = http.get("/v1/charges/ch_1", params={"expand[]": "refunds"}).json()
    assert [r["id"] for r in embedded["refunds"]["data"]] == ["re_b", "re_a"]


def test_a_payment_intents_latest_charge_is_derived_when_carried_as_null(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    intent = {"id": "pi_1", "object": "payment_intent", "latest_charge": None, "created": 1}
    stripe_api.put_objects([intent, charge()])
    assert http.get("/v1/payment_intents/pi_1").json()["latest_charge"] == "ch_1"


# ---- versions ----------------------------------------------------------------------------------


def test_a_2018_invoice_is_answered_in_the_pinned_shape(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    path = cases_dir() / "stripe-legacy-api-version-invoice.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    case = json.loads(path.read_text())
    for step in case["steps"]:
        if step["kind"] == "stripe":
            stripe_api.load_event(step["event"], step.get("stripe_objects", []))

    invoice = http.get("/v1/invoices/in_LEGACY7Handed").json()
    assert invoice["amount_paid"] == 4500
    assert invoice["amount_remaining"] == 0
    assert invoice["total_excluding_tax"] == 4500
    assert invoice["status"] == "paid"
    assert invoice["created"] == 1517100000
    assert invoice["parent"]["subscription_details"]["subscription"] == "sub_LEGACY7Handed"
    for gone in ("charge", "payment_intent", "subscription", "paid", "paid_out_of_band", "tax"):
        assert gone not in invoice, gone

    payments = http.get("/v1/invoice_payments", params={"invoice": "in_LEGACY7Handed"}).json()
    assert [(p["payment"], p["amount_paid"], p["status"]) for p in payments["data"]] == [
        ({"type": "charge", "charge": "ch_LEGACY7Handed"}, 4500, "paid")
    ]
    customer = http.get("/v1/customers/cus_LEGACY7Handed").json()
    assert customer["balance"] == 0
    assert "account_balance" not in customer
    assert "sources" not in customer

    # without Stripe-Version: as loaded (the account's version); another pinned version: 400
    as_loaded = http.get("/v1/invoices/in_LEGACY7Handed", headers={"Stripe-Version": ""})
    assert as_loaded.json()["paid"] is True
    drift = http.get("/v1/invoices/in_LEGACY7Handed", headers={"Stripe-Version": "2024-06-20"})
    assert drift.status_code == 400
    assert "2024-06-20" in error_of(drift)["message"]


def test_older_invoices_payments_and_out_of_band(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    invoice = {
        "id": "in_oob",
        "object": "invoice",
        "amount_due": 3000,
        "amount_paid": 1000,
        "amount_remaining": 0,
        "total": 3300,
        "tax": 300,
        "paid": True,
        "paid_out_of_band": True,
        "payment_intent": "pi_oob",
        "charge": "ch_oob",
        "subscription": "sub_oob",
        "subscription_details": {"metadata": {"partnero_partner": "p"}},
        "currency": "usd",
        "status": "paid",
        "created": 1764400000,
    }
    stripe_api.load_event(event(invoice, version="2024-06-20"))
    answer = http.get("/v1/invoices/in_oob").json()
    assert answer["amount_paid"] == 3000  # out-of-band money counts from basil on
    assert answer["total_excluding_tax"] == 3000
    assert answer["parent"]["subscription_details"] == {
        "metadata": {"partnero_partner": "p"},
        "subscription": "sub_oob",
    }
    payments = http.get("/v1/invoice_payments", params={"invoice": "in_oob"}).json()["data"]
    assert sorted((p["payment"]["type"], p["amount_paid"], p["is_default"]) for p in payments) == [
        ("out_of_band_payment", 2000, False),
        ("payment_intent", 1000, True),
    ]
    expanded = http.get("/v1/invoices/in_oob", params={"expand[]": "payments"}).json()
    assert len(expanded["payments"]["data"]) == 2


# ---- replay semantics --------------------------------------------------------------------------


def test_the_newest_carried_snapshot_wins_by_event_created(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.load_event(event(refund("re_1", 500, "failed"), created=1764400300))
    stripe_api.load_event(event(refund("re_1", 500, "succeeded"), created=1764400100))
    assert http.get("/v1/refunds/re_1").json()["status"] == "failed"
    # a tie: the later load wins
    stripe_api.load_event(event(refund("re_1", 500, "canceled"), created=1764400300))
    assert http.get("/v1/refunds/re_1").json()["status"] == "canceled"


def test_stripe_objects_are_served_only_until_an_event_carries_the_id(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    listed = {"id": "pi_1", "object": "payment_intent", "status": "processing", "created": 1}
    stripe_api.load_event(event(charge("ch_x")), [listed])
    assert http.get("/v1/payment_intents/pi_1").json()["status"] == "processing"
    carried = {**listed, "status": "succeeded"}
    stripe_api.load_event(event(carried, created=1000))  # older than the step, still wins
    assert http.get("/v1/payment_intents/pi_1").json()["status"] == "succeeded"
    stripe_api.load_event(event(charge("ch_y"), created=1764409999), [listed])
    assert http.get("/v1/payment_intents/pi_1").json()["status"] == "succeeded"


# ---- admin -------------------------------------------------------------------------------------


def test_admin_routes_load_show_and_reset(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    admin = stripe_api.admin_url
    loaded = httpx.post(
        f"{admin}/events",
        json={"event": event(charge()), "stripe_objects": [refund("re_1", 1, "succeeded")]},
    )
    assert loaded.json() == {"loaded": 2}
    assert (
        httpx.put(f"{admin}/objects", json=[{"id": "cus_9", "object": "customer"}]).status_code
        == 200
    )
    http.get("/v1/customers/cus_9")
    state = httpx.get(f"{admin}/state").json()
    assert state["pinned_version"] == PINNED_VERSION
    assert {(o["id"], o["source"]) for o in state["objects"]} == {
        ("ch_1", "event"),
        ("re_1", "stripe_objects"),
        ("cus_9", "stripe_objects"),
    }
    assert TEST_KEY not in json.dumps(state)
    recorded = stripe_api.requests()
    assert [(r.method, r.path, r.status, r.headers["stripe-version"]) for r in recorded] == [
        ("GET", "/v1/customers/cus_9", 200, PINNED_VERSION)
    ]
    assert TEST_KEY not in httpx.get(f"{admin}/requests").text
    assert httpx.delete(f"{admin}/objects").status_code == 200
    assert http.get("/v1/charges/ch_1").status_code == 404
    bad = httpx.post(f"{admin}/events", json={"event": {"id": "evt_1"}})
    assert bad.status_code == 400


# ---- lists for reconciliation: payment intents, cursors, windows, events, rate limit -----------


def intent(number: int, created: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"pi_{number:03d}",
        "object": "payment_intent",
        "amount": 1000 + number,
        "currency": "usd",
        "status": "succeeded",
        "customer": f"cus_{number % 2}",
        "latest_charge": None,
        "created": created,
        "livemode": False,
        **fields,
    }


def test_payment_intents_are_listed_newest_first_and_expand_their_customer(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.put_objects(
        [
            {"id": "cus_0", "object": "customer", "email": "zero@example.com", "created": 1},
            {"id": "cus_1", "object": "customer", "email": "one@example.com", "created": 1},
            *(intent(n, 1764400000 + n // 2) for n in range(1, 8)),
        ]
    )
    body = http.get("/v1/payment_intents", params={"expand[]": "data.customer"}).json()
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/payment_intents", False)
    # equal created: the later loaded first, as Stripe lists the later created first
    assert [p["id"] for p in body["data"]] == [f"pi_{n:03d}" for n in (7, 6, 5, 4, 3, 2, 1)]
    assert body["data"][0]["customer"] == {
        "id": "cus_1",
        "object": "customer",
        "email": "one@example.com",
        "created": 1,
    }
    mine = http.get("/v1/payment_intents", params={"customer": "cus_0"}).json()["data"]
    assert [p["id"] for p in mine] == ["pi_006", "pi_004", "pi_002"]
    unknown = http.get("/v1/payment_intents", params={"status": "succeeded"})
    assert unknown.status_code == 400
    assert error_of(unknown)["param"] == "status"


def test_cursors_page_both_ways_from_an_object_outside_the_filters(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.put_objects([intent(n, 1764400000 + n) for n in range(1, 11)])
    # pi_005 belongs to cus_1: the cursor still marks a place in the customer's list
    after = http.get(
        "/v1/payment_intents", params={"customer": "cus_0", "starting_after": "pi_005"}
    ).json()
    assert [p["id"] for p in after["data"]] == ["pi_004", "pi_002"]
    before = http.get(
        "/v1/payment_intents",
        params={"customer": "cus_0", "ending_before": "pi_005", "limit": 2},
    ).json()
    assert ([p["id"] for p in before["data"]], before["has_more"]) == (["pi_008", "pi_006"], True)
    rest = http.get(
        "/v1/payment_intents", params={"customer": "cus_0", "ending_before": "pi_008"}
    ).json()
    assert ([p["id"] for p in rest["data"]], rest["has_more"]) == (["pi_010"], False)
    both = http.get(
        "/v1/payment_intents", params={"starting_after": "pi_001", "ending_before": "pi_002"}
    )
    assert both.status_code == 400
    missing = http.get("/v1/payment_intents", params={"ending_before": "pi_404"})
    assert (missing.status_code, error_of(missing)["param"]) == (404, "ending_before")


def test_created_bounds_are_exact_at_their_edges(
    stripe_api: FakeStripeApi, http: httpx.Client
) -> None:
    stripe_api.put_objects([intent(n, 1764400000 + n) for n in range(1, 11)])

    def ids(**params: Any) -> list[str]:
        answer = http.get("/v1/payment_intents", params=params)
        assert answer.status_code == 200, answer.text
        return [p["id"] for p in answer.json()["data"]]

    assert ids(**{"created[gte]": 1764400003, "created[lte]": 1764400005}) == [
        "pi_005",
        "pi_004",
        "pi_003",
    ]
    assert ids(**{"created[gt]": 1764400003, "created[lt]": 1764400005}) == ["pi_004"]
    assert ids(created=1764400007) == ["pi_007"]
    # a cursor and a window together: the window still bounds the page
    assert ids(**{"created[gte]": 1764400004, "starting_after": "pi_006"}) == ["pi_005", "pi_004"]
    assert http.get("/v1/payment_intents", params={"created[after]": 1}).status_code == 400
    assert http.get("/v1/payment_intents", params={"created[gte]": "x"}).status_code == 400


def test_events_cover_the_last_30_days_and_filter_by_type() -> None:
    now = 1767225600
    day = 86400
    with FakeStripeApi(api_keys=[TEST_KEY], clock=lambda: now) as fake:
        fake.add_events(
            [
                event(charge("ch_old"), created=now - 31 * day),
                {**event(charge("ch_a"), created=now - 29 * day), "type": "charge.succeeded"},
                {
                    **event(refund("re_a", 5, "succeeded"), created=now - 2 * day),
                    "type": "charge.refunded",
                },
                {
                    **event(intent(1, now - day), created=now - day),
                    "type": "payment_intent.succeeded",
                },
            ]
        )
        # loading an event (as a webhook flow does) keeps it for the list too
        fake.load_event({**event(charge("ch_b"), created=now - 10), "type": "charge.captured"})
        headers = {"Authorization": f"Bearer {TEST_KEY}"}
        with httpx.Client(base_url=fake.url, headers=headers, timeout=5) as client:

            def types(**params: Any) -> list[str]:
                answer = client.get("/v1/events", params=params)
                assert answer.status_code == 200, answer.text
                return [e["type"] for e in answer.json()["data"]]

            assert types() == [
                "charge.captured",
                "payment_intent.succeeded",
                "charge.refunded",
                "charge.succeeded",
            ]
            assert types(type="charge.*") == [
                "charge.captured",
                "charge.refunded",
                "charge.succeeded",
            ]
            assert types(**{"types[]": ["charge.refunded", "payment_intent.succeeded"]}) == [
                "payment_intent.succeeded",
                "charge.refunded",
            ]
            assert types(**{"types[0]": "charge.succeeded"}) == ["charge.succeeded"]
            assert types(**{"created[gte]": now - 3 * day}) == [
                "charge.captured",
                "payment_intent.succeeded",
                "charge.refunded",
            ]
            # never older than 30 days, whatever the window asks
            assert types(**{"created[lt]": now - 30 * day}) == []
            kept = client.get(f"/v1/events/evt_ch_a_{now - 29 * day}")
            assert kept.status_code == 200
            assert kept.json()["data"]["object"]["id"] == "ch_a"
            gone = client.get(f"/v1/events/evt_ch_old_{now - 31 * day}")
            assert (gone.status_code, error_of(gone)["code"]) == (404, "resource_missing")
            both = client.get("/v1/events", params={"type": "charge.*", "types[]": "x"})
            assert both.status_code == 400
            many = client.get("/v1/events", params={"types[]": [f"t.{n}" for n in range(21)]})
            assert (many.status_code, error_of(many)["param"]) == (400, "types")
            assert client.get("/v1/events", params={"delivery_success": "true"}).status_code == 400
        with pytest.raises(ValueError, match="type"):
            fake.add_events([{"id": "evt_x", "created": now}])


def test_an_optional_rate_limit_answers_429_rate_limit() -> None:
    with FakeStripeApi(api_keys=[TEST_KEY, LIVE_KEY], rate_limit_per_second=3) as fake:
        headers = {"Authorization": f"Bearer {TEST_KEY}"}
        with httpx.Client(base_url=fake.url, headers=headers, timeout=5) as client:
            statuses = [client.get("/v1/charges").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            limited = client.get("/v1/charges")
            assert error_of(limited)["type"] == "invalid_request_error"
            assert error_of(limited)["code"] == "rate_limit"
            # live mode counts apart
            live = client.get("/v1/charges", headers={"Authorization": f"Bearer {LIVE_KEY}"})
            assert live.status_code == 200
            admin = fake.admin_url
            assert httpx.get(f"{admin}/settings").json() == {"rate_limit_per_second": 3}
            off = httpx.put(f"{admin}/settings", json={"rate_limit_per_second": None})
            assert off.json() == {"rate_limit_per_second": None}
            assert all(client.get("/v1/charges").status_code == 200 for _ in range(10))
            refused = httpx.put(f"{admin}/settings", json={"rate_limit_per_second": "fast"})
            assert refused.status_code == 400
        assert [r.status for r in fake.requests()].count(429) == 2


def test_admin_keeps_events_in_bulk(stripe_api: FakeStripeApi, http: httpx.Client) -> None:
    now = int(time.time())
    recorded = httpx.put(
        f"{stripe_api.admin_url}/events",
        json=[{**event(charge(f"ch_{n}"), created=now - n), "id": f"evt_{n}"} for n in range(3)],
    )
    assert recorded.json() == {"recorded": 3}
    assert http.get("/v1/charges").json()["data"] == []  # events only: no objects loaded
    listed = http.get("/v1/events", params={"limit": 2}).json()
    assert ([e["id"] for e in listed["data"]], listed["has_more"]) == (["evt_0", "evt_1"], True)
    assert httpx.get(f"{stripe_api.admin_url}/state").json()["event_count"] == 3

"""The local fake of Ecwid's REST API: documented behaviour, exact numbers, faults and admin."""

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.ecwid import NO_ANSWER_STATUS, FakeEcwid, Fault, ecwid_date
from partnero_bridge_cli.local.fakeapp import dumps

pytestmark = pytest.mark.integration

STORE = 1003
TOKEN = "secret_4f1cTestToken"
JPY_STORE = 2002
JPY_TOKEN = "secret_jpyTestToken"
ORDERS = Path(__file__).resolve().parents[2] / "events" / "ecwid" / "orders"


def fixture_order(name: str) -> dict[str, Any]:
    data = json.loads((ORDERS / name).read_text(encoding="utf-8"), parse_float=Decimal)
    assert isinstance(data, dict)
    return data


def minimal_order(
    order_id: str = "AB12C", internal_id: int = 500000001, **extra: Any
) -> dict[str, Any]:
    return {
        "id": order_id,
        "internalId": internal_id,
        "paymentStatus": "PAID",
        "fulfillmentStatus": "AWAITING_PROCESSING",
        "email": "Buyer@Example.com",
        "total": Decimal("10.00"),
        **extra,
    }


@pytest.fixture
def ecwid() -> Iterator[FakeEcwid]:
    fake = FakeEcwid({STORE: TOKEN})
    fake.add_store(JPY_STORE, JPY_TOKEN, currency="JPY")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def client(ecwid: FakeEcwid) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    with httpx.Client(base_url=f"{ecwid.url}/{STORE}", headers=headers, timeout=5.0) as http:
        yield http


@pytest.fixture
def admin(ecwid: FakeEcwid) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ecwid.root_url + "/_ecwid", timeout=5.0) as http:
        yield http


# ---- basics and auth --------------------------------------------------------------------------


def test_urls_point_at_the_running_server(ecwid: FakeEcwid) -> None:
    assert ecwid.url == f"http://127.0.0.1:{ecwid.port}/api/v3"
    assert ecwid.root_url == f"http://127.0.0.1:{ecwid.port}"
    assert ecwid.running


def test_right_token_reads_the_order(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    response = client.get("/orders/AB12C")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["id"] == "AB12C"
    recorded = ecwid.requests()[-1]
    assert (recorded.method, recorded.path, recorded.status) == (
        "GET",
        f"/api/v3/{STORE}/orders/AB12C",
        200,
    )
    assert recorded.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer secret_wrong"},
        {"Authorization": f"Bearer {JPY_TOKEN}"},  # another store's token
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Basic {TOKEN}"},
    ],
    ids=["missing", "wrong", "other-store", "no-scheme", "basic"],
)
def test_missing_or_wrong_token_is_403(ecwid: FakeEcwid, headers: dict[str, str]) -> None:
    ecwid.put_order(STORE, minimal_order())
    response = httpx.get(f"{ecwid.url}/{STORE}/orders/AB12C", headers=headers)

    assert response.status_code == 403
    body = response.json()
    assert body["errorCode"] == "INVALID_API_TOKEN"
    assert isinstance(body["errorMessage"], str)
    assert "id" not in body


def test_token_in_the_query_string_is_refused(ecwid: FakeEcwid) -> None:
    ecwid.put_order(STORE, minimal_order())
    response = httpx.get(f"{ecwid.url}/{STORE}/orders/AB12C", params={"token": TOKEN})

    assert response.status_code == 403
    assert response.json()["errorCode"] == "INVALID_API_TOKEN"
    assert "query string" in response.json()["errorMessage"]
    logged = httpx.get(ecwid.root_url + "/_ecwid/requests").json()
    assert logged[-1]["query"] == {"token": "***"}


def test_unknown_store_is_403(ecwid: FakeEcwid) -> None:
    for store in ("4242", "99999999"):
        response = httpx.get(
            f"{ecwid.url}/{store}/orders/AB12C", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 403
        assert response.json()["errorCode"] == "INVALID_API_TOKEN"


@pytest.mark.parametrize("store", ["not-a-store", "%201003", "1003%20", "01003", "-1", "%2F1003"])
def test_malformed_store_id_is_400(ecwid: FakeEcwid, store: str) -> None:
    response = httpx.get(
        f"{ecwid.url}/{store}/profile", headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 400
    assert response.json()["errorCode"] == "WRONG_PARAMETER"
    assert set(response.json()) == {"errorMessage", "errorCode"}


def test_unknown_route_and_write_methods(client: httpx.Client) -> None:
    unknown = client.get("/products/1")
    write = client.put("/orders/AB12C", json={"paymentStatus": "PAID"})

    assert unknown.status_code == 404
    assert "errorMessage" in unknown.json()
    assert write.status_code == 405
    assert write.json()["errorCode"] == "METHOD_NOT_ALLOWED"
    assert write.headers["allow"] == "GET, HEAD"


# ---- orders -----------------------------------------------------------------------------------


def test_order_found_by_public_and_internal_id(ecwid: FakeEcwid, client: httpx.Client) -> None:
    order = fixture_order("paid-with-partner.json")
    ecwid.put_order(STORE, order)

    by_public = client.get(f"/orders/{order['id']}")
    by_internal = client.get(f"/orders/{order['internalId']}")

    assert by_public.status_code == by_internal.status_code == 200
    assert json.loads(by_public.text, parse_float=Decimal) == order
    assert by_internal.text == by_public.text
    assert ecwid.order(STORE, order["internalId"]) == order


def test_unknown_order_is_404(client: httpx.Client) -> None:
    response = client.get("/orders/NOPE1")
    assert response.status_code == 404
    assert response.json() == {
        "errorMessage": "Order #NOPE1 not found",
        "errorCode": "ORDER_NOT_FOUND",
    }


def test_deleted_order_is_404(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    assert client.get("/orders/AB12C").status_code == 200

    ecwid.delete_order(STORE, 500000001)  # by internalId

    assert client.get("/orders/AB12C").status_code == 404
    assert client.get("/orders/500000001").status_code == 404
    assert ecwid.orders(STORE) == []
    with pytest.raises(KeyError):
        ecwid.delete_order(STORE, "AB12C")


def test_replacing_an_order_moves_its_internal_id(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order(internal_id=1))
    ecwid.put_order(STORE, minimal_order(internal_id=2, paymentStatus="REFUNDED"))

    assert client.get("/orders/1").status_code == 404
    assert client.get("/orders/2").json()["paymentStatus"] == "REFUNDED"
    assert len(ecwid.orders(STORE)) == 1


def test_orders_are_per_store(ecwid: FakeEcwid) -> None:
    ecwid.put_order(JPY_STORE, fixture_order("zero-decimal-store.json"))
    other = httpx.get(
        f"{ecwid.url}/{STORE}/orders/Z4PRA", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    own = httpx.get(
        f"{ecwid.url}/{JPY_STORE}/orders/Z4PRA", headers={"Authorization": f"Bearer {JPY_TOKEN}"}
    )
    assert other.status_code == 404
    assert own.status_code == 200
    assert '"total":10502,' in own.text


def test_every_fixture_round_trips_unchanged(ecwid: FakeEcwid, client: httpx.Client) -> None:
    for path in sorted(ORDERS.glob("*.json")):
        if path.name == "zero-decimal-store.json":
            continue
        order = fixture_order(path.name)
        ecwid.put_order(STORE, order)
        response = client.get(f"/orders/{order['id']}")
        assert response.status_code == 200, path.name
        assert json.loads(response.text, parse_float=Decimal) == order, path.name


def test_numbers_keep_their_exact_json_text(
    ecwid: FakeEcwid, client: httpx.Client, admin: httpx.Client
) -> None:
    raw = (
        '{"id": "EX4CT", "internalId": 7, "total": 71.39, "tax": 0.1, "subtotal": 10.50,'
        ' "refundedAmount": 0, "usdTotal": 11.067309160854485, "couponDiscount": 1e1}'
    )
    stored = admin.put(
        f"/stores/{STORE}/orders/EX4CT",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert stored.status_code == 200

    text = client.get("/orders/EX4CT").text
    for fragment in (
        '"total":71.39,',
        '"tax":0.1,',
        '"subtotal":10.50,',
        '"refundedAmount":0,',
        '"usdTotal":11.067309160854485,',
    ):
        assert fragment in text
    assert json.loads(text, parse_float=Decimal)["couponDiscount"] == Decimal(10)

    ecwid.put_order(STORE, minimal_order("FL0AT", 8, total=71.39, tax=0.1))
    floated = client.get("/orders/FL0AT").text
    assert '"total":71.39,' in floated
    assert '"tax":0.1' in floated


def test_search_orders(ecwid: FakeEcwid, client: httpx.Client) -> None:
    for name in ("paid-with-partner.json", "refunded.json", "incomplete.json"):
        ecwid.put_order(STORE, fixture_order(name))

    everything = client.get("/orders").json()
    assert [o["id"] for o in everything["items"]] == ["Q7MXT", "N8VGS"]  # no INCOMPLETE
    assert (everything["total"], everything["count"], everything["offset"]) == (2, 2, 0)

    unfinished = client.get("/orders", params={"paymentStatus": "INCOMPLETE"}).json()
    assert [o["id"] for o in unfinished["items"]] == ["X2CQE"]
    paged = client.get("/orders", params={"limit": 1, "offset": 1}).json()
    assert (paged["total"], paged["count"], paged["limit"]) == (2, 1, 1)
    assert [o["id"] for o in paged["items"]] == ["N8VGS"]

    bad = client.get("/orders", params={"limit": 500})
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "WRONG_PARAMETER"


def dated_order(number: int, created: int, updated: int, **extra: Any) -> dict[str, Any]:
    return minimal_order(
        f"D{number:04d}",
        600000000 + number,
        createTimestamp=created,
        createDate=ecwid_date(created),
        updateTimestamp=updated,
        updateDate=ecwid_date(updated),
        **extra,
    )


def test_search_by_creation_and_update_dates(ecwid: FakeEcwid, client: httpx.Client) -> None:
    day = 86400
    base = 1764547200  # 2025-12-01 00:00:00 UTC
    for number in range(10):
        # created one a day; updated a day after creation, the odd ones ten days after
        later = 10 * day if number % 2 else day
        ecwid.put_order(
            STORE, dated_order(number, base + number * day, base + number * day + later)
        )
    ecwid.put_order(STORE, minimal_order("N0DATE", 1))  # no dates: outside every date filter

    def ids(**params: Any) -> list[str]:
        answer = client.get("/orders", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"] >= body["count"] == len(body["items"])
        return [order["id"] for order in body["items"]]

    # bounds are inclusive, in Unix seconds or Ecwid's date formats (UTC without a zone)
    assert ids(createdFrom=base + 2 * day, createdTo=base + 4 * day) == [
        "D0002",
        "D0003",
        "D0004",
    ]
    assert ids(createdFrom="2025-12-03", createdTo="2025-12-05 00:00:00") == [
        "D0002",
        "D0003",
        "D0004",
    ]
    assert ids(createdFrom="2025-12-03 01:00:00 +0100", createdTo="2025-12-04") == [
        "D0002",
        "D0003",
    ]
    assert ids(updatedFrom=base + 10 * day) == ["D0001", "D0003", "D0005", "D0007", "D0009"]
    # a scan's upper bound fixed: D0005 (updated on day 15) is left to the next run
    assert ids(updatedFrom=base + 10 * day, updatedTo=base + 13 * day) == ["D0001", "D0003"]
    assert ids(updatedTo=base + 2 * day) == ["D0000"]
    both = ids(createdFrom=base, createdTo=base + 5 * day, updatedFrom=base + 10 * day)
    assert both == ["D0001", "D0003", "D0005"]
    assert len(ids()) == 11

    formats = "'yyyy-MM-dd HH:mm:ss Z', 'yyyy-MM-dd HH:mm:ss' or 'yyyy-MM-dd'"
    for name, bad in (("updatedFrom", "yesterday"), ("createdTo", "2025-13-01")):
        refused = client.get("/orders", params={name: bad})
        assert refused.status_code == 400
        assert refused.json() == {
            "errorMessage": f"Wrong parameter '{name}' value: expected a UNIX timestamp or a "
            f"date ({formats})",
            "errorCode": "WRONG_PARAMETER",
        }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ids": "AB12C"}, "This fake Ecwid does not implement the search filter 'ids'"),
        ({"email": "a@b.c"}, "This fake Ecwid does not implement the search filter 'email'"),
        ({"customerId": "7"}, "This fake Ecwid does not implement the search filter 'customerId'"),
        (
            {"fulfillmentStatus": "SHIPPED", "limit": "5"},
            "This fake Ecwid does not implement the search filter 'fulfillmentStatus'",
        ),
        ({"createdFrom": "1", "colour": "red"}, "Unknown parameter 'colour' (not in Ecwid's docs)"),
    ],
)
def test_search_filters_the_fake_does_not_apply_are_refused(
    ecwid: FakeEcwid, client: httpx.Client, params: dict[str, str], message: str
) -> None:
    """Ignored, they would answer every order: a bridge starting to use one must fail here."""
    ecwid.put_order(STORE, minimal_order())
    refused = client.get("/orders", params=params)

    assert refused.status_code == 400
    assert refused.json() == {"errorMessage": message, "errorCode": "WRONG_PARAMETER"}
    deleted = client.get("/orders/deleted", params={"ids": "AB12C"})
    assert deleted.json()["errorMessage"] == "Unknown parameter 'ids' (not in Ecwid's docs)"


def test_search_pages_at_most_100(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_orders(STORE, [minimal_order(f"P{n:04d}", 700000000 + n) for n in range(250)])
    seen: list[str] = []
    for offset in (0, 100, 200):
        page = client.get("/orders", params={"offset": offset, "limit": 100}).json()
        assert (page["total"], page["offset"], page["limit"]) == (250, offset, 100)
        assert page["count"] == len(page["items"]) == min(100, 250 - offset)
        seen += [order["id"] for order in page["items"]]
    assert seen == [f"P{n:04d}" for n in range(250)]
    assert client.get("/orders", params={"offset": 250}).json()["items"] == []
    assert client.get("/orders", params={"limit": 101}).status_code == 400


def test_deleted_orders_are_listed_with_their_deletion_date() -> None:
    now = 1767225600  # 2026-01-01 00:00:00 UTC
    day = 86400
    with FakeEcwid({STORE: TOKEN}, clock=lambda: now) as fake:
        for number in range(5):
            fake.put_order(STORE, minimal_order(f"G{number}", 800 + number))
        fake.delete_order(STORE, "G0", deleted_at=now - 200 * day)  # beyond the 6 months kept
        fake.delete_order(STORE, "G1", deleted_at=now - 3 * day)
        fake.delete_order(STORE, 802, deleted_at=now - 2 * day)  # by internalId
        fake.delete_order(STORE, "G3")  # now
        admin = httpx.request(
            "DELETE",
            f"{fake.root_url}/_ecwid/stores/{STORE}/orders/G4",
            json={"deleted_at": now - day},
        )
        assert admin.status_code == 200
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{fake.url}/{STORE}", headers=headers, timeout=5) as client:
            everything = client.get("/orders/deleted").json()
            assert (everything["total"], everything["count"]) == (4, 4)
            assert everything["limit"] == 100
            assert everything["items"][0] == {
                "id": 801,
                "orderId": "G1",
                "date": "2025-12-29 00:00:00 +0000",
            }
            window = client.get(
                "/orders/deleted", params={"from_date": now - 2 * day, "to_date": "2025-12-31"}
            ).json()
            assert [item["orderId"] for item in window["items"]] == ["G2", "G4"]
            paged = client.get("/orders/deleted", params={"offset": 1, "limit": 2}).json()
            assert (paged["total"], paged["count"]) == (4, 2)
            assert [item["orderId"] for item in paged["items"]] == ["G2", "G4"]
            assert client.get("/orders/G1").status_code == 404
            bad = client.get("/orders/deleted", params={"from_date": "soon"})
            assert bad.status_code == 400
        # oldest deletion first, whatever order they were recorded in
        assert [item["orderId"] for item in fake.deleted_orders(STORE)] == [
            "G0",
            "G1",
            "G2",
            "G4",
            "G3",
        ]
        fake.reset()
        assert fake.deleted_orders(STORE) == []


def test_an_optional_rate_limit_answers_429_with_retry_after() -> None:
    with FakeEcwid({STORE: TOKEN, JPY_STORE: JPY_TOKEN}, rate_limit_per_minute=3) as fake:
        fake.put_order(STORE, minimal_order())
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{fake.url}/{STORE}", headers=headers, timeout=5) as client:
            answers = [client.get("/orders/AB12C") for _ in range(4)]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]
            limited = answers[-1]
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            assert limited.json()["errorCode"] == "RATE_LIMITED"
            # the limit is per token
            other = httpx.get(
                f"{fake.url}/{JPY_STORE}/profile",
                headers={"Authorization": f"Bearer {JPY_TOKEN}"},
            )
            assert other.status_code == 200
            admin = f"{fake.root_url}/_ecwid/settings"
            assert httpx.get(admin).json() == {"rate_limit_per_minute": 3}
            assert httpx.put(admin, json={"rate_limit_per_minute": None}).status_code == 200
            assert client.get("/orders/AB12C").status_code == 200
            assert httpx.put(admin, json={"per_minute": 5}).status_code == 400


def test_admin_stores_orders_in_bulk(ecwid: FakeEcwid, admin: httpx.Client) -> None:
    orders = [minimal_order(f"B{n}", 100 + n, total=Decimal("10.10")) for n in range(3)]
    stored = admin.put(
        f"/stores/{STORE}/orders",
        content=dumps(orders),
        headers={"Content-Type": "application/json"},
    )
    assert stored.json() == {"stored": 3}
    assert [o["id"] for o in ecwid.orders(STORE)] == ["B0", "B1", "B2"]
    assert admin.put(f"/stores/{STORE}/orders", json={"id": "x"}).status_code == 400
    assert admin.get("/settings").json() == {"rate_limit_per_minute": None}


# ---- profile and store states -----------------------------------------------------------------


def test_profile_reports_the_store_currency(ecwid: FakeEcwid, client: httpx.Client) -> None:
    usd = client.get("/profile")
    jpy = httpx.get(
        f"{ecwid.url}/{JPY_STORE}/profile", headers={"Authorization": f"Bearer {JPY_TOKEN}"}
    )

    assert usd.status_code == jpy.status_code == 200
    usd_profile = usd.json()
    assert usd_profile["generalInfo"]["storeId"] == STORE
    assert usd_profile["generalInfo"]["storeUrl"].startswith("https://")
    assert usd_profile["account"]["accountName"]
    units = usd_profile["formatsAndUnits"]
    assert (units["currency"], units["currencyPrefix"], units["currencyPrecision"]) == (
        "USD",
        "$",
        2,
    )
    jpy_units = jpy.json()["formatsAndUnits"]
    assert (jpy_units["currency"], jpy_units["currencyPrecision"]) == ("JPY", 0)

    ecwid.add_store(STORE, TOKEN, currency="eur")
    assert client.get("/profile").json()["formatsAndUnits"]["currency"] == "EUR"


def test_suspended_store_is_402(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    ecwid.add_store(STORE, TOKEN, suspended=True)

    response = client.get("/orders/AB12C")
    wrong_token = httpx.get(
        f"{ecwid.url}/{STORE}/orders/AB12C", headers={"Authorization": "Bearer secret_nope"}
    )

    assert response.status_code == 402
    assert response.json()["errorCode"] == "STORE_IS_SUSPENDED"
    assert wrong_token.status_code == 403  # the token is checked first
    ecwid.add_store(STORE, TOKEN, suspended=False)
    assert client.get("/orders/AB12C").status_code == 200


def test_changed_token_invalidates_the_old_one(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.add_store(STORE, "secret_rotated")
    assert client.get("/profile").status_code == 403
    rotated = httpx.get(
        f"{ecwid.url}/{STORE}/profile", headers={"Authorization": "Bearer secret_rotated"}
    )
    assert rotated.status_code == 200


# ---- faults -----------------------------------------------------------------------------------


def test_429_with_retry_after_then_200(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    ecwid.inject_fault(Fault(status=429, retry_after="1"))

    limited = client.get("/orders/AB12C")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["errorCode"] == "RATE_LIMITED"

    again = client.get("/orders/AB12C")
    assert again.status_code == 200
    assert [r.status for r in ecwid.requests()] == [429, 200]
    assert ecwid.faults() == []


def test_fault_filters_by_path_without_api_prefix(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    ecwid.inject_fault(Fault(status=500, path_prefix=f"/{STORE}/orders", count=2))

    assert client.get("/profile").status_code == 200
    assert client.get("/orders/AB12C").status_code == 500
    assert client.get("/orders/AB12C").json()["errorCode"] == "INTERNAL_ERROR"
    assert client.get("/orders/AB12C").status_code == 200


def test_reset_and_malformed_faults(ecwid: FakeEcwid, client: httpx.Client) -> None:
    ecwid.put_order(STORE, minimal_order())
    ecwid.inject_fault(Fault(reset=True))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        client.get("/orders/AB12C")
    assert ecwid.requests()[-1].status == NO_ANSWER_STATUS

    ecwid.inject_fault(Fault(malformed=True))
    garbled = client.get("/orders/AB12C")
    assert garbled.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbled.json()
    assert client.get("/orders/AB12C").status_code == 200


def test_delay_fault_makes_the_client_time_out(client: httpx.Client, ecwid: FakeEcwid) -> None:
    ecwid.inject_fault(Fault(delay_seconds=2.0))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/profile", timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert client.get("/profile").status_code == 200


# ---- admin interface --------------------------------------------------------------------------


def test_admin_sets_stores_and_orders_over_http(ecwid: FakeEcwid, admin: httpx.Client) -> None:
    created = admin.put("/stores/3003", json={"token": "secret_admin", "currency": "GBP"})
    assert created.status_code == 200
    assert created.json() == {"storeId": 3003, "currency": "GBP", "suspended": False}

    order = minimal_order("ADM1N", 900)
    put = admin.put(
        "/stores/3003/orders/ADM1N",
        content=json.dumps(order, default=str).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert put.status_code == 200
    auth = {"Authorization": "Bearer secret_admin"}
    fetched = httpx.get(f"{ecwid.url}/3003/orders/900", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json()["id"] == "ADM1N"
    assert ecwid.order(3003, "ADM1N")["internalId"] == 900  # type: ignore[index]

    mismatch = admin.put("/stores/3003/orders/OTHER", json={"id": "ADM1N"})
    assert mismatch.status_code == 400
    unknown_store = admin.put("/stores/4004/orders/X", json={"id": "X"})
    assert unknown_store.status_code == 404
    no_token = admin.put("/stores/5005", json={"currency": "USD"})
    assert no_token.status_code == 400

    state = admin.get("/state").json()
    stores = {store["storeId"]: store for store in state["stores"]}
    assert set(stores) == {STORE, JPY_STORE, 3003}
    assert [o["id"] for o in stores[3003]["orders"]] == ["ADM1N"]
    assert "token" not in json.dumps(state)

    suspended = admin.put("/stores/3003", json={"suspended": True})
    assert suspended.json()["suspended"] is True
    assert httpx.get(f"{ecwid.url}/3003/orders/900", headers=auth).status_code == 402

    deleted = admin.delete("/stores/3003/orders/ADM1N")
    assert deleted.status_code == 200
    assert admin.delete("/stores/3003/orders/ADM1N").status_code == 404
    assert ecwid.orders(3003) == []


def test_admin_requests_faults_and_reset(
    ecwid: FakeEcwid, client: httpx.Client, admin: httpx.Client
) -> None:
    ecwid.put_order(STORE, minimal_order())
    client.get("/orders/AB12C")
    logged = admin.get("/requests").json()
    assert len(logged) == 1  # admin calls are not recorded
    assert logged[0]["path"] == f"/api/v3/{STORE}/orders/AB12C"
    assert logged[0]["headers"]["authorization"] == "Bearer ***"
    assert logged[0]["status"] == 200

    added = admin.post("/faults", json=[{"status": 503, "count": 2}, {"delay_seconds": 0.01}])
    assert added.status_code == 200
    assert [f["status"] for f in added.json()["faults"]] == [503, None]
    assert admin.post("/faults", json={"nonsense": 1}).status_code == 400
    assert client.get("/orders/AB12C").status_code == 503
    assert admin.delete("/faults").json() == {"faults": []}
    assert client.get("/orders/AB12C").status_code == 200

    assert admin.post("/reset").json() == {"ok": True}
    assert ecwid.requests() == []
    assert ecwid.orders(STORE) == []
    assert client.get("/profile").status_code == 200  # stores and tokens survive a reset
    assert admin.get("/nope").status_code == 404
    assert admin.post("/state").status_code == 405


def test_python_api_validates_its_input(ecwid: FakeEcwid) -> None:
    with pytest.raises(ValueError, match="store id"):
        ecwid.add_store("abc", TOKEN)
    with pytest.raises(ValueError, match="currency"):
        ecwid.add_store(STORE, TOKEN, currency="dollars")
    with pytest.raises(ValueError, match="token"):
        ecwid.add_store(STORE, "")
    with pytest.raises(ValueError, match='"id"'):
        ecwid.put_order(STORE, {"total": 1})
    with pytest.raises(KeyError):
        ecwid.put_order(9999, minimal_order())


# ---- lifecycle --------------------------------------------------------------------------------


def test_stop_frees_the_port_and_is_idempotent() -> None:
    fake = FakeEcwid({STORE: TOKEN})
    fake.start()
    port = fake.port
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(headers=headers, timeout=2.0) as http:
        assert http.get(f"{fake.url}/{STORE}/profile").status_code == 200
        fake.stop()
        fake.stop()
        assert not fake.running
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{port}/api/v3/{STORE}/profile")

    with FakeEcwid({STORE: TOKEN}, port=port) as again:
        assert again.port == port
        assert httpx.get(f"{again.url}/{STORE}/profile", headers=headers).status_code == 200


def test_stop_does_not_wait_for_a_hanging_request() -> None:
    fake = FakeEcwid({STORE: TOKEN})
    fake.start()
    fake.inject_fault(Fault(delay_seconds=30))
    request = f"GET /api/v3/{STORE}/profile HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as conn:
        conn.sendall(request)
        time.sleep(0.2)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 3


def test_module_runs_in_the_foreground_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "partnero_bridge_cli.local.ecwid",
            "--port",
            "0",
            "--store",
            "1003:secret_cli",
            "--store",
            "2002:secret_cli_jpy:JPY",
            "--order",
            f"1003:{ORDERS / 'paid-with-partner.json'}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].strip()
        assert url.endswith("/api/v3")
        order = httpx.get(
            f"{url}/1003/orders/Q7MXT", headers={"Authorization": "Bearer secret_cli"}, timeout=5
        )
        assert order.status_code == 200
        assert '"total":71.39,' in order.text
        profile = httpx.get(
            f"{url}/2002/profile", headers={"Authorization": "Bearer secret_cli_jpy"}, timeout=5
        )
        assert profile.json()["formatsAndUnits"]["currency"] == "JPY"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

"""The Ecwid fixtures in events/ecwid: order arithmetic that adds up, webhook bodies as documented.

Order arithmetic as documented for Ecwid's order JSON:

* ``subtotal`` is the sum of ``price * quantity``;
* ``discount`` holds every promotion but not the coupon, which is ``couponDiscount``;
* ``total = subtotal - couponDiscount - discount + shippingRate + handlingFee.value + tax``,
  without the ``+ tax`` when ``pricesIncludeTax`` is true (the prices already contain it);
* ``tax`` is the sum of the items' ``tax``; ``totalWithoutTax = total - tax``;
* ``refundedAmount`` is the sum of ``refunds[].amount``.
"""

import json
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2] / "events" / "ecwid"
ORDER_FILES = sorted((ROOT / "orders").glob("*.json"))
WEBHOOK_FILES = sorted((ROOT / "webhooks").glob("*.json"))
ZERO_DECIMAL = {"zero-decimal-store.json"}
PARTNER_FIELD = "partnero_partner"
PARTNER = "demo-partner"
PAYMENT_STATUSES = {
    "AWAITING_PAYMENT",
    "PAID",
    "CANCELLED",
    "REFUNDED",
    "PARTIALLY_REFUNDED",
    "INCOMPLETE",
    "CUSTOM_PAYMENT_STATUS_1",
    "CUSTOM_PAYMENT_STATUS_2",
    "CUSTOM_PAYMENT_STATUS_3",
}
ORDER_EVENTS = {
    "order.created",
    "order.updated",
    "order.deleted",
    "unfinished_order.created",
    "unfinished_order.updated",
    "unfinished_order.deleted",
}
MONEY_FIELDS = (
    "total",
    "subtotal",
    "subtotalWithoutTax",
    "totalWithoutTax",
    "tax",
    "couponDiscount",
    "discount",
    "volumeDiscount",
    "membershipBasedDiscount",
    "totalAndMembershipBasedDiscount",
    "refundedAmount",
)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def money(value: Any) -> Decimal:
    assert isinstance(value, int | Decimal), value
    assert not isinstance(value, bool), value
    return Decimal(value)


def places(path: Path) -> int:
    return 0 if path.name in ZERO_DECIMAL else 2


def has_places(value: Decimal, allowed: int) -> bool:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent <= allowed


def rounded(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def orders() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in ORDER_FILES:
        yield path, load(path)


def test_every_expected_fixture_exists() -> None:
    names = {path.name for path in ORDER_FILES}
    assert names == {
        "paid-with-partner.json",
        "paid-tax-included.json",
        "paid-no-partner.json",
        "paid-partner-only-in-order-extra-fields.json",
        "awaiting-payment.json",
        "partially-refunded.json",
        "refunded.json",
        "cancelled.json",
        "incomplete.json",
        "custom-status.json",
        "zero-decimal-store.json",
    }
    assert {path.name for path in WEBHOOK_FILES} == {
        "order-created.json",
        "order-updated.json",
        "order-deleted.json",
        "unfinished-order-created.json",
        "product-updated.json",
        "application-installed.json",
    }


@pytest.mark.parametrize("path", ORDER_FILES, ids=lambda path: path.stem)
def test_order_identity_and_shape(path: Path) -> None:
    order = load(path)
    assert isinstance(order["id"], str)
    assert order["id"].isalnum()
    assert order["id"].isupper()
    assert isinstance(order["internalId"], int)
    assert order["vendorOrderNumber"] == order["id"]
    assert order["orderNumber"] == order["internalId"]
    assert order["paymentStatus"] in PAYMENT_STATUSES
    assert "@" in order["email"]
    assert "currency" not in order  # the currency comes from the store profile
    assert "shipping" not in order  # no top-level shipping: shippingOption.shippingRate
    person = order["billingPerson"]
    assert person["name"] == f"{person['firstName']} {person['lastName']}"
    assert order["createTimestamp"] <= order["updateTimestamp"]
    for field in MONEY_FIELDS:
        assert has_places(money(order[field]), places(path)), (field, order[field])


@pytest.mark.parametrize("path", ORDER_FILES, ids=lambda path: path.stem)
def test_order_arithmetic(path: Path) -> None:
    order = load(path)
    digits = places(path)
    items = order["items"]

    subtotal = sum((money(item["price"]) * item["quantity"] for item in items), Decimal(0))
    assert money(order["subtotal"]) == subtotal

    coupon = money(order["couponDiscount"])
    discount = money(order["discount"])
    promotions = (
        money(order["volumeDiscount"])
        + money(order["membershipBasedDiscount"])
        + money(order["totalAndMembershipBasedDiscount"])
        + sum((money(value) for value in order["customDiscount"]), Decimal(0))
    )
    assert discount == promotions
    assert coupon == sum((money(item.get("couponAmount", 0)) for item in items), Decimal(0))
    item_discounts = [entry for item in items for entry in item["discounts"]]
    assert discount == sum((money(entry["total"]) for entry in item_discounts), Decimal(0))
    if coupon:
        assert order["discountCoupon"]["code"]

    shipping = money(order["shippingOption"]["shippingRate"]) if "shippingOption" in order else 0
    assert shipping == sum((money(item["shipping"]) for item in items), Decimal(0))
    handling = money(order["handlingFee"]["value"]) if "handlingFee" in order else Decimal(0)

    tax = money(order["tax"])
    assert tax == sum((money(item["tax"]) for item in items), Decimal(0))
    included = order["pricesIncludeTax"]
    expected = subtotal - coupon - discount + shipping + handling + (0 if included else tax)
    assert money(order["total"]) == expected
    assert money(order["totalWithoutTax"]) == money(order["total"]) - tax
    assert money(order["totalBeforeGiftCardRedemption"]) == money(order["total"])

    if included:
        without = sum(
            (money(item["priceWithoutTax"]) * item["quantity"] for item in items), Decimal(0)
        )
        assert money(order["subtotalWithoutTax"]) == without
    else:
        assert money(order["subtotalWithoutTax"]) == subtotal

    for item in items:
        line = money(item["price"]) * item["quantity"]
        base = line - money(item.get("couponAmount", 0))
        base -= sum((money(entry["total"]) for entry in item["discounts"]), Decimal(0))
        taxes = item["taxes"]
        assert money(item["tax"]) == sum((money(entry["total"]) for entry in taxes), Decimal(0))
        for entry in taxes:
            assert entry["includeInPrice"] is included
            rate = money(entry["value"]) / 100
            on_items = base - base / (1 + rate) if included else base * rate
            assert money(entry["taxOnDiscountedSubtotal"]) == rounded(on_items, digits)
            assert money(entry["total"]) == money(entry["taxOnDiscountedSubtotal"]) + money(
                entry["taxOnShipping"]
            )


@pytest.mark.parametrize("path", ORDER_FILES, ids=lambda path: path.stem)
def test_refunds_add_up(path: Path) -> None:
    order = load(path)
    refunded = money(order["refundedAmount"])
    refunds = order["refunds"]
    assert refunded == sum((money(refund["amount"]) for refund in refunds), Decimal(0))
    for refund in refunds:
        assert set(refund) >= {"date", "source", "reason", "amount"}
        assert refund["source"] in {"CP", "API", "External"}
    status = order["paymentStatus"]
    if status == "REFUNDED":
        assert refunded == money(order["total"])
    elif status == "PARTIALLY_REFUNDED":
        assert 0 < refunded < money(order["total"])
        assert len(refunds) >= 1
    else:
        assert refunded == 0
        assert refunds == []


def partner_in(order: dict[str, Any]) -> tuple[Any, Any]:
    extra = order.get("extraFields", {}).get(PARTNER_FIELD)
    listed = [f["value"] for f in order.get("orderExtraFields", []) if f["id"] == PARTNER_FIELD]
    return extra, (listed[0] if listed else None)


def test_partner_key_placement() -> None:
    for path, order in orders():
        extra, listed = partner_in(order)
        if path.name == "paid-no-partner.json":
            assert order["extraFields"] == {}
            assert (extra, listed) == (None, None)
            assert order["orderExtraFields"]  # other fields, just not the partner
        elif path.name == "paid-partner-only-in-order-extra-fields.json":
            assert "extraFields" not in order
            assert (extra, listed) == (None, PARTNER)
        else:
            assert (extra, listed) == (PARTNER, PARTNER), path.name
        for entry in order.get("orderExtraFields", []):
            assert set(entry) >= {"id", "value", "title", "orderDetailsDisplaySection"}
            assert len(entry["value"]) <= 255


def test_specific_scenarios() -> None:
    by_name = {path.name: order for path, order in orders()}
    paid = by_name["paid-with-partner.json"]
    assert paid["paymentStatus"] == "PAID"
    assert paid["pricesIncludeTax"] is False
    assert money(paid["total"]) == Decimal("71.39")
    assert money(paid["shippingOption"]["shippingRate"]) == 5
    assert paid["handlingFee"] == {
        "name": "Handling Fee",
        "value": Decimal("1.5"),
        "description": "Careful packing",
    }
    assert money(paid["couponDiscount"]) > 0
    assert paid["email"] != paid["email"].lower()
    assert by_name["paid-tax-included.json"]["pricesIncludeTax"] is True
    statuses = {name: order["paymentStatus"] for name, order in by_name.items()}
    assert statuses["awaiting-payment.json"] == "AWAITING_PAYMENT"
    assert statuses["cancelled.json"] == "CANCELLED"
    assert statuses["incomplete.json"] == "INCOMPLETE"
    assert statuses["custom-status.json"] == "CUSTOM_PAYMENT_STATUS_1"
    jpy = by_name["zero-decimal-store.json"]
    for field in MONEY_FIELDS:
        assert isinstance(jpy[field], int), field
    ids = [order["id"] for order in by_name.values()]
    internal_ids = [order["internalId"] for order in by_name.values()]
    assert len(set(ids)) == len(ids)
    assert len(set(internal_ids)) == len(internal_ids)


# ---- webhooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda path: path.stem)
def test_webhook_has_the_documented_fields(path: Path) -> None:
    body = load(path)
    assert set(body) <= {"eventId", "eventCreated", "storeId", "entityId", "eventType", "data"}
    assert isinstance(body["eventId"], str)
    assert body["eventId"]
    assert isinstance(body["eventCreated"], int)
    assert body["eventCreated"] > 1_600_000_000
    assert body["storeId"] == 1003
    assert isinstance(body["entityId"], int)
    assert isinstance(body["eventType"], str)
    assert "." in body["eventType"]
    if "data" in body:
        assert isinstance(body["data"], dict)


def test_order_webhooks_point_at_order_fixtures() -> None:
    loaded = [order for _, order in orders()]
    by_id = {order["id"]: order for order in loaded}
    by_internal = {order["internalId"]: order for order in loaded}
    seen_types = set()
    for path in WEBHOOK_FILES:
        body = load(path)
        event = body["eventType"]
        seen_types.add(event)
        if event not in ORDER_EVENTS:
            assert "data" not in body or "orderId" not in body["data"]
            continue
        order = by_internal[body["entityId"]]
        if event == "order.deleted":
            assert "data" not in body  # the older shape: entityId only
            continue
        data = body["data"]
        assert data["orderId"] == order["id"]
        assert by_id[data["orderId"]] is order
        assert body["eventCreated"] >= order["createTimestamp"]
        if "newPaymentStatus" in data:
            assert data["newPaymentStatus"] == order["paymentStatus"]
        if "newFulfillmentStatus" in data:
            assert data["newFulfillmentStatus"] == order["fulfillmentStatus"]
        if event.startswith("unfinished_order."):
            assert order["paymentStatus"] == "INCOMPLETE"
    assert seen_types == {
        "order.created",
        "order.updated",
        "order.deleted",
        "unfinished_order.created",
        "product.updated",
        "application.installed",
    }


def test_order_created_is_for_the_paid_partner_order() -> None:
    body = load(ROOT / "webhooks" / "order-created.json")
    paid = load(ROOT / "orders" / "paid-with-partner.json")
    assert body["data"]["orderId"] == paid["id"]
    assert body["entityId"] == paid["internalId"]
    assert body["data"]["newPaymentStatus"] == "PAID"

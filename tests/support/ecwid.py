"""Signed Ecwid webhooks for tests, built the way Ecwid builds them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from partnero_bridge.ecwid.signature import SIGNATURE_HEADER, expected_signature


def webhook(
    event_type: str,
    store_id: int,
    order: dict[str, Any] | None = None,
    event_id: str | None = None,
    created: int | None = None,
    deleted_old_shape: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": event_id or str(uuid.uuid4()),
        # Now by default: ingest refuses webhooks older than ECWID_MAX_EVENT_AGE_SECONDS.
        "eventCreated": int(time.time()) if created is None else created,
        "storeId": store_id,
        "eventType": event_type,
    }
    if order is not None:
        body["entityId"] = order.get("internalId")
        if not deleted_old_shape:
            body["data"] = {"orderId": order["id"], "newPaymentStatus": order.get("paymentStatus")}
    return body


def signed(body: dict[str, Any], client_secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of the POST Ecwid would send."""
    header = expected_signature(client_secret, body["eventCreated"], body["eventId"])
    return json.dumps(body).encode(), {SIGNATURE_HEADER: header, "content-type": "application/json"}


# A paid, referred order of store 1003 (net 60.00: 71.39 - 4.89 tax - 5.00 shipping
# - 1.50 handling), as the Ecwid API serves it.
ORDER: dict[str, Any] = {
    "id": "K8XTQ",
    "internalId": 516483487,
    "paymentStatus": "PAID",
    "email": "Jane.Doe@Example.com",
    "customerId": 270919557,
    "total": 71.39,
    "subtotal": 70.0,
    "tax": 4.89,
    "couponDiscount": 10.0,
    "discount": 0,
    "shippingOption": {"shippingMethodName": "Courier", "shippingRate": 5.0},
    "handlingFee": {"name": "Wrapping", "value": 1.5, "description": ""},
    "refundedAmount": 0,
    "refunds": [],
    "items": [{"productId": 561, "sku": "TEA-1", "price": 35.0, "quantity": 2}],
    "billingPerson": {"name": "Jane Doe", "firstName": "Jane", "lastName": "Doe"},
    "extraFields": {"partnero_partner": "demo-partner"},
    "orderExtraFields": [{"id": "partnero_partner", "value": "demo-partner"}],
    "createTimestamp": 1795210000,
}

"""A flood of unsigned sign-ups from one address, through the local stack over real HTTP,
while a shop's backend signs up customers and Stripe sends sales at the same time.

The flood gets 429 past the per-address limit; the signed sign-ups and the sales are each
counted exactly once. Time budget: about 30 s (under 60 s even when it first waits for a
fresh minute of the rate limit).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from partnero_bridge_cli.local.gateway import TEST_SOURCE_IP_HEADER
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import SHOP, SIGNUP_RATE_LIMIT, SIGNUP_SECRET, STRIPE_SECRET
from tests.e2e.test_stripe_local_stack import renamed
from tests.support.local_stack import RunningStack, wait_for
from tests.support.signup import signed_signup
from tests.support.stripe import signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(90)]

FLOOD = 3 * SIGNUP_RATE_LIMIT
SIGNED = 10
SALES = 5
# The flood takes a few seconds; it must fall in one minute of the fixed-window limit.
_FLOOD_SECONDS_NEEDED = 15


def _wait_for_a_fresh_minute() -> None:
    left = 60 - time.time() % 60
    if left < _FLOOD_SECONDS_NEEDED:
        time.sleep(left + 0.5)


def test_a_flood_is_limited_while_signed_sign_ups_and_sales_count_once(
    stack: RunningStack,
    partnero: PartneroSandbox,
    stripe_api: FakeStripeApi,
    figures: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    # One address of its own (a benchmarking range) for the flood and the signed calls
    # alike: only the unsigned calls count against it.
    number = int(run, 16)
    address = f"198.18.{number % 256}.{number // 256 % 254 + 1}"
    flood = [
        {"email": f"flood-{run}-{i}@example.com", "partner_key": "demo-partner"}
        for i in range(FLOOD)
    ]
    backend = [
        {"email": f"signed-{run}-{i}@example.com", "partner_key": "demo-partner"}
        for i in range(SIGNED)
    ]
    sales = [renamed("checkout.session.completed.payment", f"F{run}{i}") for i in range(SALES)]
    for event, objects in sales:
        stripe_api.load_event(event, objects)

    def unsigned(body: dict[str, str]) -> httpx.Response:
        headers = {"origin": SHOP, TEST_SOURCE_IP_HEADER: address}
        return stack.http.post("/signup", json=body, headers=headers)

    def signed_call(body: dict[str, str]) -> httpx.Response:
        raw, headers = signed_signup(body, SIGNUP_SECRET, {TEST_SOURCE_IP_HEADER: address})
        return stack.http.post("/signup", content=raw, headers=headers)

    def sale(index: int) -> httpx.Response:
        raw, headers = signed(sales[index][0], STRIPE_SECRET)
        return stack.http.post("/webhooks/stripe", content=raw, headers=headers)

    _wait_for_a_fresh_minute()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Interleaved: signed calls and sales go out while the flood is under way.
        flood_answers = [pool.submit(unsigned, body) for body in flood]
        signed_answers = [pool.submit(signed_call, body) for body in backend]
        sale_answers = [pool.submit(sale, i) for i in range(SALES)]
        flood_results = [f.result() for f in flood_answers]
        signed_results = [f.result() for f in signed_answers]
        sale_results = [f.result() for f in sale_answers]
    sending = time.monotonic() - started

    statuses = Counter(answer.status_code for answer in flood_results)
    assert statuses == {202: SIGNUP_RATE_LIMIT, 429: FLOOD - SIGNUP_RATE_LIMIT}, statuses
    for answer in flood_results:
        if answer.status_code == 429:
            assert answer.json()["error"] == "rate_limited"
            assert 1 <= int(answer.headers["retry-after"]) <= 60
            # A page can read its 429: the CORS headers come with it.
            assert answer.headers["access-control-allow-origin"] == SHOP
    assert [a.status_code for a in signed_results] == [202] * SIGNED
    assert [a.status_code for a in sale_results] == [200] * SALES

    accepted = {
        body["email"]
        for body, answer in zip(flood, flood_results, strict=True)
        if answer.status_code == 202
    }
    expected_customers = accepted | {body["email"] for body in backend}

    def keys_sent(path: str) -> Counter[str]:
        """The keys this test's calls sent to Partnero on ``path``, with how often."""
        return Counter(
            str(r.body["key"])
            for r in partnero.requests()
            if (r.method, r.path) == ("POST", path) and run in str(r.body.get("key"))
        )

    def customer_keys() -> Counter[str]:
        return keys_sent("/v1/customers")

    def transaction_keys() -> Counter[str]:
        return keys_sent("/v1/transactions")

    wait_for(
        lambda: set(customer_keys()) >= expected_customers and len(transaction_keys()) >= SALES,
        45,
        "the accepted sign-ups and the sales in Partnero",
    )
    stack.wait_until_drained("signup")
    stack.wait_until_drained("stripe-event")

    # Each accepted sign-up became exactly one Partnero customer; none refused did.
    assert customer_keys() == Counter(expected_customers)
    # Each sale became exactly one transaction.
    sale_keys = [f"stripe_pi_ONEOFFGracePartneroF{run}{i}" for i in range(SALES)]
    assert transaction_keys() == Counter(sale_keys)
    assert stack.dead_letters("signup") == []
    assert stack.dead_letters("stripe-event") == []
    figures(
        unsigned_sent=FLOOD,
        answered_429=statuses[429],
        signed_accepted=SIGNED,
        sales_counted=SALES,
        customers_created=len(expected_customers),
        sending_seconds=round(sending, 1),
    )

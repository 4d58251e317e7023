"""A Partnero outage through `partnero-bridge run`, with the retry window shrunk from 72 h to
24 s (back-off from 1 s, capped at 2 s): an outage of most of the window loses nothing and
doubles nothing with no hand involved, a request Partnero calls invalid is dead-lettered at
once with Partnero's message, and a delivery still failing when its window ends is
dead-lettered saying so."""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.e2e.conftest import (
    ECWID_CLIENT_SECRET,
    ECWID_STORE,
    SHOP,
    STRIPE_SECRET,
    connected,
)
from tests.e2e.test_ecwid_local_stack import order
from tests.e2e.test_stripe_local_stack import provide, renamed
from tests.support.ecwid import signed as ecwid_signed
from tests.support.ecwid import webhook
from tests.support.local_stack import RunningStack, wait_for
from tests.support.stripe import signed as stripe_signed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(60)]

WINDOW = 24  # seconds; deployed: 72 h
OUTAGE = 16  # seconds of it with Partnero down: "three days" of a 4.5-day window
WORK_QUEUES = ("signup", "ecwid-order", "stripe-event")


@pytest.fixture(scope="module")
def outage_stack(
    partnero: PartneroSandbox, ecwid: FakeEcwid, stripe_api: FakeStripeApi
) -> Iterator[RunningStack]:
    running = RunningStack(
        {
            **connected(partnero, ecwid, stripe_api),
            "SIGNUP_ALLOWED_ORIGINS": SHOP,
            "PARTNERO_TIMEOUT_SECONDS": "2",
            "BRIDGE_RETRY_WINDOW_SECONDS": str(WINDOW),
            "BRIDGE_RETRY_BASE_SECONDS": "1",
            "BRIDGE_RETRY_MAX_SECONDS": "2",
            "BRIDGE_SIGNUP_WAIT_SECONDS": "3",
        }
    )
    yield running
    assert running.stop() == 0, running.output()


def empty_dead_letter_queues(stack: RunningStack) -> None:
    """Delete what a test parked (SQS allows one PurgeQueue a minute)."""
    sqs = stack.aws("sqs")
    for suffix in WORK_QUEUES:
        url = stack.queue_url(f"{suffix}-dlq")
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def dead_letter_attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}


def window_start(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(dead_letter_attributes(message)["retry_window_start"])


def received_at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(json.loads(message["Body"])["received_at"])


def transactions_per_key(partnero: PartneroSandbox) -> Counter[str]:
    """Every transaction Partnero holds or held (deleted ones too), by key."""
    return Counter(t["key"] for t in partnero.transactions(include_deleted=True))


def post_stripe_sale(stack: RunningStack, stripe_api: FakeStripeApi, suffix: str) -> str:
    sample = renamed("checkout.session.completed.payment", suffix)
    provide(stripe_api, sample)
    raw, headers = stripe_signed(sample[0], STRIPE_SECRET)
    assert stack.http.post("/webhooks/stripe", content=raw, headers=headers).status_code == 200
    return f"stripe_pi_ONEOFFGracePartnero{suffix}"


def post_ecwid_sale(stack: RunningStack, ecwid: FakeEcwid, order_id: str, **changes: Any) -> str:
    paid = order("paid-with-partner", id=order_id, internalId=zlib.crc32(order_id.encode()))
    paid.update(changes)
    ecwid.put_order(ECWID_STORE, paid)
    raw, headers = ecwid_signed(webhook("order.created", ECWID_STORE, paid), ECWID_CLIENT_SECRET)
    assert stack.http.post("/webhooks/ecwid", content=raw, headers=headers).status_code == 200
    return f"ecwid_{ECWID_STORE}_{order_id}"


def post_signup(stack: RunningStack, email: str) -> str:
    body = {"email": email, "partner_key": "demo-partner"}
    assert stack.http.post("/signup", json=body, headers={"origin": SHOP}).status_code == 202
    return email


def test_partnero_down_for_most_of_the_window_loses_and_doubles_nothing(
    outage_stack: RunningStack,
    partnero: PartneroSandbox,
    ecwid: FakeEcwid,
    stripe_api: FakeStripeApi,
    figures: Any,
) -> None:
    stack = outage_stack
    started = time.monotonic()
    # Down: first refusing connections outright, then answering 503.
    partnero.inject_fault(Fault(reset=True, count=-1))
    stripe_keys: list[str] = []
    ecwid_keys: list[str] = []
    signups: list[str] = []
    for wave in range(3):  # sales and sign-ups keep arriving during the outage
        time.sleep(max(0.0, started + wave * OUTAGE / 3 - time.monotonic()))
        if wave == 2:
            partnero.clear_faults()
            partnero.inject_fault(Fault(status=503, count=-1))
        stripe_keys.append(post_stripe_sale(stack, stripe_api, f"Outage{wave}"))
        ecwid_keys.append(post_ecwid_sale(stack, ecwid, f"OUTAGE{wave}"))
        signups.append(post_signup(stack, f"outage{wave}@example.com"))
    time.sleep(max(0.0, started + OUTAGE - time.monotonic()))
    failed_calls = len(partnero.requests())
    assert partnero.transactions(include_deleted=True) == []
    assert partnero.customers() == []

    partnero.clear_faults()  # Partnero is back; nobody touches the bridge
    recovered = time.monotonic()
    for suffix in WORK_QUEUES:
        stack.wait_until_drained(suffix, timeout=WINDOW)
    caught_up = time.monotonic() - recovered

    held = transactions_per_key(partnero)
    assert held == Counter(dict.fromkeys(stripe_keys + ecwid_keys, 1))
    assert all(not t.get("deleted") for t in partnero.transactions(include_deleted=True))
    # Each sign-up created its customer once (the sales created their buyers besides).
    created = Counter(
        r.body["key"]
        for r in partnero.requests()
        if (r.method, r.path, r.status) == ("POST", "/v1/customers", 200)
    )
    assert created == Counter(dict.fromkeys(signups, 1))
    assert set(signups) <= {c["key"] for c in partnero.customers()}
    for suffix in WORK_QUEUES:
        assert stack.queue_depth(f"{suffix}-dlq") == 0, suffix
    figures(
        window_s=WINDOW,
        outage_s=OUTAGE,
        payments=len(stripe_keys) + len(ecwid_keys),
        signups=len(signups),
        failed_partnero_calls_during_outage=failed_calls,
        caught_up_after_s=round(caught_up, 1),
        processed_once=len(held) + len(signups),
        dead_lettered=0,
    )


def test_a_request_partnero_calls_invalid_is_dead_lettered_at_once(
    outage_stack: RunningStack, partnero: PartneroSandbox, ecwid: FakeEcwid
) -> None:
    stack = outage_stack
    started = time.monotonic()
    # Partnero refuses a customer name over 255 characters (a 422 with its message).
    long_name = {"firstName": "A" * 300, "lastName": "Lovelace", "name": "A Lovelace"}
    key = post_ecwid_sale(stack, ecwid, "INVALID1", billingPerson=long_name)

    [dead] = wait_for(lambda: stack.dead_letters("ecwid-order"), 10, "the dead letter")
    took = time.monotonic() - started
    try:
        attributes = dead_letter_attributes(dead)
        assert attributes["error"].startswith(
            "Partnero rejected the request (422): "
            "The customer.name field must not be greater than 255 characters."
        )
        assert attributes["error_kind"] == "permanent"
        assert attributes["receive_count"] == "1"  # not retried
        assert window_start(dead) == received_at(dead)
        assert took < WINDOW / 2
        assert transactions_per_key(partnero)[key] == 0
        [call] = [r for r in partnero.requests() if r.method == "POST"]
        assert call.status == 422
    finally:
        empty_dead_letter_queues(stack)


def test_a_delivery_still_failing_when_its_window_ends_is_dead_lettered_saying_so(
    outage_stack: RunningStack,
    partnero: PartneroSandbox,
    stripe_api: FakeStripeApi,
    figures: Any,
) -> None:
    stack = outage_stack
    partnero.inject_fault(Fault(status=503, count=-1))
    started = time.monotonic()
    post_stripe_sale(stack, stripe_api, "NeverBack")

    [dead] = wait_for(lambda: stack.dead_letters("stripe-event"), WINDOW + 15, "the dead letter")
    took = time.monotonic() - started
    try:
        attributes = dead_letter_attributes(dead)
        assert attributes["error"].startswith("Partnero answered 503: Service Unavailable [")
        assert attributes["error"].endswith(f"its retry window ({WINDOW} s) has passed]")
        assert attributes["error_kind"] == "retryable"
        assert int(attributes["receive_count"]) > 5  # retried all along, not a backstop
        assert window_start(dead) == received_at(dead)
        # Retried until the window's end, dead-lettered soon after it.
        assert WINDOW - 1 <= took <= WINDOW + 10
        stack.wait_until_drained("stripe-event", timeout=5)
        assert partnero.transactions(include_deleted=True) == []
    finally:
        empty_dead_letter_queues(stack)
    figures(
        window_s=WINDOW,
        dead_lettered_after_s=round(took, 1),
        receives=attributes["receive_count"],
        partnero_calls=len(partnero.requests()),
    )

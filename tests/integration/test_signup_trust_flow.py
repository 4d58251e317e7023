"""Sign-up trust through the functions in-process on moto, with the template's tables: the
per-address rate limit in the RateLimitTable, the store failing, partner budgets that
postpone (and later process) sign-ups, and SIGNUP_SALES_CLAIMED_BY=signed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from partnero_bridge.queues import DeliveryQueues
from partnero_bridge.ratelimit import window_of
from partnero_bridge.signup import process as signup_process
from partnero_bridge_cli.local.gateway import TEST_SOURCE_IP_HEADER
from partnero_bridge_cli.local.pollers import QueuePoller
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import InProcessBridge, in_process_bridge
from tests.support.signup import signed_signup

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"
HMAC_SECRET = "test-signup-hmac-secret-51c0"


@contextmanager
def bridge_with(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, **env: str
) -> Iterator[InProcessBridge]:
    settings = {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "SIGNUP_ALLOWED_ORIGINS": SHOP,
        "SIGNUP_HMAC_SECRET": HMAC_SECRET,
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        **env,
    }
    with in_process_bridge(monkeypatch, settings) as bridge:
        yield bridge


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox) -> Iterator[InProcessBridge]:
    with bridge_with(monkeypatch, sandbox, SIGNUP_RATE_LIMIT_PER_MINUTE="3") as running:
        yield running


def signup(email: str, partner: str = "demo-partner") -> dict[str, str]:
    return {"email": email, "partner_key": partner}


def from_browser(
    bridge: InProcessBridge,
    body: dict[str, str],
    address: str,
    headers: dict[str, str] | None = None,
) -> Any:
    all_headers = {"origin": SHOP, TEST_SOURCE_IP_HEADER: address, **(headers or {})}
    return bridge.call("POST", "/signup", body, all_headers)


def signed(bridge: InProcessBridge, body: dict[str, str], address: str = "203.0.113.9") -> Any:
    raw, headers = signed_signup(body, HMAC_SECRET, {TEST_SOURCE_IP_HEADER: address})
    return bridge.call("POST", "/signup", raw, headers)


def customers(sandbox: PartneroSandbox) -> list[str]:
    return sorted(str(c["key"]) for c in sandbox.customers())


def rate_limit_items(bridge: InProcessBridge) -> list[dict[str, Any]]:
    table = bridge.resources.refs["RateLimitTable"]
    return list(bridge.dynamodb.scan(TableName=table)["Items"])


# --- rate limit --------------------------------------------------------------------------


def test_unsigned_calls_past_the_limit_are_429_and_never_queued(
    bridge: InProcessBridge, sandbox: PartneroSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    if 60 - time.time() % 60 < 3:
        time.sleep(3.5)  # the calls below must fall in one minute
    answers = [from_browser(bridge, signup(f"u{i}@example.com"), "198.51.100.7") for i in range(5)]

    assert [a.status for a in answers] == [202, 202, 202, 429, 429]
    refused = answers[3]
    assert refused.body["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["access-control-allow-origin"] == SHOP  # the page can read it
    assert '"RateLimited":[1.0]' in capsys.readouterr().out

    # Another address, and signed calls from the same one, are not held back.
    assert from_browser(bridge, signup("v@example.com"), "198.51.100.8").status == 202
    assert signed(bridge, signup("s@example.com"), "198.51.100.7").status == 202

    bridge.drain("signup")
    assert customers(sandbox) == [
        "s@example.com",
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
        "v@example.com",
    ]


def test_the_table_holds_no_address_and_its_items_expire(bridge: InProcessBridge) -> None:
    from_browser(bridge, signup("u@example.com"), "198.51.100.7")

    [item] = rate_limit_items(bridge)

    assert "198.51.100.7" not in json.dumps(item)
    assert item["pk"]["S"].startswith("signup-ip#")
    assert int(item["expires_at"]["N"]) > time.time() + 1


def test_a_failing_store_lets_every_call_through_and_counts_it(
    bridge: InProcessBridge, sandbox: PartneroSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge.call("POST", "/signup", {"email": "warmup@example.com"}, {"origin": SHOP})
    bridge.dynamodb.delete_table(TableName=bridge.resources.refs["RateLimitTable"])
    capsys.readouterr()

    answers = [from_browser(bridge, signup(f"u{i}@example.com"), "198.51.100.9") for i in range(5)]

    assert [a.status for a in answers] == [202] * 5
    out = capsys.readouterr().out
    assert out.count('"RateLimitUnavailable":[1.0]') == 5
    bridge.drain("signup")
    assert len(customers(sandbox)) == 5


def test_zero_turns_the_limit_off(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox
) -> None:
    with bridge_with(monkeypatch, sandbox, SIGNUP_RATE_LIMIT_PER_MINUTE="0") as bridge:
        answers = [
            from_browser(bridge, signup(f"u{i}@example.com"), "198.51.100.7") for i in range(15)
        ]
        assert [a.status for a in answers] == [202] * 15
        assert rate_limit_items(bridge) == []


def test_behind_cloudfront_the_viewer_address_is_limited(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox
) -> None:
    with bridge_with(
        monkeypatch,
        sandbox,
        SIGNUP_RATE_LIMIT_PER_MINUTE="1",
        SIGNUP_TRUSTED_PROXY_HEADER="CloudFront-Viewer-Address",
    ) as bridge:
        if 60 - time.time() % 60 < 3:
            time.sleep(3.5)
        edge = "130.176.0.1"  # every call reaches API Gateway from one CloudFront edge

        def via_cloudfront(viewer: str, forwarded_for: str = "") -> int:
            headers = {"cloudfront-viewer-address": viewer, "x-forwarded-for": forwarded_for}
            return int(from_browser(bridge, signup("a@example.com"), edge, headers).status)

        assert via_cloudfront("198.51.100.1:50000") == 202
        # The same viewer on another port, whatever X-Forwarded-For claims: limited.
        assert via_cloudfront("198.51.100.1:50001", "192.0.2.1") == 429
        assert via_cloudfront("198.51.100.2:50000") == 202


# --- partner budgets ---------------------------------------------------------------------


def process_visible_sign_ups(bridge: InProcessBridge, timeout: float = 20.0) -> None:
    """Feed the sign-up queue to its process function until no message is visible (the
    postponed ones stay hidden on the queue)."""
    queue = "SignupQueue"
    poller = QueuePoller(
        bridge.sqs,
        bridge.queue_url(queue),
        bridge.resources.attributes[(queue, "Arn")],
        bridge.stack.consumer_of(queue).logical_id,
        10,
        bridge.invoke,
        lambda line: None,
    )
    deadline = time.monotonic() + timeout

    def visible() -> int:
        attributes = bridge.sqs.get_queue_attributes(
            QueueUrl=bridge.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    while visible() and time.monotonic() < deadline:
        poller.poll_once()
    assert visible() == 0


def test_sign_ups_over_a_partners_budget_wait_for_the_next_hour_and_then_go_through(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    postponed: list[tuple[str, int]] = []
    real_postpone = DeliveryQueues.postpone

    def record_postpone(queues: DeliveryQueues, receipt_handle: str, seconds: int) -> None:
        postponed.append((receipt_handle, seconds))
        real_postpone(queues, receipt_handle, seconds)

    monkeypatch.setattr(DeliveryQueues, "postpone", record_postpone)
    clock = {"now": time.time()}
    monkeypatch.setattr(signup_process, "time", SimpleNamespace(time=lambda: clock["now"]))

    with bridge_with(
        monkeypatch, sandbox, SIGNUP_PARTNER_BUDGET_PER_HOUR="2", SIGNUP_RATE_LIMIT_PER_MINUTE="0"
    ) as bridge:
        for i in range(4):
            assert (
                from_browser(bridge, signup(f"u{i}@example.com"), f"198.51.100.{i}").status == 202
            )
        # Another partner's sign-ups are not held up by this one's flood.
        assert from_browser(bridge, signup("o@example.com", "acme"), "198.51.100.9").status == 202
        capsys.readouterr()

        process_visible_sign_ups(bridge)

        assert len(customers(sandbox)) == 3  # two of demo-partner's, acme's one
        assert len(postponed) == 2
        until_next_hour = window_of(clock["now"], 3600).end - clock["now"]
        assert all(seconds >= until_next_hour - 1 for _handle, seconds in postponed)
        assert '"PartnerBudgetExceeded":[1.0,1.0]' in capsys.readouterr().out
        assert bridge.messages("SignupDeadLetterQueue") == []

        # The next hour: the postponed sign-ups come back and are processed, once each.
        clock["now"] += until_next_hour + 1
        for handle, _seconds in postponed:
            bridge.sqs.change_message_visibility(
                QueueUrl=bridge.queue_url("SignupQueue"), ReceiptHandle=handle, VisibilityTimeout=0
            )
        bridge.drain("signup")

        assert customers(sandbox) == [
            "o@example.com",
            "u0@example.com",
            "u1@example.com",
            "u2@example.com",
            "u3@example.com",
        ]
        assert bridge.messages("SignupDeadLetterQueue") == []


# --- who claims later sales --------------------------------------------------------------


def test_with_claims_by_signed_only_signed_sign_ups_create_the_referred_customer(
    monkeypatch: pytest.MonkeyPatch, sandbox: PartneroSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with bridge_with(monkeypatch, sandbox, SIGNUP_SALES_CLAIMED_BY="signed") as bridge:
        # The browser's answer is unchanged.
        unsigned = from_browser(bridge, signup("jane@example.com"), "198.51.100.7")
        assert (unsigned.status, unsigned.body) == (202, {"status": "accepted"})
        capsys.readouterr()
        bridge.drain("signup")
        assert sandbox.requests() == []
        out = capsys.readouterr().out
        assert '"NotReferred":[1.0]' in out
        assert '"reason":"unsigned_signup"' in out.replace(" ", "")

        # The shop's backend then signs the same sign-up: not a duplicate, it is sent.
        assert signed(bridge, signup("jane@example.com")).status == 202
        bridge.drain("signup")
        assert customers(sandbox) == ["jane@example.com"]
        assert bridge.messages("SignupDeadLetterQueue") == []

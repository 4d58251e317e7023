"""``make run``'s local stack, driven over real HTTP as a shop's front-end would."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from partnero_bridge_cli.local.sandbox import Fault, PartneroSandbox
from partnero_bridge_cli.local.stack import (
    DEMO_ECWID_CLIENT_SECRET,
    DEMO_ECWID_STORE,
    DEMO_SIGNUP_SECRET,
)
from tests.e2e.conftest import PARTNERO_KEY, SHOP, SIGNUP_SECRET
from tests.support.ecwid import signed, webhook
from tests.support.inprocess import ROOT
from tests.support.local_stack import RunningStack, wait_for
from tests.support.signup import signed_signup

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def customer_posts(partnero: PartneroSandbox) -> list[object]:
    return [r for r in partnero.requests() if (r.method, r.path) == ("POST", "/v1/customers")]


def test_signup_reaches_partnero_once(stack: RunningStack, partnero: PartneroSandbox) -> None:
    body = {"email": "Ada@Example.com", "name": "Ada", "partner_key": "demo-partner"}
    answer = stack.http.post("/signup", json=body, headers={"origin": SHOP})
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted"}
    assert answer.headers["access-control-allow-origin"] == SHOP

    [request] = wait_for(lambda: customer_posts(partnero), 20, "the Partnero call")
    assert request.headers["authorization"] == f"Bearer {PARTNERO_KEY}"
    assert request.body == {
        "partner": {"key": "demo-partner"},
        "key": "ada@example.com",
        "email": "Ada@Example.com",
        "name": "Ada",
    }

    again = stack.http.post("/signup", json=body, headers={"origin": SHOP})
    assert again.status_code == 202
    stack.wait_until_drained("signup")
    assert len(customer_posts(partnero)) == 1
    assert PARTNERO_KEY not in stack.output()


def test_partnero_down_lands_in_dlq_with_request_and_error(
    stack: RunningStack, partnero: PartneroSandbox
) -> None:
    partnero.inject_fault(Fault(status=500, count=-1))
    body = {"email": "grace@example.com", "partner_key": "demo-partner"}
    assert stack.http.post("/signup", json=body, headers={"origin": SHOP}).status_code == 202

    [dead] = wait_for(lambda: stack.dead_letters("signup"), 30, "the dead-lettered sign-up")
    envelope = json.loads(dead["Body"])
    assert envelope["payload"]["email"] == "grace@example.com"
    assert envelope["payload"]["partner_key"] == "demo-partner"
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert "500" in attributes["error"]
    assert attributes["receive_count"] == "3"
    assert len(customer_posts(partnero)) == 3
    stack.wait_until_drained("signup")
    assert partnero.customers() == []


@pytest.mark.parametrize(
    ("content", "headers", "status", "error"),
    [
        (b"{oops", {}, 400, "malformed_json"),
        (b'{"name": "no email"}', {}, 422, "invalid_request"),
        (b'{"email": "not-an-email", "partner_key": "demo-partner"}', {}, 422, "invalid_request"),
        (json.dumps({"email": "a@b.co", "name": "x" * 10000}).encode(), {}, 413, "body_too_large"),
        (b'{"email": "a@b.co"}', {"origin": "https://evil.example"}, 403, "origin_not_allowed"),
    ],
)
def test_bad_requests_get_json_errors_and_send_nothing(
    stack: RunningStack,
    partnero: PartneroSandbox,
    content: bytes,
    headers: dict[str, str],
    status: int,
    error: str,
) -> None:
    answer = stack.http.post(
        "/signup",
        content=content,
        headers={"content-type": "application/json", "origin": SHOP, **headers},
    )
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == error
    assert stack.queue_depth("signup") == 0
    assert partnero.requests() == []


def test_who_may_sign_up(stack: RunningStack, partnero: PartneroSandbox) -> None:
    """A server signs; an unsigned call passes only from an allowed browser origin."""
    body = {"email": "who@example.com", "partner_key": "demo-partner"}
    unsigned = stack.http.post("/signup", json=body)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "signature_required")
    forged = stack.http.post("/signup", json=body, headers={"origin": "https://evil.example"})
    assert (forged.status_code, forged.json()["error"]) == (403, "origin_not_allowed")
    assert stack.queue_depth("signup") == 0

    raw, headers = signed_signup(body, SIGNUP_SECRET)
    signed_answer = stack.http.post("/signup", content=raw, headers=headers)
    assert (signed_answer.status_code, signed_answer.json()) == (202, {"status": "accepted"})
    [request] = wait_for(lambda: customer_posts(partnero), 20, "the Partnero call")
    assert request.body["key"] == "who@example.com"

    wrong, headers = signed_signup(body, "not-the-secret")
    refused = stack.http.post("/signup", content=wrong, headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_signature")
    stack.wait_until_drained("signup")
    assert len(customer_posts(partnero)) == 1


def test_cors_preflight(stack: RunningStack) -> None:
    allowed = stack.http.options(
        "/signup",
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    refused = stack.http.options(
        "/signup",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_unknown_route_is_api_gateways_404(stack: RunningStack) -> None:
    answer = stack.http.post("/nope", json={})
    assert (answer.status_code, answer.json()) == (404, {"message": "Not Found"})


def test_built_in_fakes_and_clean_stop() -> None:
    """Without PARTNERO_API_URL and ECWID_API_URL, `make run` brings its own fakes."""
    stack = RunningStack({})
    try:
        assert "Partnero sandbox:" in stack.output()
        assert "Fake Ecwid API:" in stack.output()
        assert "export AWS_ENDPOINT_URL=" in stack.output()
        # Signed with the demo secret the stack seeds when SIGNUP_HMAC_SECRET is not set.
        raw, headers = signed_signup(
            {"email": "lin@example.com", "partner_key": "demo-partner"}, DEMO_SIGNUP_SECRET
        )
        answer = stack.http.post("/signup", content=raw, headers=headers)
        assert answer.status_code == 202

        def customers() -> list[object]:
            state = httpx.get(f"{stack.sandbox_url}/_sandbox/state").json()
            return list(state["customers"])

        [customer] = wait_for(customers, 20, "the sandbox customer")
        assert customer["key"] == "lin@example.com"

        # The demo store: put an order in the fake Ecwid, send its signed webhook.
        paid = json.loads((ROOT / "events/ecwid/orders/paid-with-partner.json").read_text())
        httpx.put(
            f"{stack.ecwid_url}/_ecwid/stores/{DEMO_ECWID_STORE}/orders/{paid['id']}", json=paid
        ).raise_for_status()
        raw, headers = signed(
            webhook("order.created", int(DEMO_ECWID_STORE), paid), DEMO_ECWID_CLIENT_SECRET
        )
        assert stack.http.post("/webhooks/ecwid", content=raw, headers=headers).status_code == 200

        def transactions() -> list[object]:
            return list(httpx.get(f"{stack.sandbox_url}/_sandbox/state").json()["transactions"])

        [transaction] = wait_for(transactions, 20, "the sandbox transaction")
        assert transaction["key"] == f"ecwid_{DEMO_ECWID_STORE}_{paid['id']}"

        # A sample whose eventCreated is long past: `send` stamps it with the send time.
        sent = stack.cli("send", "ecwid/order.created")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "-> 200 in" in sent.stdout
        assert '"status":"accepted"' in sent.stdout
    finally:
        code = stack.stop()
    assert code == 0
    for port in (stack.port, stack.aws_port, stack.sandbox_port, stack.ecwid_port):
        assert stack.port_is_free(port)
    with pytest.raises(ProcessLookupError):  # no worker outlived the stack
        os.killpg(stack.process.pid, 0)

"""`partnero-bridge send <file>`: a file of one's own is sent as it is, even one named like a
sample, and no stock order replaces the order one put into the fake Ecwid; the delivery id
`send` waits for is the one ingest gives."""

from __future__ import annotations

import copy
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from partnero_bridge.signup.mapping import delivery_id, to_delivery
from partnero_bridge.signup.models import SignupRequest
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.stack import DEMO_ECWID_STORE, DEMO_ECWID_TOKEN
from partnero_bridge_cli.send import (
    Sample,
    delivery_id_of,
    find_sample,
    samples_text,
    send,
    signed_request,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def own_signup() -> dict[str, Any]:
    return {"email": "Own.File@example.com", "partner_key": "my-partner"}


def test_a_file_named_like_a_sample_is_sent_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `signup` is the short name of events/signup/referred.json; ./signup.json is one's own.
    (tmp_path / "signup.json").write_text(json.dumps(own_signup()))
    monkeypatch.chdir(tmp_path)

    for name in ("signup.json", str(tmp_path / "signup.json")):
        sample = find_sample(ROOT, name)
        assert sample.body == own_signup()
        assert sample.source == "signup"
    # Without a file of that name, the short name is still the sample.
    assert find_sample(ROOT, "signup").path == EVENTS / "signup" / "referred.json"


def test_an_own_ecwid_webhook_leaves_the_order_one_put_into_the_fake_ecwid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock = json.loads((EVENTS / "ecwid" / "orders" / "paid-with-partner.json").read_text())
    mine = copy.deepcopy(stock)
    mine.update(total=10.5, subtotal=10.5)
    webhook = json.loads((EVENTS / "ecwid" / "webhooks" / "order-created.json").read_text())
    (tmp_path / "my-webhook.json").write_text(json.dumps(webhook))

    with FakeEcwid(stores={DEMO_ECWID_STORE: DEMO_ECWID_TOKEN}) as ecwid:
        monkeypatch.setenv("BRIDGE_ECWID_ADMIN", ecwid.root_url)
        ecwid.put_order(DEMO_ECWID_STORE, mine)
        out = io.StringIO()
        # Posted to the fake Ecwid itself: no bridge is needed to see what was put before.
        send(ROOT, str(tmp_path / "my-webhook.json"), ecwid.root_url, False, False, out, None)
        assert total(ecwid, stock["id"]) == Decimal("10.5")
        assert "your own webhook" in out.getvalue()

        # The sample itself still brings its stock order.
        send(ROOT, "ecwid/order.created", ecwid.root_url, False, False, io.StringIO(), None)
        assert total(ecwid, stock["id"]) == Decimal("71.39")


def total(ecwid: FakeEcwid, order_id: str) -> Decimal:
    order = ecwid.order(DEMO_ECWID_STORE, order_id)
    assert order is not None
    return Decimal(str(order["total"]))


@pytest.mark.parametrize("fresh", [False, True], ids=["as-is", "fresh"])
def test_the_delivery_id_waited_for_is_the_one_ingest_gives(fresh: bool) -> None:
    stripe = find_sample(ROOT, "stripe/invoice.paid")
    raw, _ = signed_request(stripe, fresh)
    assert delivery_id_of("stripe", raw) == f"stripe-{json.loads(raw)['id']}"
    assert (delivery_id_of("stripe", raw) == f"stripe-{stripe.body['id']}") is not fresh

    ecwid = find_sample(ROOT, "ecwid/order.created")
    raw, _ = signed_request(ecwid, fresh)
    assert delivery_id_of("ecwid", raw) == f"ecwid-{json.loads(raw)['eventId']}"

    signup = find_sample(ROOT, "signup")
    raw, _ = signed_request(signup, fresh)
    queued = to_delivery(SignupRequest.model_validate_json(raw), None, trusted=True)
    assert queued is not None
    assert delivery_id_of("signup", raw) == delivery_id(queued)


def test_each_send_of_the_sign_up_sample_is_a_new_customer() -> None:
    sample = find_sample(ROOT, "signup")
    sent = [json.loads(signed_request(sample, fresh=False)[0]) for _ in range(3)]

    addresses = {body["email"] for body in sent}
    assert len(addresses) == 3
    for address in addresses:
        local, _, domain = address.partition("@")
        assert local.startswith("Jane.Doe+")
        assert domain == "Example.com"
    assert len({delivery_id_of("signup", json.dumps(body).encode()) for body in sent}) == 3
    # A file of one's own is a person of one's own: sent as written, every time.
    own = Sample("signup", Path("mine.json"), own_signup())
    assert json.loads(signed_request(own, fresh=False)[0])["email"] == "Own.File@example.com"
    # Not an address: left for ingest to refuse.
    invalid = find_sample(ROOT, "signup/invalid-email")
    assert json.loads(signed_request(invalid, fresh=False)[0])["email"] == "not-an-email"


def test_a_sign_up_nobody_referred_has_no_delivery_to_wait_for() -> None:
    raw, _ = signed_request(find_sample(ROOT, "signup/not-referred"), fresh=False)
    assert delivery_id_of("signup", raw) is None
    assert delivery_id_of("signup", b'{"email": "not an address"}') is None


def test_send_without_a_name_says_how_to_send_and_lists_every_sample() -> None:
    text = samples_text(ROOT)
    assert text.startswith("partnero-bridge send NAME signs and posts one of these samples")
    assert "  signup                             = signup/referred" in text
    assert "  stripe/charge.refunded             = stripe/charge.refunded.partial" in text
    assert "\n  stripe/refund.created" in text
    assert "api-post-signup" not in text  # an API Gateway event, not a body to send

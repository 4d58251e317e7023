"""The Stripe fixtures in events/stripe: Event objects as Stripe sends them, mutually consistent.

What is checked, per the Stripe API reference:

* every file is an ``Event`` (``id``, ``object``, ``api_version``, ``created``, ``data.object``,
  ``livemode``, ``pending_webhooks``, ``request``, ``type``) whose ``data.object`` has the type the
  event type names;
* amounts are integers in minor units (never floats), non-negative, null only where the API
  documents it; currencies are lower-case ISO codes; three-decimal amounts end in 0;
* checkout totals add up (``amount_subtotal - discount + shipping + tax = amount_total``) and so do
  invoices (``total = subtotal - discounts + taxes``);
* basil (``2025-03-31.basil``) invoices have no top-level ``subscription``, ``payment_intent``,
  ``charge``, ``paid`` or ``tax`` and use ``parent`` and ``payments`` instead; the ``2024-06-20``
  invoice is the other way round;
* the ids of each story (customer, subscription, invoice, payment intent, charge, refund, dispute)
  agree across files;
* the official ``stripe`` library parses every file, directly and through its signature check.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from partnero_bridge.stripe.events import HANDLED_EVENTS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2] / "events" / "stripe"
FILES = sorted(ROOT.glob("*.json"))
BASIL = "2025-03-31.basil"
OLD = "2024-06-20"
PARTNER = "demo-partner"
EVENT_KEYS = {
    "id",
    "object",
    "api_version",
    "created",
    "data",
    "livemode",
    "pending_webhooks",
    "request",
    "type",
}
# event type prefix -> (object type, id prefixes, stripe-python class)
OBJECT_TYPES: list[tuple[str, str, tuple[str, ...], type]] = [
    ("checkout.session.", "checkout.session", ("cs_test_", "cs_live_"), stripe.checkout.Session),
    ("customer.", "customer", ("cus_",), stripe.Customer),
    ("invoice_payment.", "invoice_payment", ("inpay_",), stripe.InvoicePayment),
    ("invoice.", "invoice", ("in_",), stripe.Invoice),
    ("charge.dispute.", "dispute", ("dp_", "du_"), stripe.Dispute),
    ("charge.refund.", "refund", ("re_", "pyr_"), stripe.Refund),
    ("charge.", "charge", ("ch_", "py_"), stripe.Charge),
    ("payment_intent.", "payment_intent", ("pi_",), stripe.PaymentIntent),
    ("refund.", "refund", ("re_", "pyr_"), stripe.Refund),
    ("product.", "product", ("prod_",), stripe.Product),
]
MONEY_KEYS = {
    "amount",
    "amount_authorized",
    "amount_capturable",
    "amount_captured",
    "amount_discount",
    "amount_due",
    "amount_overpaid",
    "amount_paid",
    "amount_received",
    "amount_refunded",
    "amount_remaining",
    "amount_requested",
    "amount_shipping",
    "amount_subtotal",
    "amount_tax",
    "amount_total",
    "amount_excluding_tax",
    "application_fee_amount",
    "balance",
    "ending_balance",
    "fee",
    "maximum_amount_capturable",
    "net",
    "post_payment_credit_notes_amount",
    "pre_payment_credit_notes_amount",
    "starting_balance",
    "subtotal",
    "subtotal_excluding_tax",
    "tax",
    "taxable_amount",
    "total",
    "total_excluding_tax",
}
# Money fields the API reference documents as nullable.
NULLABLE_MONEY = {
    "amount_subtotal",  # checkout.session (setup mode)
    "amount_total",  # checkout.session (setup mode)
    "amount_paid",  # invoice_payment, until paid
    "application_fee_amount",
    "ending_balance",
    "subtotal_excluding_tax",
    "tax",  # 2024-06-20 invoice
    "taxable_amount",
    "total_excluding_tax",
}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
BASIL_REMOVED_FROM_INVOICE = {
    "subscription",
    "subscription_details",
    "payment_intent",
    "charge",
    "paid",
    "paid_out_of_band",
    "tax",
    "total_tax_amounts",
    "discount",
    "application_fee_amount",
    "transfer_data",
    "quote",
}
EXPECTED_FILES = {
    "customer.created.json",
    "customer.updated.json",
    "invoice_payment.paid.json",
    "checkout.session.completed.subscription.json",
    "invoice.paid.subscription_create.json",
    "invoice.paid.subscription_cycle.json",
    "invoice.paid.subscription_cycle.2.json",
    "invoice.paid.subscription_create.2024-06-20.json",
    "checkout.session.completed.payment.json",
    "charge.succeeded.json",
    "payment_intent.succeeded.json",
    "charge.refunded.partial.json",
    "charge.refunded.full.json",
    "refund.created.json",
    "refund.updated.failed.json",
    "charge.dispute.created.json",
    "charge.dispute.closed.won.json",
    "invoice.payment_succeeded.subscription_create.json",
    "refund.failed.json",
    "charge.refund.updated.failed.2024-06-20.json",
    "charge.dispute.funds_withdrawn.json",
    "charge.dispute.updated.json",
    "charge.dispute.funds_reinstated.json",
    "charge.succeeded.uncaptured.json",
    "charge.captured.partial.json",
    "payment_intent.canceled.json",
    "charge.expired.json",
    "checkout.session.completed.jpy.json",
    "checkout.session.completed.unpaid.json",
    "checkout.session.async_payment_succeeded.json",
    "checkout.session.completed.setup.json",
    "checkout.session.completed.coupon100.json",
    "checkout.session.completed.optout.json",
    "checkout.session.completed.kwd.json",
    "invoice.paid.livemode.json",
    "product.created.json",
}
LIVE_FILES = {"invoice.paid.livemode.json"}
# Files rendered for an endpoint pinned to 2024-06-20 (all others follow basil).
OLD_FILES = {
    "invoice.paid.subscription_create.2024-06-20.json",
    "charge.refund.updated.failed.2024-06-20.json",
}


def no_floats(text: str) -> Any:
    raise AssertionError(f"float in a Stripe fixture: {text} (amounts are integers)")


def load_text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    value = json.loads(load_text(name), parse_float=no_floats)
    assert isinstance(value, dict)
    return value


def obj(name: str) -> dict[str, Any]:
    value = load(name)["data"]["object"]
    assert isinstance(value, dict)
    return value


def object_type_for(event_type: str) -> tuple[str, tuple[str, ...], type]:
    for prefix, object_type, id_prefixes, cls in OBJECT_TYPES:
        if event_type.startswith(prefix):
            return object_type, id_prefixes, cls
    raise AssertionError(f"no object type known for {event_type}")


def walk(value: Any, owner: str = "", path: str = "") -> Iterator[tuple[str, str, str, Any]]:
    """Yield (owner object type, path, key, value) for every key under ``value``."""
    if isinstance(value, dict):
        owner = value.get("object", owner) if isinstance(value.get("object"), str) else owner
        for key, item in value.items():
            yield owner, path, key, item
            yield from walk(item, owner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, owner, f"{path}[{index}]")


def basil_invoice_payment_intents(invoice: dict[str, Any]) -> list[str]:
    return [entry["payment"]["payment_intent"] for entry in invoice["payments"]["data"]]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# ------------------------------------------------------------------------------ every file


def test_every_expected_fixture_exists() -> None:
    assert {path.name for path in FILES} == EXPECTED_FILES


def test_readme_describes_every_fixture() -> None:
    readme = load_text("README.md")
    for name in EXPECTED_FILES:
        assert f"`{name}`" in readme, name
    assert BASIL in readme
    assert OLD in readme


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_event_envelope(path: Path) -> None:
    event = load(path.name)
    assert set(event) >= EVENT_KEYS, EVENT_KEYS - set(event)
    assert event["object"] == "event"
    assert event["id"].startswith("evt_")
    assert event["api_version"] == (OLD if path.name in OLD_FILES else BASIL)
    assert isinstance(event["created"], int)
    assert not isinstance(event["created"], bool)
    assert isinstance(event["pending_webhooks"], int)
    assert event["pending_webhooks"] >= 0
    assert set(event["request"]) == {"id", "idempotency_key"}
    if event["request"]["id"] is not None:
        assert event["request"]["id"].startswith("req_")
    assert isinstance(event["type"], str)
    assert path.name.startswith(event["type"] + "."), "the file is named after its event type"
    assert set(event["data"]) <= {"object", "previous_attributes"}
    live = path.name in LIVE_FILES
    assert event["livemode"] is live
    if event["data"]["object"]["object"] != "refund":  # a Refund has no livemode field
        assert event["data"]["object"]["livemode"] is live


def test_event_ids_are_unique() -> None:
    ids = [load(path.name)["id"] for path in FILES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_object_type_fits_event_type(path: Path) -> None:
    event = load(path.name)
    data = event["data"]["object"]
    object_type, id_prefixes, _ = object_type_for(event["type"])
    assert data["object"] == object_type
    assert data["id"].startswith(id_prefixes)
    assert data["created"] <= event["created"]
    if object_type == "checkout.session":
        assert data["id"].startswith("cs_live_" if data["livemode"] else "cs_test_")


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_amounts_are_minor_unit_integers(path: Path) -> None:
    for owner, where, key, value in walk(load(path.name)):
        if key in MONEY_KEYS:
            if value is None:
                assert key in NULLABLE_MONEY, f"{where}.{key} is null"
                continue
            if isinstance(value, dict):  # e.g. amount_details, not an amount
                continue
            assert isinstance(value, int), f"{where}.{key} = {value!r}"
            assert not isinstance(value, bool), f"{where}.{key} = {value!r}"
            if owner != "balance_transaction":  # a dispute's debit is negative there
                assert value >= 0, f"{where}.{key} = {value}"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_currencies_are_lower_case_iso_codes(path: Path) -> None:
    currencies = set()
    for _, where, key, value in walk(load(path.name)):
        if key == "currency" and value is not None:
            assert isinstance(value, str)
            assert len(value) == 3, f"{where}.{key} = {value!r}"
            assert value.isalpha(), f"{where}.{key} = {value!r}"
            assert value == value.lower(), f"{where}.{key} = {value!r}"
            currencies.add(value)
    assert len(currencies) <= 1, "one currency per story"
    if currencies & THREE_DECIMAL:
        for _, where, key, value in walk(load(path.name)):
            if key in MONEY_KEYS and isinstance(value, int) and not isinstance(value, bool):
                assert value % 10 == 0, f"{where}.{key} = {value}: must end in 0"


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if path.name.startswith("checkout.session.")],
    ids=lambda path: path.stem,
)
def test_checkout_session_totals_add_up(path: Path) -> None:
    session = obj(path.name)
    assert session["status"] == "complete"
    assert session["mode"] in {"payment", "subscription", "setup"}
    assert session["payment_status"] in {"paid", "unpaid", "no_payment_required"}
    assert session["client_reference_id"] is None
    if session["mode"] == "setup":
        assert session["amount_total"] is None
        assert session["amount_subtotal"] is None
        assert session["currency"] is None
        assert session["payment_status"] == "no_payment_required"
        assert session["setup_intent"].startswith("seti_")
        return
    details = session["total_details"]
    expected = (
        session["amount_subtotal"]
        - details["amount_discount"]
        + details["amount_shipping"]
        + details["amount_tax"]
    )
    assert session["amount_total"] == expected
    if session["mode"] == "payment":
        assert session["payment_intent"].startswith("pi_")
        assert session["subscription"] is None
    else:
        assert session["payment_intent"] is None
        assert session["subscription"].startswith("sub_")
        assert session["invoice"].startswith("in_")
    if session["payment_status"] == "no_payment_required":
        assert session["amount_total"] == 0
    assert "@" in session["customer_details"]["email"]


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if path.name.startswith("invoice.")],
    ids=lambda path: path.stem,
)
def test_invoice_totals_add_up(path: Path) -> None:
    event = load(path.name)
    invoice = event["data"]["object"]
    lines = invoice["lines"]["data"]
    assert invoice["subtotal"] == sum(line["amount"] for line in lines)
    discounts = sum(entry["amount"] for entry in invoice["total_discount_amounts"])
    if event["api_version"] == BASIL:
        taxes = sum(entry["amount"] for entry in invoice["total_taxes"])
    else:
        taxes = sum(entry["amount"] for entry in invoice["total_tax_amounts"])
        assert invoice["tax"] == taxes
    assert invoice["total"] == invoice["subtotal"] - discounts + taxes
    assert invoice["total_excluding_tax"] == invoice["total"] - taxes
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == invoice["total"] == invoice["amount_due"]
    assert invoice["amount_remaining"] == 0
    assert invoice["billing_reason"] in {"subscription_create", "subscription_cycle"}
    assert "@" in invoice["customer_email"]


# ------------------------------------------------------------------------------ API versions


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if path.name.startswith("invoice.")],
    ids=lambda path: path.stem,
)
def test_invoice_shape_follows_its_api_version(path: Path) -> None:
    event = load(path.name)
    invoice = event["data"]["object"]
    if event["api_version"] == BASIL:
        assert not BASIL_REMOVED_FROM_INVOICE & set(invoice), BASIL_REMOVED_FROM_INVOICE & set(
            invoice
        )
        parent = invoice["parent"]
        assert parent["type"] == "subscription_details"
        assert parent["subscription_details"]["subscription"].startswith("sub_")
        assert isinstance(parent["subscription_details"]["metadata"], dict)
        assert "total_taxes" in invoice
        payments = invoice["payments"]
        assert payments["object"] == "list"
        for entry in payments["data"]:
            assert entry["object"] == "invoice_payment"
            assert entry["invoice"] == invoice["id"]
            assert entry["payment"]["type"] == "payment_intent"
            assert entry["payment"]["payment_intent"].startswith("pi_")
            assert entry["status"] == "paid"
        assert sum(entry["amount_paid"] for entry in payments["data"]) == invoice["amount_paid"]
        for line in invoice["lines"]["data"]:
            assert "tax_amounts" not in line
            assert "type" not in line
            assert line["parent"]["type"] == "subscription_item_details"
    else:
        assert event["api_version"] == OLD
        assert invoice["subscription"].startswith("sub_")
        assert invoice["payment_intent"].startswith("pi_")
        assert invoice["charge"].startswith("ch_")
        assert invoice["paid"] is True
        assert isinstance(invoice["subscription_details"]["metadata"], dict)
        assert isinstance(invoice["tax"], int)
        assert not {"parent", "payments", "total_taxes", "amount_overpaid"} & set(invoice)


@pytest.mark.parametrize(
    "path",
    [path for path in FILES if obj(path.name)["object"] in {"charge", "payment_intent"}],
    ids=lambda path: path.stem,
)
def test_basil_charges_and_payment_intents_have_no_invoice(path: Path) -> None:
    event = load(path.name)
    assert event["api_version"] == BASIL
    assert "invoice" not in event["data"]["object"]


# ------------------------------------------------------------------------------ stories


def test_subscription_story_ids_agree() -> None:
    customer = obj("customer.created.json")
    session = obj("checkout.session.completed.subscription.json")
    first = obj("invoice.paid.subscription_create.json")
    old = obj("invoice.paid.subscription_create.2024-06-20.json")
    cycles = [
        obj("invoice.paid.subscription_cycle.json"),
        obj("invoice.paid.subscription_cycle.2.json"),
    ]

    assert customer["email"] == "ada@example.com"
    assert customer["metadata"] == {"partnero_customer_key": "ada@example.com"}
    assert session["mode"] == "subscription"
    assert session["payment_status"] == "paid"
    assert session["customer"] == customer["id"]
    assert session["customer_details"]["email"] == customer["email"]
    assert session["metadata"] == {
        "partnero_partner": PARTNER,
        "partnero_customer_key": customer["email"],
    }
    assert (session["amount_subtotal"], session["amount_total"]) == (2000, 2400)
    assert session["total_details"]["amount_tax"] == 400
    assert session["currency"] == "usd"

    subscription = session["subscription"]
    assert session["invoice"] == first["id"] == old["id"]
    assert first["billing_reason"] == old["billing_reason"] == "subscription_create"
    for invoice in (first, old):
        assert invoice["customer"] == customer["id"]
        assert invoice["customer_email"] == customer["email"]
        assert invoice["amount_paid"] == session["amount_total"]
        assert invoice["subtotal"] == session["amount_subtotal"]
        assert invoice["total"] - invoice["total_excluding_tax"] == 400
        assert invoice["currency"] == session["currency"]
    assert first["parent"]["subscription_details"]["subscription"] == subscription
    assert old["subscription"] == subscription
    assert first["parent"]["subscription_details"]["metadata"] == session["metadata"]
    assert old["subscription_details"]["metadata"] == session["metadata"]
    assert basil_invoice_payment_intents(first) == [old["payment_intent"]]

    invoice_ids = {first["id"]}
    payment_intents = set(basil_invoice_payment_intents(first))
    previous = first
    for cycle in cycles:
        assert cycle["billing_reason"] == "subscription_cycle"
        assert cycle["customer"] == customer["id"]
        assert cycle["parent"]["subscription_details"]["subscription"] == subscription
        assert cycle["amount_paid"] == 2400
        assert cycle["created"] > previous["created"]
        assert cycle["period_start"] == previous["lines"]["data"][0]["period"]["start"]
        invoice_ids.add(cycle["id"])
        payment_intents.update(basil_invoice_payment_intents(cycle))
        previous = cycle
    assert len(invoice_ids) == 3
    assert len(payment_intents) == 3


def test_one_off_story_ids_agree() -> None:
    session = obj("checkout.session.completed.payment.json")
    intent = obj("payment_intent.succeeded.json")
    charge = obj("charge.succeeded.json")

    assert session["mode"] == "payment"
    assert session["payment_status"] == "paid"
    assert session["customer"] is None
    assert (session["amount_total"], session["currency"]) == (1999, "usd")
    assert session["total_details"]["amount_tax"] == 0
    assert session["metadata"] == {"partnero_partner": PARTNER}
    email = session["customer_details"]["email"]
    assert email == "grace@example.com"

    assert session["payment_intent"] == intent["id"] == charge["payment_intent"]
    assert intent["latest_charge"] == charge["id"]
    assert intent["status"] == charge["status"] == "succeeded"
    assert intent["amount"] == intent["amount_received"] == charge["amount"] == 1999
    assert intent["currency"] == charge["currency"] == "usd"
    assert intent["customer"] is None
    assert charge["customer"] is None
    assert intent["metadata"] == charge["metadata"] == {"partnero_partner": PARTNER}
    assert charge["billing_details"]["email"] == charge["receipt_email"] == email
    assert intent["receipt_email"] == email
    assert charge["amount_refunded"] == 0
    assert charge["refunded"] is False


def test_refunds_belong_to_the_one_off_charge() -> None:
    charge = obj("charge.succeeded.json")
    partial = obj("charge.refunded.partial.json")
    full = obj("charge.refunded.full.json")
    created = obj("refund.created.json")
    failed_event = load("refund.updated.failed.json")
    failed = failed_event["data"]["object"]

    for refunded in (partial, full):
        assert refunded["id"] == charge["id"]
        assert refunded["payment_intent"] == charge["payment_intent"]
        assert refunded["amount"] == charge["amount"]
        assert 0 < refunded["amount_refunded"] <= refunded["amount"]
    assert (partial["amount_refunded"], partial["refunded"]) == (500, False)
    assert (full["amount_refunded"], full["refunded"]) == (charge["amount"], True)
    assert (
        load("charge.refunded.partial.json")["created"]
        < load("charge.refunded.full.json")["created"]
    )

    for refund in (created, failed):
        assert refund["charge"] == charge["id"]
        assert refund["payment_intent"] == charge["payment_intent"]
        assert refund["currency"] == charge["currency"]
    assert created["id"] != failed["id"]
    assert (created["amount"], created["status"]) == (partial["amount_refunded"], "succeeded")
    assert failed["status"] == "failed"
    assert failed["failure_reason"]
    assert failed_event["data"]["previous_attributes"] == {"status": "pending"}
    assert created["amount"] + failed["amount"] <= charge["amount"]


def test_dispute_belongs_to_the_one_off_charge() -> None:
    charge = obj("charge.succeeded.json")
    opened = obj("charge.dispute.created.json")
    closed = obj("charge.dispute.closed.won.json")
    assert opened["id"] == closed["id"]
    for dispute in (opened, closed):
        assert dispute["charge"] == charge["id"]
        assert dispute["payment_intent"] == charge["payment_intent"]
        assert dispute["amount"] == charge["amount"] == 1999
        assert dispute["currency"] == charge["currency"]
    assert opened["status"] == "needs_response"
    assert closed["status"] == "won"


def test_delayed_payment_completes_later_on_the_same_session() -> None:
    completed = load("checkout.session.completed.unpaid.json")
    succeeded = load("checkout.session.async_payment_succeeded.json")
    before, after = completed["data"]["object"], succeeded["data"]["object"]
    assert before["id"] == after["id"]
    assert before["payment_intent"] == after["payment_intent"]
    assert before["amount_total"] == after["amount_total"]
    assert (before["payment_status"], after["payment_status"]) == ("unpaid", "paid")
    assert completed["created"] < succeeded["created"]
    assert before["payment_method_types"] != ["card"]  # a delayed-notification method


def test_edge_case_sessions() -> None:
    jpy = obj("checkout.session.completed.jpy.json")
    assert (jpy["amount_total"], jpy["currency"], jpy["payment_status"]) == (5000, "jpy", "paid")
    kwd = obj("checkout.session.completed.kwd.json")
    assert (kwd["currency"], kwd["payment_status"]) == ("kwd", "paid")
    assert kwd["amount_total"] == 12340
    coupon = obj("checkout.session.completed.coupon100.json")
    assert coupon["amount_total"] == 0
    assert coupon["total_details"]["amount_discount"] == coupon["amount_subtotal"]
    assert coupon["payment_status"] == "no_payment_required"
    assert coupon["discounts"]
    optout = obj("checkout.session.completed.optout.json")
    assert optout["metadata"] == {"partnero": "false"}
    assert optout["payment_status"] == "paid"
    setup = obj("checkout.session.completed.setup.json")
    assert setup["mode"] == "setup"
    assert setup["customer"] == obj("customer.created.json")["id"]
    for name in EXPECTED_FILES - {"checkout.session.completed.optout.json"}:
        if name.startswith("checkout.session."):
            assert obj(name)["metadata"]["partnero_partner"] == PARTNER, name


def test_unhandled_and_live_events() -> None:
    product = load("product.created.json")
    assert product["type"] == "product.created"
    lines = obj("invoice.paid.subscription_create.json")["lines"]["data"]
    assert lines[0]["pricing"]["price_details"]["product"] == product["data"]["object"]["id"]
    live = load("invoice.paid.livemode.json")
    assert live["livemode"] is True
    assert live["data"]["object"]["livemode"] is True
    for entry in live["data"]["object"]["payments"]["data"]:
        assert entry["livemode"] is True
    assert live["data"]["object"]["id"] not in {
        obj(name)["id"] for name in EXPECTED_FILES - LIVE_FILES if name.startswith("invoice.")
    }


def test_every_subscribed_event_type_has_a_sample() -> None:
    sampled = {load(path.name)["type"] for path in FILES}
    missing = sorted(HANDLED_EVENTS - sampled)
    assert not missing, f"event types the bridge subscribes to without a sample: {missing}"


def test_invoice_payment_succeeded_is_the_first_invoice_again() -> None:
    paid = load("invoice.paid.subscription_create.json")
    succeeded = load("invoice.payment_succeeded.subscription_create.json")
    assert succeeded["type"] == "invoice.payment_succeeded"
    assert succeeded["id"] != paid["id"]
    assert succeeded["data"] == paid["data"]  # the same invoice, sent twice: count it once


def test_failed_refund_events_are_the_same_refund() -> None:
    updated = load("refund.updated.failed.json")
    failed = load("refund.failed.json")
    old = load("charge.refund.updated.failed.2024-06-20.json")
    refund = updated["data"]["object"]
    assert failed["data"] == {"object": refund}
    assert old["data"] == updated["data"]
    assert (failed["type"], old["type"]) == ("refund.failed", "charge.refund.updated")
    assert old["api_version"] == OLD
    assert len({updated["id"], failed["id"], old["id"]}) == 3
    assert refund["charge"] == obj("charge.succeeded.json")["id"]


def test_dispute_events_follow_the_one_off_dispute() -> None:
    opened = load("charge.dispute.created.json")
    withdrawn = load("charge.dispute.funds_withdrawn.json")
    updated = load("charge.dispute.updated.json")
    won = load("charge.dispute.closed.won.json")
    reinstated = load("charge.dispute.funds_reinstated.json")
    assert withdrawn["data"] == opened["data"]
    assert reinstated["data"] == won["data"]
    review = updated["data"]["object"]
    assert review["id"] == opened["data"]["object"]["id"]
    assert review["status"] == "under_review"
    assert review["evidence_details"]["has_evidence"] is True
    assert updated["data"]["previous_attributes"]["status"] == "needs_response"
    assert review["balance_transactions"] == opened["data"]["object"]["balance_transactions"]
    order = [opened, withdrawn, updated, won, reinstated]
    assert [e["created"] for e in order] == sorted(e["created"] for e in order)
    assert len({e["id"] for e in order}) == len(order)


def test_authorise_then_capture_story() -> None:
    authorised = obj("charge.succeeded.uncaptured.json")
    captured = obj("charge.captured.partial.json")
    canceled = obj("payment_intent.canceled.json")
    expired = obj("charge.expired.json")

    assert authorised["id"] == captured["id"]
    assert authorised["captured"] is False
    assert authorised["paid"] is True  # authorised for later capture
    assert (authorised["amount"], authorised["amount_captured"]) == (5000, 0)
    assert authorised["balance_transaction"] is None

    assert captured["captured"] is True
    assert captured["amount_captured"] < captured["amount"]
    # Stripe refunds the uncaptured rest automatically.
    assert captured["amount_refunded"] == captured["amount"] - captured["amount_captured"]
    assert captured["refunded"] is False

    assert canceled["status"] == "canceled"
    assert canceled["capture_method"] == "manual"
    assert canceled["amount_received"] == 0
    assert canceled["cancellation_reason"] == "requested_by_customer"

    assert expired["captured"] is False
    assert (expired["amount_refunded"], expired["refunded"]) == (expired["amount"], True)

    intents = {authorised["payment_intent"], canceled["id"], expired["payment_intent"]}
    assert len(intents) == 3
    for charge in (authorised, captured, expired):
        assert charge["metadata"]["partnero_partner"] == PARTNER
        assert charge["customer"] is None
        assert charge["billing_details"]["email"] == "hedy@example.com"
    assert canceled["metadata"]["partnero_partner"] == PARTNER


# ------------------------------------------------------------------------------ stripe-python


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_stripe_library_parses_the_fixture(path: Path) -> None:
    values = json.loads(load_text(path.name))
    event = stripe.Event.construct_from(values, "sk_test_x")
    assert isinstance(event, stripe.Event)
    assert event.id == values["id"]
    assert event.type == values["type"]
    _, _, cls = object_type_for(values["type"])
    data = event.data.object
    assert isinstance(data, cls)
    assert data.id == values["data"]["object"]["id"]
    if isinstance(data, stripe.Invoice) and values["api_version"] == BASIL:
        assert data.parent is not None
        assert data.parent.subscription_details is not None
        subscription = data.parent.subscription_details.subscription
        assert isinstance(subscription, str)
        assert subscription.startswith("sub_")
        assert data.payments is not None
        payment_intent = data.payments.data[0].payment.payment_intent
        assert isinstance(payment_intent, str)
        assert payment_intent.startswith("pi_")


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_stripe_signature_check_accepts_the_raw_fixture(path: Path) -> None:
    secret = "whsec_fixture_test_secret"
    payload = (ROOT / path.name).read_bytes()
    header = sign(payload, secret, int(time.time()))
    event = stripe.Webhook.construct_event(payload, header, secret)
    assert event.id == json.loads(payload)["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload, sign(payload, "whsec_other", int(time.time())), secret
        )

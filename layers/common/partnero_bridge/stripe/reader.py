"""Which payment a Stripe event concerns, and that payment's state as Stripe holds it now.

The event body only says what to read (its ids); every fact comes from the Stripe API in
the pinned version (``stripe.client.STRIPE_API_VERSION``), so accounts on any API version
look the same here and events may arrive late, twice, out of order or stale.

Reads per payment, on the usual path (at most two GETs for an invoice):

- invoice: ``GET /v1/invoices/{id}?expand[]=customer&expand[]=payments``, then each
  PaymentIntent that paid it with its charge (``GET /v1/payment_intents/{id}?expand[]=
  latest_charge``; a payment by a bare charge: ``GET /v1/charges/{id}``); its refunds
  (``GET /v1/refunds?payment_intent=``) only when the charge reports money refunded, its
  disputes (``GET /v1/disputes?payment_intent=``) only when it is disputed;
- payment intent: ``GET /v1/payment_intents/{id}?expand[]=latest_charge&expand[]=customer``,
  the checkout session that made it (``GET /v1/checkout/sessions?payment_intent=``, for its
  tax and referral), then refunds and disputes as above;
- a charge without a payment intent: ``GET /v1/charges/{id}?expand[]=customer``.

Which payment: an invoice's own id; a payment intent's invoice when one of the invoice's
payments names it (``GET /v1/invoice_payments?payment[type]=payment_intent&
payment[payment_intent]=``), else the payment intent; a charge's payment intent, else the
charge. A checkout session in payment mode names its invoice, else its payment intent; a
subscription checkout is no payment of its own (its invoices are): only its referral is
learned, as from every checkout, paid or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from partnero_bridge.ledger import keys
from partnero_bridge.stripe.attribution import Attribution, attribution_from
from partnero_bridge.stripe.client import StripeClient
from partnero_bridge.stripe.fields import as_int, as_mapping, stripe_id
from partnero_bridge.stripe.payment import (
    Dispute,
    PaymentState,
    PaymentStatus,
    Refund,
    charge_status,
    disputes_of,
    invoice_payments_split,
    invoice_status,
    invoice_tax,
    payment_intent_status,
    refunds_of,
)

# A payment's Stripe object type (the ``object`` every Stripe object names itself by).
PaymentObject = Literal["invoice", "payment_intent", "charge"]
# How a payment's ledger key abbreviates it (``keys.stripe_payment``).
_LEDGER_PREFIX: dict[PaymentObject, keys.StripeObject] = {
    "invoice": "invoice",
    "payment_intent": "pi",
    "charge": "ch",
}


@dataclass(frozen=True)
class PaymentRef:
    """One payment: what its ledger item and its Partnero transaction are keyed by."""

    object_type: PaymentObject
    id: str
    # The checkout session already read on the way here (saves listing it again).
    session: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def ledger_key(self) -> str:
        return keys.stripe_payment(_LEDGER_PREFIX[self.object_type], self.id)

    @property
    def transaction_key(self) -> str:
        return f"stripe_{self.id}"


@dataclass(frozen=True)
class NoPayment:
    """The event concerns no payment (a setup session, a trial checkout), and why."""

    reason: str
    # A checkout session read on the way: its referral is still worth learning.
    session: Mapping[str, Any] | None = None


def _released(charge: Mapping[str, Any]) -> int:
    """The uncaptured rest of a partially captured charge, which Stripe refunds.

    Stripe's capture reference (charges and PaymentIntents): "Any additional amount will
    be automatically refunded", so the rest appears among the charge's refunds and in its
    ``amount_refunded``. Counting ``captured + released`` against those refunds keeps
    exactly the captured share (1500 captured of 1999 keeps 15.00); counting ``captured``
    alone would take the release off a second time.
    """
    amount, captured = as_int(charge.get("amount")), as_int(charge.get("amount_captured"))
    if not charge.get("captured") or captured >= amount:
        return 0
    return min(amount - captured, as_int(charge.get("amount_refunded")))


@dataclass
class _Reversals:
    refunds: tuple[Refund, ...] = ()
    charge_refunded: int = 0
    disputes: tuple[Dispute, ...] = ()

    def add_charge(self, client: StripeClient, charge_id: str) -> None:
        """A bare charge's refunds and disputes (read only when it reports any)."""
        charge = client.retrieve("charges", charge_id)
        if as_int(charge.get("amount_refunded")) > 0:
            self.charge_refunded += as_int(charge.get("amount_refunded"))
            self.refunds += refunds_of(client.list_all("refunds", charge=charge_id))
        if charge.get("disputed"):
            self.disputes += disputes_of(client.list_all("disputes", charge=charge_id))


class StripeReader:
    def __init__(
        self, client: StripeClient, invoice_of_intent: Callable[[str], str | None] | None = None
    ) -> None:
        self._client = client
        # The ledger's pointer from a payment intent to its invoice, when already known.
        self._known_invoice = invoice_of_intent or (lambda _intent: None)

    # -- which payment -------------------------------------------------------------------
    def payment_of(self, event: Mapping[str, Any]) -> PaymentRef | NoPayment:
        """The payment the event concerns, from its ids (and the API when they are not enough)."""
        event_type = str(event.get("type") or "")
        obj = as_mapping(as_mapping(event.get("data")).get("object"))
        object_type = obj.get("object")
        if object_type == "checkout.session":
            return self._payment_of_session(stripe_id(obj.get("id")) or "")
        if object_type == "invoice":
            return PaymentRef("invoice", stripe_id(obj.get("id")) or "")
        if object_type == "invoice_payment":
            return PaymentRef("invoice", stripe_id(obj.get("invoice")) or "")
        if object_type == "payment_intent":
            return self._payment_of_intent(stripe_id(obj.get("id")) or "")
        if object_type in ("refund", "dispute"):
            intent = stripe_id(obj.get("payment_intent"))
            if intent:
                return self._payment_of_intent(intent)
            return self._payment_of_charge(stripe_id(obj.get("charge")) or "")
        if object_type == "charge":
            intent = stripe_id(obj.get("payment_intent"))
            if intent:
                return self._payment_of_intent(intent)
            return self._payment_of_charge(stripe_id(obj.get("id")) or "")
        return NoPayment(f"{event_type} names no payment")

    def _payment_of_session(self, session_id: str) -> PaymentRef | NoPayment:
        session = self._client.retrieve("checkout/sessions", session_id)
        if session.get("mode") == "setup":
            return NoPayment("a setup session takes no payment", session)
        if session.get("mode") == "subscription":
            # A subscription's payments are its invoices, each decided by its own
            # invoice.* events; the checkout (a free trial's may be the only one) teaches
            # who referred the customer.
            return NoPayment("a subscription checkout: its invoices are the payments", session)
        invoice = stripe_id(session.get("invoice"))
        if invoice:
            return PaymentRef("invoice", invoice)
        intent = stripe_id(session.get("payment_intent"))
        if intent:
            found = self._payment_of_intent(intent)
            return (
                replace(found, session=session) if found.object_type == "payment_intent" else found
            )
        return NoPayment("the checkout made no payment", session)

    def _payment_of_intent(self, intent: str) -> PaymentRef:
        known = self._known_invoice(intent)
        if known:
            return PaymentRef("invoice", known)
        payments = self._client.list_all(
            "invoice_payments",
            {"payment[type]": "payment_intent", "payment[payment_intent]": intent},
        )
        invoices = {stripe_id(p.get("invoice")) for p in payments} - {None}
        if len(invoices) == 1:
            return PaymentRef("invoice", str(invoices.pop()))
        return PaymentRef("payment_intent", intent)

    def _payment_of_charge(self, charge_id: str) -> PaymentRef:
        charge = self._client.retrieve("charges", charge_id)
        intent = stripe_id(charge.get("payment_intent"))
        return self._payment_of_intent(intent) if intent else PaymentRef("charge", charge_id)

    # -- its state -----------------------------------------------------------------------
    def payment_state(self, ref: PaymentRef) -> PaymentState:
        """The payment as Stripe holds it now (see the module docstring for the reads)."""
        if ref.object_type == "invoice":
            return self._invoice_state(ref)
        if ref.object_type == "payment_intent":
            return self._intent_state(ref)
        return self._charge_state(ref)

    def _invoice_state(self, ref: PaymentRef) -> PaymentState:
        invoice = self._client.retrieve("invoices", ref.id, expand=("customer", "payments"))
        payments = as_mapping(invoice.get("payments")).get("data") or []
        if as_mapping(invoice.get("payments")).get("has_more"):
            payments = self._client.list_all("invoice_payments", invoice=ref.id)
        charged, out_of_band = invoice_payments_split(invoice, payments)
        intents, reversals = self._invoice_reversals(payments)
        paid_by = tuple(str(stripe_id(i.get("id"))) for i in intents if stripe_id(i.get("id")))
        return PaymentState(
            transaction_key=ref.transaction_key,
            currency=str(invoice.get("currency") or ""),
            status=invoice_status(str(invoice.get("status") or "")),
            total=as_int(invoice.get("total")),
            charged=charged,
            tax=invoice_tax(invoice),
            out_of_band=out_of_band,
            created=as_int(invoice.get("created")) or None,
            intents=paid_by,
            refunds=reversals.refunds,
            charge_refunded=reversals.charge_refunded,
            disputes=reversals.disputes,
            attribution=_invoice_attribution(invoice),
        )

    def _invoice_reversals(
        self, payments: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], _Reversals]:
        """The PaymentIntents that paid the invoice (each with its latest charge), and the
        refunds and disputes of every paid payment (bare charges' too)."""
        intents = [
            self._client.retrieve("payment_intents", str(intent), expand=("latest_charge",))
            for p in payments
            if p.get("status") == "paid"
            and (intent := stripe_id(as_mapping(p.get("payment")).get("payment_intent")))
        ]
        reversals = self._reversals([i for i in intents if i])
        for payment in payments:
            # Payments made by a bare Charge (no PaymentIntent), as older invoices were.
            source = as_mapping(payment.get("payment"))
            charge_id = stripe_id(source.get("charge"))
            if payment.get("status") == "paid" and source.get("type") == "charge" and charge_id:
                reversals.add_charge(self._client, charge_id)
        return intents, reversals

    def _intent_state(self, ref: PaymentRef) -> PaymentState:
        intent = self._client.retrieve(
            "payment_intents", ref.id, expand=("latest_charge", "customer")
        )
        session = ref.session
        if session is None:
            sessions = self._client.list_all("checkout/sessions", payment_intent=ref.id)
            session = sessions[0] if sessions else {}
        reversals = self._reversals([intent])
        charge = as_mapping(intent.get("latest_charge"))
        status = payment_intent_status(str(intent.get("status") or ""))
        return PaymentState(
            transaction_key=ref.transaction_key,
            currency=str(intent.get("currency") or ""),
            status=status,
            total=as_int(intent.get("amount")),
            # A partial capture's released rest is among the refunds (see _released).
            charged=as_int(intent.get("amount_received")) + _released(charge)
            if status is PaymentStatus.PAID
            else 0,
            tax=as_int(as_mapping(session.get("total_details")).get("amount_tax")),
            created=as_int(intent.get("created")) or None,
            refunds=reversals.refunds,
            charge_refunded=reversals.charge_refunded,
            disputes=reversals.disputes,
            attribution=_intent_attribution(intent, session, charge),
        )

    def _charge_state(self, ref: PaymentRef) -> PaymentState:
        charge = self._client.retrieve("charges", ref.id, expand=("customer",))
        refunds: tuple[Refund, ...] = ()
        disputes: tuple[Dispute, ...] = ()
        if as_int(charge.get("amount_refunded")) > 0:
            refunds = refunds_of(self._client.list_all("refunds", charge=ref.id))
        if charge.get("disputed"):
            disputes = disputes_of(self._client.list_all("disputes", charge=ref.id))
        customer = as_mapping(charge.get("customer"))
        billing = as_mapping(charge.get("billing_details"))
        status = charge_status(charge)
        return PaymentState(
            transaction_key=ref.transaction_key,
            currency=str(charge.get("currency") or ""),
            status=status,
            total=as_int(charge.get("amount")),
            # A partial capture's released rest is among the refunds (see _released).
            charged=as_int(charge.get("amount_captured")) + _released(charge)
            if status is PaymentStatus.PAID
            else 0,
            created=as_int(charge.get("created")) or None,
            refunds=refunds,
            charge_refunded=as_int(charge.get("amount_refunded")),
            disputes=disputes,
            attribution=attribution_from(
                [as_mapping(charge.get("metadata")), as_mapping(customer.get("metadata"))],
                stripe_customer=charge.get("customer"),
                email=billing.get("email") or charge.get("receipt_email") or customer.get("email"),
                name=billing.get("name") or customer.get("name"),
            ),
        )

    def _reversals(self, intents: list[Mapping[str, Any]]) -> _Reversals:
        """Refunds and disputes of the payment intents' charges, read only when there are any.

        A charge reports the money refunded (``amount_refunded``, which follows its refunds'
        statuses) and whether it is ``disputed``; the lists are read only then.
        """
        found = _Reversals()
        for intent in intents:
            intent_id = stripe_id(intent.get("id"))
            charge = as_mapping(intent.get("latest_charge"))
            if not charge and stripe_id(intent.get("latest_charge")):
                charge = self._client.retrieve("charges", str(stripe_id(intent["latest_charge"])))
            if not intent_id:
                continue
            if as_int(charge.get("amount_refunded")) > 0:
                found.charge_refunded += as_int(charge.get("amount_refunded"))
                listed = self._client.list_all("refunds", payment_intent=intent_id)
                found.refunds += refunds_of(listed)
            if charge.get("disputed"):
                listed = self._client.list_all("disputes", payment_intent=intent_id)
                found.disputes += disputes_of(listed)
        return found


def _invoice_attribution(invoice: Mapping[str, Any]) -> Attribution:
    """Who referred an invoice's customer: the invoice's, its subscription's and its
    customer's metadata, in that order."""
    subscription = as_mapping(as_mapping(invoice.get("parent")).get("subscription_details"))
    customer = as_mapping(invoice.get("customer"))
    return attribution_from(
        [
            as_mapping(invoice.get("metadata")),
            as_mapping(subscription.get("metadata")),
            as_mapping(customer.get("metadata")),
        ],
        stripe_customer=invoice.get("customer"),
        email=invoice.get("customer_email") or customer.get("email"),
        name=invoice.get("customer_name") or customer.get("name"),
    )


def _intent_attribution(
    intent: Mapping[str, Any], session: Mapping[str, Any], charge: Mapping[str, Any]
) -> Attribution:
    """Who referred a payment intent's customer: its metadata, its checkout session's and
    its customer's, with the checkout's ``client_reference_id``."""
    customer = as_mapping(intent.get("customer"))
    details = as_mapping(session.get("customer_details"))
    return attribution_from(
        [
            as_mapping(intent.get("metadata")),
            as_mapping(session.get("metadata")),
            as_mapping(customer.get("metadata")),
        ],
        client_reference_id=session.get("client_reference_id"),
        stripe_customer=intent.get("customer"),
        email=details.get("email")
        or as_mapping(charge.get("billing_details")).get("email")
        or intent.get("receipt_email")
        or customer.get("email"),
        name=details.get("name") or customer.get("name"),
    )


def referral_of_session(session: Mapping[str, Any]) -> Attribution:
    """What a checkout session says about who referred its customer (paid or not)."""
    details = as_mapping(session.get("customer_details"))
    return attribution_from(
        [as_mapping(session.get("metadata"))],
        client_reference_id=session.get("client_reference_id"),
        stripe_customer=session.get("customer"),
        email=details.get("email") or session.get("customer_email"),
        name=details.get("name"),
    )

"""Stripe's side of a reconciliation: every payment created or touched in a window.

Listings, in this order, each paged 100 at a time newest first (``created[gte|lte]``):

1. invoices created in the window (each is a payment);
2. checkout sessions (payment mode: its invoice, else its PaymentIntent, read with the
   session already in hand; subscription and setup sessions are no payment of their own);
3. PaymentIntents (its invoice when an invoice's payment names it, as processing decides);
4. charges (only those without a PaymentIntent are payments of their own);
5. refunds and 6. disputes created in the window (the payment each belongs to);
7. events of the payment types (``GET /v1/events``, Stripe keeps 30 days) for the part of
   the window within the last 30 days: payments touched then though made earlier (a late
   capture, an invoice paid later, a refund's status changing).

Each payment is one :class:`~partnero_bridge.stripe.reader.PaymentRef`, the ref processing
uses (an invoice's PaymentIntent counts as the invoice), compared once per run. Its state
is read with processing's reader, its target decided by ``decide_payment`` with the identity
map's attribution (read, never learned) and the ledger's fixed identity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from partnero_bridge.decision import stable_identity
from partnero_bridge.envelope import Source
from partnero_bridge.errors import ConfigurationError, PermanentError
from partnero_bridge.reconcile.common import (
    Listed,
    ListedPage,
    SourceReader,
    Window,
    delivery_id,
)
from partnero_bridge.reconcile.compare import Evidence, Finding, compare, needs_referral
from partnero_bridge.stripe.events import PAYMENT_EVENTS
from partnero_bridge.stripe.fields import as_mapping, stripe_id
from partnero_bridge.stripe.payment import decide_payment
from partnero_bridge.stripe.process import (
    completed_attribution,
    payment_rules,
    reader,
    recheck_event,
)
from partnero_bridge.stripe.reader import NoPayment, PaymentRef

if TYPE_CHECKING:
    from partnero_bridge.decision import Target
    from partnero_bridge.ledger.records import CommissionRecord
    from partnero_bridge.runtime import Runtime
    from partnero_bridge.stripe.payment import PaymentState

STREAMS = (
    "invoices",
    "checkout/sessions",
    "payment_intents",
    "charges",
    "refunds",
    "disputes",
    "events",
)
# Stripe lists events of the last 30 days; a little margin keeps a page from asking past it.
EVENT_DAYS_SECONDS = 30 * 86400 - 600


class StripeWindow:
    """Lists a window's Stripe payments and compares each (see the module docstring)."""

    scope = "stripe"
    streams = STREAMS

    def __init__(self, runtime: Runtime, started_at: int) -> None:
        self._runtime = runtime
        self._reader = reader(runtime)
        self._rules = payment_rules(runtime)
        self._read = SourceReader(runtime)
        self._started_at = started_at
        # A PaymentIntent's payment, once known (from an invoice's state, or asked).
        self._intents: dict[str, PaymentRef] = {}
        self._lock = threading.Lock()

    # -- listing -------------------------------------------------------------------------
    def page(self, stream: str, cursor: str | None, window: Window) -> ListedPage:
        start = window.start
        if stream == "events":
            start = max(start, self._started_at - EVENT_DAYS_SECONDS)
            if start > window.end:
                return ListedPage([], None)
        objects, has_more = self._runtime.stripe.list_window(
            stream,
            start,
            window.end,
            starting_after=cursor,
            types=sorted(PAYMENT_EVENTS) if stream == "events" else (),
        )
        last = stripe_id(objects[-1].get("id")) if objects else None
        return ListedPage(
            [Listed(stream, obj) for obj in objects], last if has_more and last else None
        )

    # -- which payment ---------------------------------------------------------------------
    def _ref_of(self, stream: str, obj: Mapping[str, Any]) -> PaymentRef | None:
        if stream == "events":
            obj = as_mapping(as_mapping(obj.get("data")).get("object"))
        object_type = obj.get("object")
        object_id = stripe_id(obj.get("id"))
        if object_type == "invoice" and object_id:
            return PaymentRef("invoice", object_id)
        if object_type == "invoice_payment":
            invoice = stripe_id(obj.get("invoice"))
            return PaymentRef("invoice", invoice) if invoice else None
        if object_type == "checkout.session":
            return self._ref_of_session(obj)
        if object_type == "payment_intent" and object_id:
            return self._ref_of_intent(object_id)
        intent = stripe_id(obj.get("payment_intent"))
        if object_type in ("charge", "refund", "dispute") and intent:
            return self._ref_of_intent(intent)
        if object_type == "charge" and object_id:
            return PaymentRef("charge", object_id)
        if object_type in ("refund", "dispute"):
            # A bare charge's refund or dispute: the reader finds the charge's payment.
            found = self._reader.payment_of({"type": "reconcile", "data": {"object": obj}})
            return found if isinstance(found, PaymentRef) else None
        return None

    def _ref_of_session(self, session: Mapping[str, Any]) -> PaymentRef | None:
        if session.get("mode") in ("setup", "subscription"):
            return None  # no payment of its own (a subscription's invoices are listed)
        invoice = stripe_id(session.get("invoice"))
        if invoice:
            return PaymentRef("invoice", invoice)
        intent = stripe_id(session.get("payment_intent"))
        if not intent:
            return None  # the checkout made no payment
        found = self._ref_of_intent(intent)
        if found.object_type == "payment_intent":
            return replace(found, session=dict(session))  # saves listing it again
        return found

    def _ref_of_intent(self, intent: str) -> PaymentRef:
        with self._lock:
            known = self._intents.get(intent)
        if known is not None:
            return known
        found = self._reader.payment_of(
            {"type": "reconcile", "data": {"object": {"object": "payment_intent", "id": intent}}}
        )
        assert not isinstance(found, NoPayment)  # a PaymentIntent is always a payment
        with self._lock:
            self._intents[intent] = replace(found, session=None)
        return found

    # -- comparing -------------------------------------------------------------------------
    def evaluate(self, item: Listed, first: Callable[[str], bool]) -> Finding | None:
        ref = self._ref_of(item.stream, item.obj)
        if ref is None or not first(ref.ledger_key):
            return None
        return self.finding(ref)

    def finding(self, ref: PaymentRef) -> Finding:
        """One payment's comparison (retryable failures raise: the run stops, resumable)."""
        ledger_key, record = self._read.commission(ref.ledger_key)
        ledger_key = ledger_key or ref.ledger_key
        source_id = ref.id
        try:
            state = self.read(ref)
        except (PermanentError, ConfigurationError) as exc:
            return compare(Evidence(ledger_key, source_id, None, error=f"Stripe: {exc.reason}"))
        try:
            target = self.decide(state, record)
        except PermanentError as exc:
            return compare(Evidence(ledger_key, source_id, None, error=exc.reason))
        evidence = Evidence(
            ledger_key,
            source_id,
            target,
            record=record,
            held=self._read.held(record, target),
            created=state.created,
            signup_wait_seconds=self._runtime.settings.signup_wait_seconds,
        )
        if needs_referral(evidence):
            assert target.customer_key is not None
            evidence = replace(evidence, referral=self._read.referral(target.customer_key))
        return compare(evidence)

    def read(self, ref: PaymentRef) -> PaymentState:
        """The payment's state at Stripe now, its referral completed by the identity map
        (read only). Raises PermanentError or ConfigurationError when Stripe cannot tell."""
        state = self._reader.payment_state(ref)
        for intent in state.intents:
            with self._lock:
                self._intents.setdefault(intent, PaymentRef("invoice", ref.id))
        return self._with_identity(state)

    def decide(self, state: PaymentState, record: CommissionRecord | None) -> Target:
        """What Partnero should hold for the payment: the webhooks' decision from ``state``,
        with the identity the ledger's ``record`` fixed. Raises PermanentError when the
        payment cannot be decided."""
        return stable_identity(decide_payment(state, self._rules), record)

    def _with_identity(self, state: PaymentState) -> PaymentState:
        """The payment's referral completed by the identity map, as processing completes it
        (read only: a reconciliation learns nothing)."""
        found = state.attribution
        identity = None
        if found.stripe_customer and not (found.customer_key and found.partner_key):
            identity = self._runtime.ledger.stripe_customer(found.stripe_customer)
        return replace(state, attribution=completed_attribution(found, identity))

    # -- healing -----------------------------------------------------------------------------
    def heal(self, finding: Finding, run_id: str) -> None:
        """Mark the ledger item so the re-check asks Partnero first, then queue the re-check
        (processing's own ``partnero_bridge.recheck`` event) on the Stripe work queue."""
        self._runtime.ledger.ask_partnero_next(finding.ledger_key)
        delivery = delivery_id(run_id, finding.ledger_key)
        self._read.queue(
            Source.STRIPE, delivery, recheck_event(finding.ledger_key, delivery), run_id
        )

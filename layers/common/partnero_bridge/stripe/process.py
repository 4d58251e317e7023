"""Processing side of Stripe events: each event names a payment; the payment's current
state, read from the Stripe API, decides what Partnero holds for it.

The event body only says what to read. Which payment it concerns and everything about
that payment (paid, captured, refunds and their statuses, disputes, tax, referral) come
from the Stripe API in the pinned version, read after the payment's ledger item is
claimed, so two events about one payment never decide from two different readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from partnero_bridge.commissions import RECHECK_EVENT, RECONCILE_EVENT, Delivery, Plan
from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import AliasRecord, Recheck, StripeCustomerRecord
from partnero_bridge.observability import logger
from partnero_bridge.stripe.attribution import Attribution, attribution_from
from partnero_bridge.stripe.events import RECHECK, Route, route_of
from partnero_bridge.stripe.fields import as_mapping
from partnero_bridge.stripe.payment import PaymentRules, decide_payment
from partnero_bridge.stripe.reader import (
    NoPayment,
    PaymentRef,
    StripeReader,
    referral_of_session,
)

if TYPE_CHECKING:
    from partnero_bridge.ledger.records import CommissionRecord
    from partnero_bridge.runtime import Runtime

_REF_KINDS = {"invoice": "invoice", "pi": "payment_intent", "ch": "charge"}


def recheck_event(ledger_key: str, delivery_id: str) -> dict[str, Any]:
    """An event body that makes processing decide ``ledger_key``'s payment again."""
    return {"id": delivery_id, "type": RECHECK, "data": {"object": {"ledger_key": ledger_key}}}


def payment_rules(runtime: Runtime) -> PaymentRules:
    return PaymentRules(
        amount_basis=runtime.settings.stripe_amount_basis,
        count_out_of_band=runtime.settings.stripe_count_out_of_band,
    )


def reader(runtime: Runtime) -> StripeReader:
    def invoice_of_intent(intent: str) -> str | None:
        found = runtime.ledger.commission(keys.stripe_payment("pi", intent))
        if isinstance(found, AliasRecord) and found.alias_of.startswith("stripe#invoice:"):
            return found.alias_of.removeprefix("stripe#invoice:")
        return None

    return StripeReader(runtime.stripe, invoice_of_intent)


def process_stripe_event(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    """One queued Stripe event, handled by its route (stripe.events.ROUTES)."""
    event = envelope.payload
    kind = str(event.get("type"))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        # Signed but malformed: nothing to read (the payment events' reader says the same).
        return _ignored(f"{kind} carries no object", "malformed")
    return _HANDLERS[route_of(kind)](_Event(envelope, event, obj), runtime)


@dataclass(frozen=True)
class _Event:
    """A queued event as its route's handler takes it: the envelope, the event, its object."""

    envelope: QueueEnvelope
    body: Mapping[str, Any]
    object: Mapping[str, Any]

    def delivery(self, event_type: str) -> Delivery:
        return Delivery(self.envelope.delivery_id, self.envelope.received_at, event_type)


def _payment(event: _Event, runtime: Runtime) -> Outcome:
    found = reader(runtime).payment_of(event.body)
    if isinstance(found, NoPayment):
        if found.session is not None:
            _learn_from_session(found.session, runtime)
        return _ignored(found.reason, "no_payment")
    return _decide(found, event.delivery(str(event.body.get("type"))), runtime)


def _identity(event: _Event, runtime: Runtime) -> Outcome:
    return _learn_customer(event.object, runtime)


def _recheck(event: _Event, runtime: Runtime) -> Outcome:
    # The payment's history tells a reconciliation's heal from a sign-up's re-check.
    reconciling = RECONCILE_EVENT in event.envelope.meta
    ref = _ref_of_ledger_key(str(event.object.get("ledger_key") or ""))
    if ref is None:
        return _ignored("nothing recorded to re-check", "nothing_to_recheck")
    return _decide(ref, event.delivery(RECONCILE_EVENT if reconciling else RECHECK_EVENT), runtime)


_HANDLERS: dict[Route, Callable[[_Event, Runtime], Outcome]] = {
    Route.PAYMENT: _payment,
    Route.IDENTITY: _identity,
    Route.RECHECK: _recheck,
}


def _ignored(detail: str, reason: str) -> Outcome:
    return Outcome(status=OutcomeStatus.IGNORED, detail=detail, reason=reason)


def _ref_of_ledger_key(ledger_key: str) -> PaymentRef | None:
    kind, sep, stripe_id = ledger_key.removeprefix("stripe#").partition(":")
    if not sep or kind not in _REF_KINDS or not stripe_id:
        return None
    ref_kind = _REF_KINDS[kind]
    return PaymentRef(ref_kind, stripe_id)  # type: ignore[arg-type]


def _learn_customer(customer: Mapping[str, Any], runtime: Runtime) -> Outcome:
    stripe_customer = customer.get("id")
    if not isinstance(stripe_customer, str):
        return _ignored("customer has no id", "no_id")
    # The event's copy may be older than what was learned already (a customer.created
    # delivered after the customer.updated that opted out): Stripe's customer decides.
    current = runtime.stripe.retrieve("customers", stripe_customer)
    if current.get("deleted"):
        return _ignored("customer was deleted in Stripe", "customer_deleted")
    found = attribution_from([as_mapping(current.get("metadata"))])
    runtime.ledger.learn_stripe_customer(
        StripeCustomerRecord(
            pk=keys.stripe_customer(stripe_customer),
            customer_key=found.customer_key,
            partner_key=found.partner_key,
            opted_out=found.opted_out,
        ),
        replace_opt_out=True,
    )
    return _ignored("customer identity learned", "identity_learned")


def _learn_from_session(session: Mapping[str, Any], runtime: Runtime) -> None:
    """Every checkout teaches who its customer is and who referred them, paid or not
    (a free trial's checkout may be the only place the referral is written)."""
    found = referral_of_session(session)
    if found.stripe_customer and (found.customer_key or found.partner_key):
        runtime.ledger.learn_stripe_customer(
            StripeCustomerRecord(
                pk=keys.stripe_customer(found.stripe_customer),
                customer_key=found.customer_key,
                partner_key=found.partner_key,
            ),
            replace_opt_out=False,
        )


def completed_attribution(found: Attribution, identity: StripeCustomerRecord | None) -> Attribution:
    """The payment's own referral, completed by what the identity map learned before
    (``identity``: its Stripe customer's map item, if any). Pure: nothing is learned."""
    if found.customer_key and found.partner_key:
        return found
    email_key = normalize_customer_key(found.email) if found.email else None
    customer_key = found.customer_key or (identity.customer_key if identity else None) or email_key
    partner_key = found.partner_key or (identity.partner_key if identity else None)
    opted_out = found.opted_out or bool(identity and identity.opted_out)
    return replace(found, customer_key=customer_key, partner_key=partner_key, opted_out=opted_out)


def _attribution(found: Attribution, runtime: Runtime) -> Attribution:
    """The payment's own referral, completed by what the identity map learned before.

    The map keeps a Stripe customer's key once learned, so a later change of email does
    not move its payments to another Partnero customer.
    """
    if found.customer_key and found.partner_key:
        # The payment names both (its customer's own metadata included, read from Stripe
        # now, opt-out with it): nothing to complete from what was learned before.
        return found
    identity = (
        runtime.ledger.stripe_customer(found.stripe_customer) if found.stripe_customer else None
    )
    completed = completed_attribution(found, identity)
    customer_key, partner_key = completed.customer_key, completed.partner_key
    if found.stripe_customer and customer_key and not (identity and identity.customer_key):
        runtime.ledger.learn_stripe_customer(
            StripeCustomerRecord(
                pk=keys.stripe_customer(found.stripe_customer),
                customer_key=customer_key,
                partner_key=partner_key,
            ),
            replace_opt_out=False,
        )
    return completed


def _decide(ref: PaymentRef, delivery: Delivery, runtime: Runtime) -> Outcome:
    logger.append_keys(ledger_key=ref.ledger_key)
    rules = payment_rules(runtime)
    read = reader(runtime)

    def plan(_previous: CommissionRecord | None) -> Plan:
        # Read after the claim: concurrent events about one payment decide in turn.
        state = read.payment_state(ref)
        state = replace(state, attribution=_attribution(state.attribution, runtime))
        return Plan(
            decide_payment(state, rules),
            aliases=tuple(keys.stripe_payment("pi", i) for i in state.intents),
            recheck=Recheck(
                at=int(delivery.received_at.timestamp()),
                source="stripe",
                ref={"key": ref.ledger_key},
            ),
        )

    return runtime.reconciler.apply(ref.ledger_key, plan, delivery)

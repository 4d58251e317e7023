"""Processing side of Stripe events: sales, refunds and disputes reconciled per payment.

A payment's facts (its sale, refunds and disputes) are folded from its events into the
ledger record; what Partnero should hold is decided from those facts each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from partnero_bridge.commissions import Delivery, Plan
from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.decision import Target
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.errors import NotYetKnown
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import (
    AliasRecord,
    CommissionRecord,
    Recheck,
    StripeCustomerRecord,
)
from partnero_bridge.observability import logger
from partnero_bridge.stripe.facts import PaymentFacts
from partnero_bridge.stripe.ingest import stripe_rules
from partnero_bridge.stripe.mapping import (
    IDENTITY,
    LINKS,
    REVERSALS,
    NotASale,
    Reversal,
    Sale,
    attribution_from,
    reversal_from_event,
    sale_from_event,
)

if TYPE_CHECKING:
    from partnero_bridge.runtime import Runtime

# An internal event type: a sign-up asks for a not-referred payment to be decided again.
# Never accepted from the internet (ingest queues only the event types it handles).
RECHECK = "partnero_bridge.recheck"


def recheck_event(ledger_key: str, delivery_id: str) -> dict[str, Any]:
    return {"id": delivery_id, "type": RECHECK, "data": {"object": {"ledger_key": ledger_key}}}


def process_stripe_event(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    event = envelope.payload
    kind = str(event.get("type"))
    obj: Mapping[str, Any] = (event.get("data") or {}).get("object") or {}
    delivery = Delivery(envelope.delivery_id, envelope.received_at)
    if kind in IDENTITY:
        return _learn_customer(obj, runtime)
    if kind in LINKS:
        return _link_invoice_payment(obj, runtime)
    if kind == RECHECK:
        return _recheck(str(obj.get("ledger_key") or ""), delivery, runtime)
    if kind in REVERSALS:
        reversal = reversal_from_event(event)
        if isinstance(reversal, NotASale):
            return _ignored(reversal.reason)
        return _reverse(reversal, delivery, runtime)
    if kind in stripe_rules(runtime).sale_types():
        sale = sale_from_event(event, stripe_rules(runtime))
        if isinstance(sale, NotASale):
            return _ignored(sale.reason)
        return _record_sale(sale, obj, delivery, runtime)
    return _ignored(f"{kind} is not handled", "event_not_handled")


def _ignored(detail: str, reason: str = "not_a_sale") -> Outcome:
    return Outcome(status=OutcomeStatus.IGNORED, detail=detail, reason=reason)


def _learn_customer(customer: Mapping[str, Any], runtime: Runtime) -> Outcome:
    stripe_customer = customer.get("id")
    if not isinstance(stripe_customer, str):
        return _ignored("customer has no id", "no_id")
    found = attribution_from([customer.get("metadata") or {}])
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


def _link_invoice_payment(payment: Mapping[str, Any], runtime: Runtime) -> Outcome:
    """Basil's invoice_payment.paid: remember which payment intent paid which invoice."""
    invoice = payment.get("invoice")
    inner = payment.get("payment") or {}
    intent = inner.get("payment_intent") if isinstance(inner, Mapping) else None
    if not isinstance(invoice, str) or not isinstance(intent, str):
        return _ignored("invoice payment without ids", "no_id")
    runtime.ledger.link(keys.stripe_payment("pi", intent), keys.stripe_payment("invoice", invoice))
    return _ignored("payment intent linked to its invoice", "linked")


def _target(
    facts: PaymentFacts,
    transaction_key: str,
    reason: str,
    *,
    customer_key: str | None,
    partner_key: str | None,
    **person: Any,
) -> Target:
    amount = facts.commission_amount()
    if facts.opted_out:
        why, detail = "opted_out", "opted out (metadata partnero=false)"
    elif amount is None and facts.amount is not None and facts.amount <= 0:
        why, detail = "zero_amount", "zero amount"
    elif amount is None:
        why, detail = "refunded_or_disputed", f"refunded or disputed ({reason})"
    else:
        why, detail = reason, f"{reason.replace('_', ' ')}"
    return Target(
        transaction_key=transaction_key,
        amount=amount,
        currency=facts.currency or "",
        reason=why,
        detail=detail,
        customer_key=customer_key,
        partner_key=partner_key,
        **person,
    )


def _record_sale(
    sale: Sale, obj: Mapping[str, Any], delivery: Delivery, runtime: Runtime
) -> Outcome:
    found = sale.attribution
    identity: StripeCustomerRecord | None = None
    if found.stripe_customer:
        identity = runtime.ledger.stripe_customer(found.stripe_customer)
    customer_key = (
        found.customer_key
        or (identity.customer_key if identity else None)
        or (normalize_customer_key(found.email) if found.email else None)
    )
    partner_key = found.partner_key or (identity.partner_key if identity else None)
    opted_out = found.opted_out or bool(identity and identity.opted_out)
    if found.stripe_customer and found.customer_key and obj.get("object") == "checkout.session":
        # Teach the map who this Stripe customer is, for renewals without metadata.
        runtime.ledger.learn_stripe_customer(
            StripeCustomerRecord(
                pk=keys.stripe_customer(found.stripe_customer),
                customer_key=found.customer_key,
                partner_key=found.partner_key,
            ),
            replace_opt_out=False,
        )
    logger.append_keys(ledger_key=sale.ledger_key)
    recheck = Recheck(
        at=int(delivery.received_at.timestamp()), source="stripe", ref={"key": sale.ledger_key}
    )

    def plan(previous: CommissionRecord | None) -> Plan:
        facts = (previous.facts if previous and previous.facts else PaymentFacts()).model_copy(
            deep=True
        )
        facts.add_sale(sale, opted_out)
        target = _target(
            facts,
            sale.transaction_key,
            "paid",
            customer_key=customer_key,
            partner_key=partner_key,
            email=found.email,
            name=found.name,
            created_at=sale.created_at,
        )
        return Plan(target, facts=facts, aliases=sale.aliases, recheck=recheck)

    return runtime.reconciler.apply(sale.ledger_key, plan, delivery)


def _payment_record(refs: tuple[str, ...], runtime: Runtime) -> str | None:
    """The ledger key of the payment one of ``refs`` names, if recorded."""
    for ref in refs:
        found = runtime.ledger.commission(ref)
        if isinstance(found, AliasRecord):
            return found.alias_of
        if found is not None and (found.facts or found.transaction_key):
            return ref
    return None


def _replan(
    previous: CommissionRecord | None, reason: str, reversal: Reversal | None = None
) -> Plan:
    """What the payment's stored facts (plus ``reversal``) leave for Partnero."""
    facts = (previous.facts if previous and previous.facts else PaymentFacts()).model_copy(
        deep=True
    )
    if reversal is not None:
        facts.add_reversal(reversal)
    target = _target(
        facts,
        (previous.transaction_key if previous else None) or "",
        reason,
        customer_key=previous.customer_key if previous else None,
        partner_key=previous.partner_key if previous else None,
    )
    return Plan(target, facts=facts)


def _reverse(reversal: Reversal, delivery: Delivery, runtime: Runtime) -> Outcome:
    key = _payment_record(reversal.refs, runtime)
    if key is None:
        # Perhaps its sale is still on its way: retried, and an outcome if it never comes.
        raise NotYetKnown("the payment this refers to is not recorded")
    logger.append_keys(ledger_key=key)
    reason = f"{reversal.kind}_{reversal.dispute_status or 'updated'}"
    if reversal.kind != "dispute":
        reason = "refund_updated"
    return runtime.reconciler.apply(
        key, lambda previous: _replan(previous, reason, reversal), delivery
    )


def _recheck(ledger_key: str, delivery: Delivery, runtime: Runtime) -> Outcome:
    """A sign-up arrived for this payment's customer: decide it again from its facts."""
    found = runtime.ledger.commission(ledger_key) if ledger_key else None
    if not isinstance(found, CommissionRecord) or found.facts is None:
        return _ignored("nothing recorded to re-check", "nothing_to_recheck")
    logger.append_keys(ledger_key=ledger_key)
    return runtime.reconciler.apply(
        ledger_key, lambda previous: _replan(previous, "paid"), delivery
    )

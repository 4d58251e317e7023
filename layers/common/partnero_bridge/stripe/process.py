"""Processing side of Stripe events: sales, refunds and disputes reconciled per payment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from partnero_bridge.commissions import Commission, LedgerState, Plan
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.errors import NotYetKnown
from partnero_bridge.observability import logger
from partnero_bridge.stripe.identity import Identity, IdentityMap
from partnero_bridge.stripe.ingest import stripe_rules
from partnero_bridge.stripe.mapping import (
    IDENTITY,
    LINKS,
    REVERSALS,
    NotASale,
    PaymentFacts,
    Reversal,
    Sale,
    attribution_from,
    normalize_customer_key,
    payment_key,
    reversal_from_event,
    sale_from_event,
)

if TYPE_CHECKING:
    from partnero_bridge.runtime import Runtime


def identities(runtime: Runtime) -> IdentityMap:
    return IdentityMap(runtime.dynamodb, runtime.settings.ledger_table)


def process_stripe_event(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    event = envelope.payload
    kind = str(event.get("type"))
    obj: Mapping[str, Any] = (event.get("data") or {}).get("object") or {}
    if kind in IDENTITY:
        return _learn_customer(obj, runtime)
    if kind in LINKS:
        return _link_invoice_payment(obj, runtime)
    if kind in REVERSALS:
        reversal = reversal_from_event(event)
        if isinstance(reversal, NotASale):
            return Outcome(status=OutcomeStatus.IGNORED, detail=reversal.reason)
        return _reverse(reversal, envelope.delivery_id, runtime)
    if kind in stripe_rules(runtime).sale_types():
        sale = sale_from_event(event, stripe_rules(runtime))
        if isinstance(sale, NotASale):
            return Outcome(status=OutcomeStatus.IGNORED, detail=sale.reason)
        return _record_sale(sale, obj, envelope.delivery_id, runtime)
    return Outcome(status=OutcomeStatus.IGNORED, detail=f"{kind} is not handled")


def _learn_customer(customer: Mapping[str, Any], runtime: Runtime) -> Outcome:
    stripe_customer = customer.get("id")
    if not isinstance(stripe_customer, str):
        return Outcome(status=OutcomeStatus.IGNORED, detail="customer has no id")
    found = attribution_from([customer.get("metadata") or {}])
    identities(runtime).learn(
        stripe_customer,
        Identity(found.customer_key, found.partner_key, found.opted_out),
        replace_opt_out=True,
    )
    return Outcome(status=OutcomeStatus.IGNORED, detail="customer identity learned")


def _link_invoice_payment(payment: Mapping[str, Any], runtime: Runtime) -> Outcome:
    """Basil's invoice_payment.paid: remember which payment intent paid which invoice."""
    invoice = payment.get("invoice")
    inner = payment.get("payment") or {}
    intent = inner.get("payment_intent") if isinstance(inner, Mapping) else None
    if not isinstance(invoice, str) or not isinstance(intent, str):
        return Outcome(status=OutcomeStatus.IGNORED, detail="invoice payment without ids")
    runtime.reconciler.ledger.link(payment_key("pi", intent), payment_key("invoice", invoice))
    return Outcome(status=OutcomeStatus.IGNORED, detail="payment intent linked to its invoice")


def _record_sale(sale: Sale, obj: Mapping[str, Any], delivery_id: str, runtime: Runtime) -> Outcome:
    found = sale.attribution
    identity: Identity | None = None
    if found.stripe_customer:
        identity = identities(runtime).get(found.stripe_customer)
    customer_key = (
        found.customer_key
        or (identity.customer_key if identity else None)
        or (normalize_customer_key(found.email) if found.email else None)
    )
    partner_key = found.partner_key or (identity.partner_key if identity else None)
    opted_out = found.opted_out or bool(identity and identity.opted_out)
    if found.stripe_customer and found.customer_key and obj.get("object") == "checkout.session":
        # Teach the map who this Stripe customer is, for renewals without metadata.
        identities(runtime).learn(
            found.stripe_customer,
            Identity(found.customer_key, found.partner_key),
            replace_opt_out=False,
        )
    logger.append_keys(ledger_key=sale.ledger_key)

    def plan(state: LedgerState) -> Plan:
        facts = PaymentFacts.load(state.facts)
        facts.add_sale(sale, opted_out)
        amount = facts.commission_amount()
        if opted_out:
            return Plan(None, "opted out (metadata partnero=false)", facts.dump(), sale.aliases)
        key = customer_key if found.customer_key else (state.customer_key or customer_key)
        if key is None:
            return Plan(
                None,
                "no customer key, email or known Stripe customer",
                facts.dump(),
                sale.aliases,
                hold=not state.exists,
            )
        target = (
            Commission(
                transaction_key=state.transaction_key or sale.transaction_key,
                amount=amount,
                currency=facts.currency or sale.currency,
                customer_key=key,
                partner_key=partner_key or state.partner_key,
                email=found.email,
                name=found.name,
                created_at=sale.created_at,
            )
            if amount is not None
            else None
        )
        reason = "zero amount" if sale.amount <= 0 else "refunded or disputed"
        return Plan(target, "" if target else reason, facts.dump(), sale.aliases)

    return runtime.reconciler.apply(sale.ledger_key, plan, delivery_id)


def _reverse(reversal: Reversal, delivery_id: str, runtime: Runtime) -> Outcome:
    ledger = runtime.reconciler.ledger
    key: str | None = None
    for ref in reversal.refs:
        state = ledger.lookup(ref)
        if state.alias_of:
            key = state.alias_of
            break
        if state.exists and (state.facts or state.transaction_key):
            key = ref
            break
    if key is None:
        # Perhaps its sale is still on its way: retried, and an outcome if it never comes.
        raise NotYetKnown("the payment this refers to is not recorded")
    logger.append_keys(ledger_key=key)

    def plan(state: LedgerState) -> Plan:
        facts = PaymentFacts.load(state.facts)
        facts.add_reversal(reversal)
        amount = facts.commission_amount()
        reason = f"{reversal.kind} {reversal.object_id}"
        if state.state == "not_referred":  # nothing was sent; keep the facts only
            return Plan(None, reason, facts.dump(), hold=True)
        target = state.commission(amount) if amount is not None else None
        return Plan(target, reason, facts.dump())

    return runtime.reconciler.apply(key, plan, delivery_id)

"""Processing side of Ecwid webhooks: fetch the order, decide, reconcile with Partnero.

The webhook only says which order to look at. Its identity (ledger key, transaction key)
and every fact come from the order the Ecwid API serves now, fetched with the store's
own token: the webhook's body is not covered by its signature.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from partnero_bridge.commissions import RECHECK_EVENT, RECONCILE_EVENT, Delivery, Plan
from partnero_bridge.decision import Target
from partnero_bridge.ecwid.mapping import EcwidRules, decide
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.ecwid.secrets import ecwid_store_tokens
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.errors import ConfigurationError, PermanentError
from partnero_bridge.ledger import keys
from partnero_bridge.ledger.records import AliasRecord, CommissionRecord, Recheck
from partnero_bridge.observability import logger

if TYPE_CHECKING:
    from partnero_bridge.ecwid.models import EcwidOrder
    from partnero_bridge.runtime import Runtime


def rules(runtime: Runtime) -> EcwidRules:
    settings = runtime.settings
    return EcwidRules(
        amount_basis=settings.ecwid_amount_basis,
        partner_field=settings.ecwid_partner_field,
        customer_key=settings.ecwid_customer_key,
        paid_statuses=frozenset(s.upper() for s in settings.ecwid_paid_statuses),
        product_id=settings.ecwid_product_id,
    )


def recheck_webhook(store_id: str, order_id: str, delivery_id: str) -> dict[str, object]:
    """A webhook-shaped body that makes processing decide an order again (after a sign-up)."""
    return {
        "eventId": delivery_id,
        "eventCreated": int(datetime.now(UTC).timestamp()),
        "storeId": int(store_id),
        "eventType": "order.updated",
        "data": {"orderId": order_id},
    }


def process_order_event(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    """One queued Ecwid webhook: its order as Ecwid serves it now decides the transaction.

    Raises PermanentError for a webhook naming no order, ConfigurationError (retried) for
    a store without a token.
    """
    webhook = envelope.payload_as(EcwidWebhook)
    store = str(webhook.storeId)
    order_id = webhook.order_id
    if order_id is None:
        raise PermanentError("webhook names no order (neither data.orderId nor entityId)")
    token = ecwid_store_tokens(runtime).get(store)
    if not token:
        raise ConfigurationError(f"store {store} has no token in the Ecwid API secret")
    delivery = Delivery(envelope.delivery_id, envelope.received_at, _event_type(envelope, webhook))
    order = runtime.ecwid.order(store, order_id, token)
    entity = str(webhook.entityId) if webhook.entityId is not None else order_id
    if order is None and entity != order_id:
        # Older releases keyed orders by the webhook's internal id: look that one up too,
        # at Ecwid first, so only an order Ecwid confirms gone is ever reversed.
        order = runtime.ecwid.order(store, entity, token)
    if order is None:
        return _order_gone(store, {order_id, entity}, delivery, runtime)
    return _decide(order, store, token, delivery, runtime)


def _event_type(envelope: QueueEnvelope, webhook: EcwidWebhook) -> str:
    """What the delivery was, for the order's history: a sign-up's or a reconciliation's
    re-check comes as an order.updated webhook, its envelope says which."""
    if "recheck" in envelope.meta:
        return RECHECK_EVENT
    if RECONCILE_EVENT in envelope.meta:
        return RECONCILE_EVENT
    return webhook.eventType


def _decide(
    order: EcwidOrder, store: str, token: str, delivery: Delivery, runtime: Runtime
) -> Outcome:
    key = keys.ecwid_order(store, order.internalId, order.id)
    logger.append_keys(ledger_key=key)
    currency = runtime.settings.ecwid_currency.upper() or runtime.ecwid.currency(store, token)
    target = decide(order, store, currency, rules(runtime))
    alias = keys.ecwid_order_alias(store, order.id)
    plan = Plan(
        target,
        aliases=(alias,) if alias != key else (),
        recheck=Recheck(
            at=int(delivery.received_at.timestamp()),
            source="ecwid",
            ref={"store": store, "order": order.id},
        ),
    )
    return runtime.reconciler.apply(key, plan, delivery)


def _order_gone(store: str, order_ids: set[str], delivery: Delivery, runtime: Runtime) -> Outcome:
    """Ecwid answered 404 for the order: whatever was recorded for it is reversed.

    Only ids Ecwid just confirmed gone are looked up (as a public id, or as the internal
    id older webhooks carry), never another id from the unsigned body.
    """
    order_id = min(order_ids)
    candidates = [
        key
        for gone in sorted(order_ids)
        for key in (keys.ecwid_order_alias(store, gone), keys.ecwid_order(store, gone, ""))
    ]
    for candidate in candidates:
        found = runtime.reconciler.ledger.commission(candidate)
        if isinstance(found, AliasRecord):
            found = runtime.reconciler.ledger.commission(found.alias_of)
        if isinstance(found, CommissionRecord) and found.transaction_key:
            return _reverse_gone(found, order_id, delivery, runtime)
    return Outcome(
        status=OutcomeStatus.IGNORED,
        reason="order_not_found",
        detail=f"Ecwid has no order {order_id} and nothing was recorded for it",
    )


def _reverse_gone(
    record: CommissionRecord, order_id: str, delivery: Delivery, runtime: Runtime
) -> Outcome:
    assert record.transaction_key is not None
    logger.append_keys(ledger_key=record.pk)
    target = Target(
        transaction_key=record.transaction_key,
        amount=None,
        currency=record.currency or "",
        reason="deleted",
        detail=f"Ecwid has no order {order_id} any more (deleted)",
    )
    return runtime.reconciler.apply(record.pk, Plan(target), delivery)

"""Processing side of Ecwid webhooks: fetch the order, decide, reconcile with Partnero."""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnero_bridge.ecwid.client import EcwidClient
from partnero_bridge.ecwid.mapping import EcwidRules, Verdict, decide, ledger_key
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.ecwid.secrets import ecwid_store_tokens
from partnero_bridge.envelope import Outcome, OutcomeStatus, QueueEnvelope
from partnero_bridge.errors import ConfigurationError, PermanentError
from partnero_bridge.observability import logger

if TYPE_CHECKING:
    from partnero_bridge.runtime import Runtime

_clients: dict[tuple[str, float], EcwidClient] = {}


def ecwid_client(runtime: Runtime) -> EcwidClient:
    """One per container, so the currency cache and connections survive invocations."""
    key = (runtime.settings.ecwid_api_url, runtime.settings.ecwid_timeout_seconds)
    if key not in _clients:
        _clients.clear()
        _clients[key] = EcwidClient(*key)
    return _clients[key]


def rules(runtime: Runtime) -> EcwidRules:
    settings = runtime.settings
    return EcwidRules(
        amount_basis=settings.ecwid_amount_basis,
        partner_field=settings.ecwid_partner_field,
        customer_key=settings.ecwid_customer_key,
        paid_statuses=frozenset(s.upper() for s in settings.ecwid_paid_statuses),
        product_id=settings.ecwid_product_id,
    )


def process_order_event(envelope: QueueEnvelope, runtime: Runtime) -> Outcome:
    webhook = envelope.payload_as(EcwidWebhook)
    store = str(webhook.storeId)
    order_id = webhook.order_id
    if order_id is None:
        raise PermanentError("webhook names no order (neither data.orderId nor entityId)")
    # The internal id is in every order webhook (order.deleted may carry nothing else),
    # so it keys the ledger; the public id is what the API fetches by.
    key = ledger_key(store, str(webhook.entityId) if webhook.entityId is not None else order_id)
    logger.append_keys(ledger_key=key)

    if webhook.eventType == "order.deleted":
        return runtime.reconciler.apply(key, None, envelope.delivery_id)

    token = ecwid_store_tokens(runtime).get(store)
    if not token:
        raise ConfigurationError(f"store {store} has no token in the Ecwid secret")
    client = ecwid_client(runtime)
    order = client.order(store, order_id, token)
    if order is None:  # deleted since: nothing may stay commissioned
        return runtime.reconciler.apply(key, None, envelope.delivery_id)
    currency = runtime.settings.ecwid_currency.upper() or client.currency(store, token)
    decision = decide(order, store, currency, rules(runtime))
    if decision.verdict is Verdict.WAIT:
        return Outcome(status=OutcomeStatus.IGNORED, detail=decision.reason, ledger_key=key)
    return runtime.reconciler.apply(key, decision.commission, envelope.delivery_id)

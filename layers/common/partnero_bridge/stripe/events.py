"""The Stripe event types the bridge subscribes to: one table for ingest and processing.

:data:`ROUTES` maps each event type to what processing does with it; ingest queues
exactly the types listed (and reads nothing else from here, so it never imports the
processing code). Every payment event is a trigger: processing finds the payment it
concerns and reads that payment's state from the Stripe API (the event body is never the
fact). Refund changes come as ``refund.*`` on endpoints at API version 2024-10-28.acacia
or later and as ``charge.refund.updated`` before; both are listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Route(StrEnum):
    """What processing does with an event (stripe.process maps each to its function)."""

    # The event concerns a payment: its current state decides what Partnero holds.
    PAYMENT = "payment"
    # A customer's metadata may name its Partnero customer key, partner, or opt-out.
    IDENTITY = "identity"
    # The bridge's own: a recorded payment decided again (never accepted from the internet).
    RECHECK = "recheck"


_PAYMENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "charge.succeeded",
    "charge.captured",
    "charge.expired",
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
)
_IDENTITY_TYPES = ("customer.created", "customer.updated")

# Subscribed event type -> its route.
ROUTES: Mapping[str, Route] = MappingProxyType(
    {
        **dict.fromkeys(_PAYMENT_TYPES, Route.PAYMENT),
        **dict.fromkeys(_IDENTITY_TYPES, Route.IDENTITY),
    }
)
# What ingest queues: the subscribed types, and only those.
HANDLED_EVENTS = frozenset(ROUTES)
PAYMENT_EVENTS = frozenset(t for t, route in ROUTES.items() if route is Route.PAYMENT)

# The internal event type of a re-check (a sign-up asks for a not-referred payment to be
# decided again, or a reconciliation heals one). Not in ROUTES: ingest never queues it.
RECHECK = "partnero_bridge.recheck"


def route_of(event_type: str) -> Route:
    """The route of a queued event; a type no longer subscribed is still read as a
    payment's trigger (what it names decides, as for any payment event)."""
    if event_type == RECHECK:
        return Route.RECHECK
    return ROUTES.get(event_type, Route.PAYMENT)

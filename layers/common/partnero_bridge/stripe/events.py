"""The Stripe event types the bridge subscribes to: one table for ingest and processing.

Every event that can change a payment's commission is a trigger: processing finds the
payment it concerns and reads that payment's state from the Stripe API (the event body is
never the fact). Refund changes come as ``refund.*`` on endpoints at API version
2024-10-28.acacia or later and as ``charge.refund.updated`` before; both are listed.
"""

from __future__ import annotations

PAYMENT_EVENTS = frozenset(
    {
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
    }
)
# A customer's metadata may name its Partnero customer key, partner, or opt-out.
IDENTITY_EVENTS = frozenset({"customer.created", "customer.updated"})
HANDLED_EVENTS = PAYMENT_EVENTS | IDENTITY_EVENTS

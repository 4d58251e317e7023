"""A Stripe payment as the Stripe API says it is now, and what Partnero should hold for it.

Pure: no I/O. The reader (which objects to fetch for an event) builds a
:class:`PaymentState` from objects served in the pinned API version (``2025-03-31.basil``:
an invoice's payments are InvoicePayment objects, a charge's refunds are Refund objects);
:func:`decide_payment` turns it into a :class:`~partnero_bridge.decision.Target`.

One payment is one transaction: an invoice (keyed ``stripe_<invoice id>``; its first
payment may also be announced by a checkout session) or, without an invoice, a payment
intent (``stripe_<payment intent id>``) or a bare charge (``stripe_<charge id>``).

Rules (docs.stripe.com, objects in the pinned version):
- refunds count by their current status: ``succeeded``, ``pending`` and
  ``requires_action`` count; ``failed`` and ``canceled`` gave the money back to the
  balance and do not, whatever order their events came in;
- an authorisation that is not captured is "awaiting capture", not a sale; a canceled
  or expired one is never a sale; the captured amount counts (partial captures too);
- dispute inquiries (``warning_*``) do not reverse; an open or lost dispute withdraws its
  amount (the whole payment, or the share it covers); a won dispute restores;
- money that did not move through Stripe (an invoice paid out of band, a $0 invoice) is
  not a Stripe payment unless ``count_out_of_band``;
- the tax-excluded basis applies the invoice's tax share to what was actually charged
  (credit balance, partly paid invoices); a partial refund keeps the share not refunded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from partnero_bridge.decision import Target
from partnero_bridge.money import decimals, remaining_share
from partnero_bridge.stripe.attribution import Attribution
from partnero_bridge.stripe.fields import as_int, as_text

# Refund statuses whose money has left (or is leaving) the merchant's balance.
REFUND_COUNTS = frozenset({"succeeded", "pending", "requires_action"})
# Dispute statuses with the funds withdrawn: the sale is reversed while they last.
DISPUTE_REVERSES = frozenset({"needs_response", "under_review", "lost"})


class PaymentStatus(StrEnum):
    PAID = "paid"
    AWAITING_CAPTURE = "awaiting_capture"  # authorised, not captured (yet)
    NOT_PAID = "not_paid"  # open, processing, requires action, failed
    CANCELED = "canceled"  # canceled or expired authorisation, voided invoice


@dataclass(frozen=True)
class Refund:
    id: str
    amount: int  # minor units
    status: str

    @property
    def counts(self) -> bool:
        return self.status in REFUND_COUNTS


@dataclass(frozen=True)
class Dispute:
    id: str
    status: str
    amount: int = 0  # minor units withdrawn (0: not given, the whole payment)

    @property
    def reverses(self) -> bool:
        return self.status in DISPUTE_REVERSES


@dataclass(frozen=True)
class PaymentState:
    """What the Stripe API says about one payment now. Amounts in minor units."""

    transaction_key: str
    currency: str  # ISO 4217, any case
    status: PaymentStatus
    total: int  # the document's amount: invoice total, payment intent or charge amount
    charged: int  # what moved through Stripe: captured, or paid by its PaymentIntents/Charges
    tax: int = 0  # the tax inside ``total`` (0 when unknown or none)
    out_of_band: int = 0  # paid outside Stripe (invoices marked paid)
    created: int | None = None  # Unix seconds of the payment
    refunds: tuple[Refund, ...] = ()
    # The charges' own ``amount_refunded`` (it follows their refunds' statuses): what was
    # refunded when no refund object is listed (yet) for them.
    charge_refunded: int = 0
    disputes: tuple[Dispute, ...] = ()
    attribution: Attribution = field(default_factory=Attribution)
    intents: tuple[str, ...] = ()  # the PaymentIntents that paid it (an invoice's payments)


@dataclass(frozen=True)
class PaymentRules:
    amount_basis: Literal["excluding_tax", "total"] = "excluding_tax"
    count_out_of_band: bool = False


def refunded(state: PaymentState) -> int:
    """Minor units refunded so far: each refund by its current status, never twice.

    Without refund objects (a ``charge.refunded`` read before its refunds are listed), the
    charges' ``amount_refunded`` stands, as Stripe keeps it.
    """
    if not state.refunds:
        return state.charge_refunded
    by_id = {refund.id: refund for refund in state.refunds}
    return sum(refund.amount for refund in by_id.values() if refund.counts)


def _basis(state: PaymentState, counted: int, rules: PaymentRules) -> Decimal:
    """The commission basis of ``counted`` minor units, in major units, not yet rounded."""
    amount = Decimal(counted)
    if rules.amount_basis == "excluding_tax" and state.tax > 0 and state.total > 0:
        # The tax share of what was actually charged, not the whole invoice's tax.
        amount -= Decimal(state.tax) * Decimal(counted) / Decimal(state.total)
    # Major units, unrounded: the share rule rounds once, at the end.
    return amount.scaleb(-decimals(state.currency))


def _nothing(state: PaymentState, reason: str, detail: str) -> Target:
    return _target(state, None, reason, detail)


def _target(state: PaymentState, amount: Decimal | None, reason: str, detail: str) -> Target:
    found = state.attribution
    return Target(
        transaction_key=state.transaction_key,
        amount=amount,
        currency=state.currency.upper(),
        reason=reason,
        detail=detail,
        customer_key=found.customer_key,
        partner_key=found.partner_key,
        email=found.email,
        name=found.name,
        created_at=state.created,
    )


def decide_payment(state: PaymentState, rules: PaymentRules) -> Target:
    """What Partnero should hold for ``state`` (amount None: nothing), and why."""
    if state.status is not PaymentStatus.PAID:
        return _nothing(state, state.status.value, f"payment is {state.status.value}")
    if state.attribution.opted_out:
        return _nothing(state, "opted_out", "opted out (metadata partnero=false)")
    counted = state.charged + (state.out_of_band if rules.count_out_of_band else 0)
    if counted <= 0:
        if state.out_of_band > 0:
            return _nothing(state, "out_of_band", "paid outside Stripe (out of band)")
        return _nothing(state, "zero_amount", "nothing was charged")
    # An open or lost dispute withdraws its amount (a partial one, part of the payment):
    # like a refund, the commission keeps the share still held.
    disputes = {dispute.id: dispute for dispute in state.disputes}.values()
    disputed = sum(d.amount or counted for d in disputes if d.reverses)
    back = refunded(state) + disputed
    basis = _basis(state, counted, rules)
    amount = remaining_share(basis, Decimal(counted), Decimal(back), state.currency)
    what = f"{back} of {counted} refunded or disputed (minor units)"
    if amount <= 0:
        reason = "disputed" if disputed else "refunded" if back > 0 else "zero_amount"
        return _nothing(state, reason, what)
    if disputed:
        return _target(state, amount, "partially_disputed", f"paid, {what}")
    if back > 0:
        return _target(state, amount, "partially_refunded", f"paid, {what}")
    return _target(state, amount, "paid", "paid")


# -- reading the pinned version's objects -------------------------------------------------


def refunds_of(objects: Iterable[Mapping[str, Any]]) -> tuple[Refund, ...]:
    """Refund objects (``GET /v1/refunds?charge=`` or ``?payment_intent=``)."""
    return tuple(
        Refund(as_text(r.get("id")), as_int(r.get("amount")), as_text(r.get("status")))
        for r in objects
        if as_text(r.get("id"))
    )


def disputes_of(objects: Iterable[Mapping[str, Any]]) -> tuple[Dispute, ...]:
    """Dispute objects (``GET /v1/disputes?charge=`` or ``?payment_intent=``)."""
    return tuple(
        Dispute(as_text(d.get("id")), as_text(d.get("status")), as_int(d.get("amount")))
        for d in objects
        if as_text(d.get("id"))
    )


def payment_intent_status(status: str) -> PaymentStatus:
    if status == "succeeded":
        return PaymentStatus.PAID
    if status == "requires_capture":
        return PaymentStatus.AWAITING_CAPTURE
    if status == "canceled":
        return PaymentStatus.CANCELED
    return PaymentStatus.NOT_PAID


def charge_status(charge: Mapping[str, Any]) -> PaymentStatus:
    """A charge's state: captured and succeeded is paid; an uncaptured one that was
    refunded in full has expired (Stripe releases the authorisation as a refund)."""
    if charge.get("status") != "succeeded":
        return PaymentStatus.NOT_PAID
    if charge.get("captured"):
        return PaymentStatus.PAID
    return PaymentStatus.CANCELED if charge.get("refunded") else PaymentStatus.AWAITING_CAPTURE


def invoice_status(status: str) -> PaymentStatus:
    if status == "paid":
        return PaymentStatus.PAID
    if status in ("void", "uncollectible"):
        return PaymentStatus.CANCELED
    return PaymentStatus.NOT_PAID


def invoice_payments_split(
    invoice: Mapping[str, Any], payments: Iterable[Mapping[str, Any]]
) -> tuple[int, int]:
    """(paid through Stripe, paid out of band) in minor units, from InvoicePayments.

    Only payments whose status is ``paid`` count; those through a PaymentIntent or a
    Charge moved money through Stripe, anything else (``out_of_band_payment``) did not.
    What ``amount_paid`` holds beyond the listed Stripe payments is out of band too.
    """
    through_stripe = 0
    for payment in payments:
        if payment.get("status") != "paid":
            continue
        payment_type = as_text((payment.get("payment") or {}).get("type"))
        if payment_type in ("payment_intent", "charge"):
            through_stripe += as_int(payment.get("amount_paid"))
    out_of_band = max(as_int(invoice.get("amount_paid")) - through_stripe, 0)
    return through_stripe, out_of_band


def invoice_tax(invoice: Mapping[str, Any]) -> int:
    """The tax inside the invoice's total: ``total - total_excluding_tax``."""
    total, excluding = invoice.get("total"), invoice.get("total_excluding_tax")
    if isinstance(total, int) and isinstance(excluding, int):
        return max(total - excluding, 0)
    return 0

"""Pure decisions for Stripe events: which payment, how much, for whom, and what a
refund or dispute leaves. Works on the event JSON as Stripe sends it, for API versions
before and after 2025-03-31.basil.

One payment is one ledger entry, whatever subset of its events arrives in whatever order:
- an invoice payment is keyed by the invoice (a subscription checkout names the invoice
  its first payment creates, so checkout and ``invoice.paid`` meet there);
- any other payment by its payment intent (or charge, if it has none).
The other ids of the payment become aliases, so refunds and disputes that name only a
charge or payment intent find the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.ledger.keys import stripe_payment
from partnero_bridge.money import from_minor_units, quantize

SaleEvents = Literal["checkout_invoice", "charges"]
AmountBasis = Literal["excluding_tax", "total"]

CHECKOUT_SALES = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded", "invoice.paid"}
)
CHARGE_SALES = frozenset({"charge.succeeded", "payment_intent.succeeded"})
REVERSALS = frozenset(
    {
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)
IDENTITY = frozenset({"customer.created", "customer.updated"})
LINKS = frozenset({"invoice_payment.paid"})  # basil: ties a payment intent to its invoice

# How much a source's amount is trusted when two events describe the same payment.
_RANK = {"invoice": 3, "checkout": 2, "charge": 1}


@dataclass(frozen=True)
class StripeRules:
    sale_events: SaleEvents = "checkout_invoice"
    amount_basis: AmountBasis = "excluding_tax"

    def sale_types(self) -> frozenset[str]:
        return CHECKOUT_SALES if self.sale_events == "checkout_invoice" else CHARGE_SALES

    def handled_types(self) -> frozenset[str]:
        return self.sale_types() | REVERSALS | IDENTITY | LINKS


def _id(value: Any) -> str | None:
    """An id field that may be a bare id or an expanded object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


# -- attribution ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """Who a payment belongs to, as far as the event itself tells."""

    customer_key: str | None = None  # explicit: metadata or client_reference_id
    partner_key: str | None = None
    opted_out: bool = False
    stripe_customer: str | None = None
    email: str | None = None
    name: str | None = None


def _first(metadata: list[Mapping[str, Any]], *names: str) -> str | None:
    for source in metadata:
        for name in names:
            value = source.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def attribution_from(
    metadata: list[Mapping[str, Any]],
    *,
    client_reference_id: Any = None,
    stripe_customer: Any = None,
    email: Any = None,
    name: Any = None,
) -> Attribution:
    """Metadata is read in order (the object first, then its subscription's)."""
    metadata = [m for m in metadata if isinstance(m, Mapping)]
    key = _first(metadata, "partnero_customer_key", "customer_key")
    if key is None and isinstance(client_reference_id, str) and client_reference_id.strip():
        key = client_reference_id
    opt_out = any(str(m.get("partnero", "")).strip().lower() == "false" for m in metadata)
    return Attribution(
        customer_key=normalize_customer_key(key) if key else None,
        partner_key=_first(metadata, "partnero_partner", "partner_key"),
        opted_out=opt_out,
        stripe_customer=_id(stripe_customer),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        name=name.strip() if isinstance(name, str) and name.strip() else None,
    )


# -- sales --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sale:
    ledger_key: str
    transaction_key: str
    amount: Decimal  # what commissions are computed on, major units
    gross_minor: int  # what was charged, minor units (the base for refunds)
    currency: str
    created_at: int | None
    source: Literal["invoice", "checkout", "charge"]
    attribution: Attribution
    aliases: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        return _RANK[self.source]


@dataclass(frozen=True)
class NotASale:
    reason: str


def _subscription_metadata(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if not isinstance(details, Mapping):  # before basil
        details = invoice.get("subscription_details")
    metadata = details.get("metadata") if isinstance(details, Mapping) else None
    return metadata if isinstance(metadata, Mapping) else {}


def _invoice_payment_intents(invoice: Mapping[str, Any]) -> list[str]:
    found = [_id(invoice.get("payment_intent"))]  # before basil
    payments = invoice.get("payments")
    for entry in (payments.get("data") if isinstance(payments, Mapping) else None) or []:
        payment = entry.get("payment") if isinstance(entry, Mapping) else None
        if isinstance(payment, Mapping):
            found.append(_id(payment.get("payment_intent")))
    return [pi for pi in found if pi]


def _amount(total_minor: int, tax_minor: int, basis: AmountBasis, currency: str) -> Decimal:
    minor = total_minor if basis == "total" else total_minor - tax_minor
    return quantize(from_minor_units(max(minor, 0), currency), currency)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def sale_from_checkout(
    session: Mapping[str, Any], rules: StripeRules, created: int | None
) -> Sale | NotASale:
    if session.get("mode") == "setup":
        return NotASale("a setup session takes no payment")
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return NotASale(f"payment status is {session.get('payment_status')}: not paid yet")
    currency = str(session.get("currency") or "").upper()
    if not currency:
        return NotASale("session has no currency")
    details = session.get("customer_details") or {}
    attribution = attribution_from(
        [session.get("metadata") or {}],
        client_reference_id=session.get("client_reference_id"),
        stripe_customer=session.get("customer"),
        email=details.get("email") or session.get("customer_email"),
        name=details.get("name"),
    )
    total = _int(session.get("amount_total"))
    tax = _int((session.get("total_details") or {}).get("amount_tax"))
    invoice, intent = _id(session.get("invoice")), _id(session.get("payment_intent"))
    session_id = _id(session.get("id")) or ""
    if invoice:
        key, tkey = stripe_payment("invoice", invoice), f"stripe_{invoice}"
    elif intent:
        key, tkey = stripe_payment("pi", intent), f"stripe_{intent}"
    else:
        key, tkey = stripe_payment("cs", session_id), f"stripe_{session_id}"
    aliases = tuple(
        k
        for k in (
            stripe_payment("pi", intent) if intent else None,
            stripe_payment("cs", session_id) if session_id else None,
        )
        if k and k != key
    )
    return Sale(
        key,
        tkey,
        _amount(total, tax, rules.amount_basis, currency),
        total,
        currency,
        created,
        "checkout",
        attribution,
        aliases,
    )


def sale_from_invoice(
    invoice: Mapping[str, Any], rules: StripeRules, created: int | None
) -> Sale | NotASale:
    invoice_id = _id(invoice.get("id"))
    currency = str(invoice.get("currency") or "").upper()
    if not invoice_id or not currency:
        return NotASale("invoice has no id or currency")
    paid = _int(invoice.get("amount_paid"))
    total = _int(invoice.get("total"))
    if rules.amount_basis == "total" or paid != total:
        # Partly paid (credit balance, partial payments): commission what was paid.
        amount = quantize(from_minor_units(paid, currency), currency)
    else:
        excluding = invoice.get("total_excluding_tax")
        if not isinstance(excluding, int):
            excluding = total - _int(invoice.get("tax"))
        amount = quantize(from_minor_units(max(excluding, 0), currency), currency)
    attribution = attribution_from(
        [invoice.get("metadata") or {}, _subscription_metadata(invoice)],
        stripe_customer=invoice.get("customer"),
        email=invoice.get("customer_email"),
        name=invoice.get("customer_name"),
    )
    aliases = [stripe_payment("pi", pi) for pi in _invoice_payment_intents(invoice)]
    charge = _id(invoice.get("charge"))  # before basil
    if charge:
        aliases.append(stripe_payment("ch", charge))
    return Sale(
        stripe_payment("invoice", invoice_id),
        f"stripe_{invoice_id}",
        amount,
        paid,
        currency,
        created,
        "invoice",
        attribution,
        tuple(aliases),
    )


def sale_from_charge(
    obj: Mapping[str, Any], rules: StripeRules, created: int | None
) -> Sale | NotASale:
    """A charge or a payment intent (charge-based mode): tax is not known, so total."""
    is_intent = obj.get("object") == "payment_intent"
    status = obj.get("status")
    if status != "succeeded":
        return NotASale(f"status is {status}")
    currency = str(obj.get("currency") or "").upper()
    intent = _id(obj.get("id")) if is_intent else _id(obj.get("payment_intent"))
    charge = _id(obj.get("latest_charge")) if is_intent else _id(obj.get("id"))
    if not currency or not (intent or charge):
        return NotASale("payment has no id or currency")
    total = _int(obj.get("amount_received") if is_intent else obj.get("amount"))
    billing = (obj.get("billing_details") or {}) if not is_intent else {}
    attribution = attribution_from(
        [obj.get("metadata") or {}],
        stripe_customer=obj.get("customer"),
        email=billing.get("email") or obj.get("receipt_email"),
        name=billing.get("name"),
    )
    key = stripe_payment("pi", intent) if intent else stripe_payment("ch", charge or "")
    tkey = f"stripe_{intent or charge}"
    aliases = (stripe_payment("ch", charge),) if intent and charge else ()
    return Sale(
        key,
        tkey,
        _amount(total, 0, "total", currency),
        total,
        currency,
        created,
        "charge",
        attribution,
        aliases,
    )


def sale_from_event(event: Mapping[str, Any], rules: StripeRules) -> Sale | NotASale:
    obj = (event.get("data") or {}).get("object") or {}
    created = event.get("created") if isinstance(event.get("created"), int) else None
    kind = event.get("type")
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return sale_from_checkout(obj, rules, created)
    if kind == "invoice.paid":
        return sale_from_invoice(obj, rules, created)
    if kind in CHARGE_SALES:
        return sale_from_charge(obj, rules, created)
    return NotASale(f"{kind} is not a sale event")


# -- reversals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    """A refund or dispute, and the ids under which its payment may be recorded."""

    refs: tuple[str, ...]
    kind: Literal["charge_refunded", "refund", "dispute"]
    object_id: str
    amount_minor: int = 0  # refund: this refund; charge.refunded: cumulative on the charge
    counts: bool = True  # refund: false when failed or canceled
    dispute_status: str | None = None  # "open" (created), or the closed status


def reversal_from_event(event: Mapping[str, Any]) -> Reversal | NotASale:
    obj = (event.get("data") or {}).get("object") or {}
    kind = event.get("type")
    intent = _id(obj.get("payment_intent"))
    if kind == "charge.refunded":
        charge = _id(obj.get("id")) or ""
        invoice = _id(obj.get("invoice"))  # before basil
        candidates = [
            stripe_payment("pi", intent) if intent else None,
            stripe_payment("ch", charge),
            stripe_payment("invoice", invoice) if invoice else None,
        ]
        return Reversal(
            tuple(r for r in candidates if r),
            "charge_refunded",
            charge,
            _int(obj.get("amount_refunded")),
        )
    charged = _id(obj.get("charge"))
    refs_list = [
        stripe_payment("pi", intent) if intent else None,
        stripe_payment("ch", charged) if charged else None,
    ]
    refs = tuple(r for r in refs_list if r)
    if not refs:
        return NotASale(f"{kind} names no charge or payment intent")
    if kind in ("refund.created", "refund.updated"):
        status = obj.get("status")
        return Reversal(
            refs,
            "refund",
            _id(obj.get("id")) or "",
            _int(obj.get("amount")),
            counts=status not in ("failed", "canceled"),
        )
    if kind == "charge.dispute.created":
        return Reversal(refs, "dispute", _id(obj.get("id")) or "", dispute_status="open")
    if kind == "charge.dispute.closed":
        # won, lost, warning_closed (an inquiry that never became a chargeback), ...
        status = str(obj.get("status") or "closed")
        return Reversal(refs, "dispute", _id(obj.get("id")) or "", dispute_status=status)
    return NotASale(f"{kind} is not a reversal")

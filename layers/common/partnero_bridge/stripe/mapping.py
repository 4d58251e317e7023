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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

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


def payment_key(kind: Literal["invoice", "pi", "ch", "cs"], stripe_id: str) -> str:
    return f"stripe#{kind}:{stripe_id}"


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


def normalize_customer_key(key: str) -> str:
    """Emails are compared lower-cased everywhere, as sign-ups store them."""
    return key.strip().lower() if "@" in key else key.strip()


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
        key, tkey = payment_key("invoice", invoice), f"stripe_{invoice}"
    elif intent:
        key, tkey = payment_key("pi", intent), f"stripe_{intent}"
    else:
        key, tkey = payment_key("cs", session_id), f"stripe_{session_id}"
    aliases = tuple(
        k
        for k in (
            payment_key("pi", intent) if intent else None,
            payment_key("cs", session_id) if session_id else None,
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
    aliases = [payment_key("pi", pi) for pi in _invoice_payment_intents(invoice)]
    charge = _id(invoice.get("charge"))  # before basil
    if charge:
        aliases.append(payment_key("ch", charge))
    return Sale(
        payment_key("invoice", invoice_id),
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
    key = payment_key("pi", intent) if intent else payment_key("ch", charge or "")
    tkey = f"stripe_{intent or charge}"
    aliases = (payment_key("ch", charge),) if intent and charge else ()
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
            payment_key("pi", intent) if intent else None,
            payment_key("ch", charge),
            payment_key("invoice", invoice) if invoice else None,
        ]
        return Reversal(
            tuple(r for r in candidates if r),
            "charge_refunded",
            charge,
            _int(obj.get("amount_refunded")),
        )
    charged = _id(obj.get("charge"))
    refs_list = [
        payment_key("pi", intent) if intent else None,
        payment_key("ch", charged) if charged else None,
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


# -- what a payment's facts leave for Partnero ----------------------------------------------


@dataclass
class PaymentFacts:
    """Everything the ledger keeps about one payment, as stored in its ``facts``."""

    amount: Decimal | None = None
    gross_minor: int = 0
    currency: str | None = None
    rank: int = 0
    opted_out: bool = False
    charge_refunded: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    failed_refunds: list[str] = field(default_factory=list)  # final: never counted again
    disputes: dict[str, str] = field(default_factory=dict)  # id -> "open" or closed status

    @classmethod
    def load(cls, stored: Mapping[str, Any]) -> PaymentFacts:
        amount = stored.get("amount")
        return cls(
            amount=Decimal(str(amount)) if amount is not None else None,
            gross_minor=int(stored.get("gross_minor") or 0),
            currency=stored.get("currency"),
            rank=int(stored.get("rank") or 0),
            opted_out=bool(stored.get("opted_out")),
            charge_refunded={k: int(v) for k, v in (stored.get("charge_refunded") or {}).items()},
            refunds={k: int(v) for k, v in (stored.get("refunds") or {}).items()},
            failed_refunds=[str(r) for r in stored.get("failed_refunds") or []],
            disputes={k: str(v) for k, v in (stored.get("disputes") or {}).items()},
        )

    def dump(self) -> dict[str, Any]:
        return {
            "amount": str(self.amount) if self.amount is not None else None,
            "gross_minor": self.gross_minor,
            "currency": self.currency,
            "rank": self.rank,
            "opted_out": self.opted_out,
            "charge_refunded": self.charge_refunded,
            "refunds": self.refunds,
            "disputes": self.disputes,
        }

    def add_sale(self, sale: Sale, opted_out: bool) -> None:
        # A weaker source (a checkout) never overrides the amount of a stronger one (its
        # invoice), so both orders of arrival end with the same amount.
        if sale.rank >= self.rank:
            self.amount, self.gross_minor = sale.amount, sale.gross_minor
            self.currency, self.rank = sale.currency, sale.rank
        self.opted_out = self.opted_out or opted_out

    def add_reversal(self, reversal: Reversal) -> None:
        if reversal.kind == "charge_refunded":
            known = self.charge_refunded.get(reversal.object_id, 0)
            self.charge_refunded[reversal.object_id] = max(known, reversal.amount_minor)
        elif reversal.kind == "refund":
            # Events arrive in any order: once failed or canceled, a refund stays so, even
            # if an older "pending" snapshot of it comes in later.
            if not reversal.counts:
                self.refunds.pop(reversal.object_id, None)
                if reversal.object_id not in self.failed_refunds:
                    self.failed_refunds.append(reversal.object_id)
            elif reversal.object_id not in self.failed_refunds:
                self.refunds[reversal.object_id] = reversal.amount_minor
        elif reversal.dispute_status is not None and (
            # Likewise a closed dispute is final: a late "created" does not reopen it.
            reversal.dispute_status != "open" or reversal.object_id not in self.disputes
        ):
            self.disputes[reversal.object_id] = reversal.dispute_status

    @property
    def refunded_minor(self) -> int:
        # The charge's cumulative figure and the sum of single refunds describe the same
        # money: the larger one is the truth so far (either may arrive first).
        return max(sum(self.charge_refunded.values()), sum(self.refunds.values()))

    def commission_amount(self) -> Decimal | None:
        """What Partnero should hold now, or None for nothing."""
        if self.amount is None or self.currency is None or self.opted_out:
            return None
        if any(status in ("open", "lost") for status in self.disputes.values()):
            return None
        amount = self.amount
        if self.refunded_minor and self.gross_minor > 0:
            # Refunds return a share of the whole payment (tax included), so the
            # commission keeps the same share of its amount.
            left = max(self.gross_minor - self.refunded_minor, 0)
            amount = quantize(
                self.amount * Decimal(left) / Decimal(self.gross_minor), self.currency
            )
        return amount if amount > 0 else None

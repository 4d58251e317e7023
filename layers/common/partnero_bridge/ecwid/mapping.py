"""Pure decisions for an Ecwid order: what Partnero should hold for it, and for whom.

Decided from the order as the Ecwid API serves it now (fetched), never from the webhook
that announced it: webhooks are unsigned in their body, repeated and unordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.decision import Target
from partnero_bridge.ecwid.models import EcwidOrder
from partnero_bridge.errors import PermanentError
from partnero_bridge.money import (
    amount_text,
    is_currency,
    json_number,
    money_text,
    quantize,
    remaining_share,
)

AmountBasis = Literal["net", "total", "subtotal"]
PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
# Statuses that never earn a commission, whatever ECWID_PAID_STATUSES says.
NOTHING_DUE = {"REFUNDED": "refunded", "CANCELLED": "cancelled"}


@dataclass(frozen=True)
class EcwidRules:
    amount_basis: AmountBasis = "net"
    partner_field: str = "partnero_partner"
    customer_key: Literal["email", "customerId"] = "email"
    paid_statuses: frozenset[str] = frozenset({"PAID"})
    product_id: Literal["", "productId", "sku"] = ""


class UndecidableOrder(PermanentError):
    """The order's money fields cannot be trusted to compute a commission: a person looks."""

    kind = "undecidable"


def transaction_key(store_id: int | str, order_id: str) -> str:
    """Stable and readable in Partnero's dashboard: ``ecwid_<storeId>_<orderId>``."""
    return f"ecwid_{store_id}_{order_id}"


def basis_amount(order: EcwidOrder, basis: AmountBasis) -> Decimal:
    """The order amount commissions are computed on, before refunds.

    - ``net``: total - tax - shipping - handling fee - custom surcharges (tips and the
      like), the last three without their own tax where Ecwid gives it (that tax is
      already inside ``tax``); discounts are already in total: what the shop earns on
      the goods;
    - ``total``: Ecwid's total, as the customer paid it;
    - ``subtotal``: Ecwid's subtotal (the items before order discounts and shipping).
    """
    if basis == "total":
        return order.total
    needed = order.subtotal if basis == "subtotal" else order.tax
    if needed is None:
        field = "subtotal" if basis == "subtotal" else "tax"
        raise UndecidableOrder(
            f"Ecwid order {order.id} has no {field} (the {basis} basis needs it)"
        )
    if basis == "subtotal":
        return needed
    shipping = order.shippingOption.without_tax if order.shippingOption else Decimal(0)
    handling = order.handlingFee.without_tax if order.handlingFee else Decimal(0)
    surcharges = sum((s.without_tax for s in order.customSurcharges), Decimal(0))
    return order.total - needed - shipping - handling - surcharges


def refunded_amount(order: EcwidOrder) -> Decimal:
    """What was refunded: ``refundedAmount``, or the sum of ``refunds[]`` when it is 0.

    Ecwid fills ``refundedAmount`` for some payment gateways only; ``refunds[]`` lists
    each refund (Ecwid order API reference).
    """
    if order.refundedAmount > 0:
        return order.refundedAmount
    return sum((refund.amount for refund in order.refunds), Decimal(0))


def partner_key(order: EcwidOrder, field: str) -> str | None:
    """The partner key the storefront snippet put in the order's hidden extra field."""
    candidates: list[object] = []
    if order.extraFields:
        candidates.append(order.extraFields.get(field))
    for extra in order.orderExtraFields or []:
        if extra.id == field:
            candidates.append(extra.value)
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def customer_key(
    order: EcwidOrder, store_id: int | str, mode: Literal["email", "customerId"], referred: bool
) -> str | None:
    """The Partnero customer key for the order, or None when nobody can be named.

    The configured identifier first (the email, normalised like every customer key, or
    Ecwid's customer id); else the other one, namespaced; else, only when a partner key
    names who referred the sale, a key of the order itself
    (``ecwid_<storeId>_order_<orderId>``), so a phone or POS order still pays.
    """
    email = normalize_customer_key(order.email) if order.email and order.email.strip() else None
    given = str(order.customerId).strip() if order.customerId is not None else ""
    customer_id = given if given not in ("", "0") else None
    if mode == "customerId" and customer_id:
        return customer_id
    if email:
        return email
    if customer_id:
        return f"ecwid_{store_id}_customer_{customer_id}"
    return f"ecwid_{store_id}_order_{order.id}" if referred else None


def _product_id(order: EcwidOrder, mode: Literal["", "productId", "sku"]) -> str | None:
    if not mode or not order.items:
        return None
    value = getattr(order.items[0], mode)
    return str(value) if value not in (None, "") else None


def _negative_fields(order: EcwidOrder) -> list[str]:
    """The money fields below zero: none may be (a negative one would raise the basis)."""
    fields = {
        "total": order.total,
        "subtotal": order.subtotal or 0,
        "tax": order.tax or 0,
        "refundedAmount": order.refundedAmount,
        "shippingOption": order.shippingOption.without_tax if order.shippingOption else 0,
        "handlingFee": order.handlingFee.without_tax if order.handlingFee else 0,
    }
    fields.update(
        {f"customSurcharges[{i}]": s.without_tax for i, s in enumerate(order.customSurcharges)}
    )
    fields.update({f"refunds[{i}].amount": r.amount for i, r in enumerate(order.refunds)})
    return [name for name, value in fields.items() if value < 0]


def _due(order: EcwidOrder, currency: str, rules: EcwidRules) -> tuple[Decimal | None, str, str]:
    """(amount due or None, reason code, readable detail) from the order's status and money."""
    status = order.paymentStatus
    if status in NOTHING_DUE:
        return None, NOTHING_DUE[status], f"order is {status}"
    if status != PARTIALLY_REFUNDED and status not in rules.paid_statuses:
        return None, "not_paid", f"order is {status}: not a sale (yet)"
    negative = _negative_fields(order)
    if negative:
        raise UndecidableOrder(
            f"Ecwid order {order.id} has negative money fields: {', '.join(negative)}"
        )
    basis = basis_amount(order, rules.amount_basis)
    refunded = refunded_amount(order)
    if basis < 0:
        raise UndecidableOrder(
            f"Ecwid order {order.id} has a negative {rules.amount_basis} basis ({basis})"
        )
    if status == PARTIALLY_REFUNDED and refunded == 0:
        raise UndecidableOrder(
            f"Ecwid order {order.id} is PARTIALLY_REFUNDED but names no refunded amount "
            "(refundedAmount 0, refunds[] empty)"
        )
    if order.total == 0 or basis == 0:
        return None, "zero_amount", f"order is {status} with nothing to commission"
    amount = remaining_share(basis, order.total, refunded, currency)
    of_total = f"{amount_text(refunded, currency)} of {money_text(order.total, currency)} refunded"
    if amount <= 0 and refunded > 0:
        return None, "refunded", f"order is {status}, {of_total}"
    if amount <= 0:
        return None, "zero_amount", f"order is {status} with less than a cent to commission"
    if refunded > 0:
        return amount, "partially_refunded", f"order is {status}, {of_total}"
    return amount, "paid", f"order is {status}"


def decide(order: EcwidOrder, store_id: int | str, currency: str, rules: EcwidRules) -> Target:
    """What Partnero should hold for ``order``.

    Amounts: the basis (``rules.amount_basis``) times the share not refunded,
    ``basis x (total - refunded) / total``, rounded half-up once to ``currency``.

    Raises UndecidableOrder for an unknown currency, negative money fields, or a partial
    refund without an amount.
    """
    currency = currency.upper()
    if not is_currency(currency):
        raise UndecidableOrder(f"Ecwid store currency {currency[:10]!r} is not an ISO 4217 code")
    amount, reason, detail = _due(order, currency, rules)
    if amount is not None:
        try:
            json_number(amount)
        except ValueError:
            raise UndecidableOrder(
                f"Ecwid order {order.id}: {amount} {currency} cannot be sent exactly"
            ) from None
    partner = partner_key(order, rules.partner_field)
    person = order.billingPerson
    words = (person.name or "").split() if person else []
    first = (person.firstName or (words[0] if words else None)) if person else None
    last = (person.lastName or " ".join(words[1:])) if person else None
    return Target(
        transaction_key=transaction_key(store_id, order.id),
        amount=quantize(amount, currency) if amount is not None else None,
        currency=currency,
        reason=reason,
        detail=detail,
        customer_key=customer_key(order, store_id, rules.customer_key, referred=bool(partner)),
        partner_key=partner,
        email=order.email.strip() if order.email and order.email.strip() else None,
        name=first or None,
        surname=last or None,
        created_at=order.createTimestamp,
        product_id=_product_id(order, rules.product_id),
    )

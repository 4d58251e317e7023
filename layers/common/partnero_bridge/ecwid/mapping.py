"""Pure decisions for an Ecwid order: does it earn a commission, how much, for whom.

Decided from the order as it is now (fetched), never from the event that announced it:
events arrive unordered and repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from partnero_bridge.commissions import Commission
from partnero_bridge.ecwid.models import EcwidOrder
from partnero_bridge.money import quantize

AmountBasis = Literal["net", "total", "subtotal"]
REVERSED_STATUSES = frozenset({"REFUNDED", "CANCELLED"})
PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"


@dataclass(frozen=True)
class EcwidRules:
    amount_basis: AmountBasis = "net"
    partner_field: str = "partnero_partner"
    customer_key: Literal["email", "customerId"] = "email"
    paid_statuses: frozenset[str] = frozenset({"PAID"})
    product_id: Literal["", "productId", "sku"] = ""


class Verdict(StrEnum):
    COMMISSION = "commission"  # Partnero should hold this transaction
    REVERSE = "reverse"  # Partnero should hold nothing for this order
    WAIT = "wait"  # not paid yet (or a status the shop does not count): leave as is


@dataclass(frozen=True)
class OrderDecision:
    verdict: Verdict
    reason: str
    commission: Commission | None = None


def ledger_key(store_id: int | str, order_ref: str) -> str:
    return f"ecwid#{store_id}#{order_ref}"


def transaction_key(store_id: int | str, order_id: str) -> str:
    """Stable and readable in Partnero's dashboard: ``ecwid_<storeId>_<orderId>``."""
    return f"ecwid_{store_id}_{order_id}"


def basis_amount(order: EcwidOrder, basis: AmountBasis) -> Decimal:
    """The order amount commissions are computed on.

    - ``net``: total - tax - shipping - handling fee, the last two without their own tax
      (``shippingRateWithoutTax``, ``valueWithoutTax``, else ``shippingRate``, ``value``);
      discounts are already in total: what the shop earns on the goods;
    - ``total``: Ecwid's total, as the customer paid it;
    - ``subtotal``: Ecwid's subtotal (the items before order discounts and shipping).
    """
    if basis == "total":
        return order.total
    if basis == "subtotal":
        return order.subtotal
    # Without their own tax where Ecwid says it: that tax is already inside ``tax``.
    shipping = order.shippingOption.without_tax if order.shippingOption else Decimal(0)
    handling = order.handlingFee.without_tax if order.handlingFee else Decimal(0)
    return order.total - order.tax - shipping - handling


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


def customer_key(order: EcwidOrder, mode: Literal["email", "customerId"]) -> str | None:
    if mode == "customerId":
        return str(order.customerId) if order.customerId not in (None, "", 0) else None
    # Lower-cased, as sign-up does, so both find the same Partnero customer.
    return order.email.strip().lower() if order.email and order.email.strip() else None


def _product_id(order: EcwidOrder, mode: Literal["", "productId", "sku"]) -> str | None:
    if not mode or not order.items:
        return None
    value = getattr(order.items[0], mode)
    return str(value) if value not in (None, "") else None


def decide(
    order: EcwidOrder, store_id: int | str, currency: str, rules: EcwidRules
) -> OrderDecision:
    status = order.paymentStatus
    if status in REVERSED_STATUSES:
        return OrderDecision(Verdict.REVERSE, f"order is {status}")
    if status != PARTIALLY_REFUNDED and status not in rules.paid_statuses:
        return OrderDecision(Verdict.WAIT, f"order is {status}: nothing to send yet")

    amount = basis_amount(order, rules.amount_basis)
    if status == PARTIALLY_REFUNDED:
        # Partnero has no partial refund: the transaction is re-created for what is left.
        amount -= order.refundedAmount
    amount = quantize(max(amount, Decimal(0)), currency)
    if amount <= 0:
        return OrderDecision(Verdict.REVERSE, f"nothing left to commission ({status})")

    key = customer_key(order, rules.customer_key)
    if key is None:
        return OrderDecision(Verdict.WAIT, f"order has no {rules.customer_key}: cannot attribute")
    person = order.billingPerson
    words = (person.name or "").split() if person else []
    first = (person.firstName or (words[0] if words else None)) if person else None
    last = (person.lastName or " ".join(words[1:])) if person else None
    return OrderDecision(
        Verdict.COMMISSION,
        f"order is {status}",
        Commission(
            transaction_key=transaction_key(store_id, order.id),
            amount=amount,
            currency=currency.upper(),
            customer_key=key,
            partner_key=partner_key(order, rules.partner_field),
            email=order.email.strip() if order.email else None,
            name=first or None,
            surname=last or None,
            created_at=order.createTimestamp,
            product_id=_product_id(order, rules.product_id),
        ),
    )

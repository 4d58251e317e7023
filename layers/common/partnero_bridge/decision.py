"""The commission decision, pure: no I/O, no clock, no AWS.

Two questions, answered separately so each can be tested with a table of cases:

1. What should Partnero hold for this order or payment, given what its source says now?
   Each source answers it into a :class:`Target` (``ecwid.mapping``, ``stripe.payment``).
2. Given what Partnero holds (the ledger's word, or Partnero's when unsure) and the
   target, what is the next step? :func:`next_step`, :func:`referral`,
   :func:`guard_paid_out`, :func:`currency_problem` and :func:`stable_identity`.

The reconciler (``commissions.py``) does the I/O around these answers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from partnero_bridge.money import json_number

if TYPE_CHECKING:
    from partnero_bridge.ledger.records import CommissionRecord


@dataclass(frozen=True)
class Commission:
    """One Partnero transaction as the bridge sends it (``POST /v1/transactions``)."""

    transaction_key: str
    amount: Decimal  # major units, already rounded to the currency's minor unit
    currency: str  # ISO 4217, upper case
    customer_key: str
    partner_key: str | None = None
    email: str | None = None
    name: str | None = None
    surname: str | None = None
    created_at: int | None = None  # the sale's time, Unix seconds; kept on re-creation
    product_id: str | None = None
    product_type: str | None = None


@dataclass(frozen=True)
class Target:
    """What the source says Partnero should hold for one order or payment now.

    ``amount`` None means nothing (not paid, refunded, cancelled, deleted). The customer
    key may be missing: then only an identity fixed by an earlier transaction can carry
    the commission, otherwise the sale is not referred.
    """

    transaction_key: str
    amount: Decimal | None
    currency: str
    reason: str  # a short code: "paid", "partially_refunded", "refunded", "not_paid", ...
    detail: str  # the same, readable, with figures
    customer_key: str | None = None
    partner_key: str | None = None
    email: str | None = None
    name: str | None = None
    surname: str | None = None
    created_at: int | None = None
    product_id: str | None = None
    product_type: str | None = None

    def commission(self) -> Commission | None:
        """The transaction to send, or None when nothing (or nobody) is due."""
        if self.amount is None or self.customer_key is None:
            return None
        return Commission(
            transaction_key=self.transaction_key,
            amount=self.amount,
            currency=self.currency,
            customer_key=self.customer_key,
            partner_key=self.partner_key,
            email=self.email,
            name=self.name,
            surname=self.surname,
            created_at=self.created_at,
            product_id=self.product_id,
            product_type=self.product_type,
        )


def stable_identity(target: Target, previous: CommissionRecord | None) -> Target:
    """The target with the identity fixed when the payment's first transaction was made.

    The source's current state decides amount and status; who the commission belongs to
    (transaction key, customer, partner, sale date) never changes after the first
    transaction, even if the order's email or the partner field is edited later.
    """
    if previous is None or not previous.identity_fixed or not previous.customer_key:
        return target
    assert previous.transaction_key is not None
    return replace(
        target,
        transaction_key=previous.transaction_key,
        customer_key=previous.customer_key,
        partner_key=previous.partner_key,
        created_at=previous.created_at_epoch or target.created_at,
    )


class Step(StrEnum):
    """What to do to Partnero next, from what it holds and what it should hold."""

    NOTHING = "nothing"  # nothing held, nothing due
    KEEP = "keep"  # it holds exactly what is due
    CREATE = "create"
    REPLACE = "replace"  # delete, then create with the new amount (no partial refund API)
    DELETE = "delete"
    ADJUST = "adjust"  # a change is due but the reward is paid: record it, touch nothing


def next_step(held: Decimal | None, due: Decimal | None) -> Step:
    """``held``: what Partnero holds (None: nothing); ``due``: what it should hold."""
    if due is None:
        return Step.NOTHING if held is None else Step.DELETE
    if held is None:
        return Step.CREATE
    return Step.KEEP if held == due else Step.REPLACE


def guard_paid_out(step: Step, reward_paid: bool) -> Step:
    """A transaction whose reward was paid is never deleted or re-created.

    Deleting it would not take the money back from the partner; the needed adjustment is
    recorded and shown instead, for a person to settle.
    """
    if reward_paid and step in (Step.DELETE, Step.REPLACE):
        return Step.ADJUST
    return step


class Referral(StrEnum):
    SEND = "send"  # a partner key, or a customer Partnero knows: send the transaction
    CHECK_CUSTOMER = "check_customer"  # ask Partnero whether it knows the customer
    WAIT_FOR_SIGNUP = "wait_for_signup"  # unknown yet: its sign-up may still be on the way
    NOT_REFERRED = "not_referred"


def referral(
    partner_key: str | None, customer_known: bool | None, waited: float, wait_seconds: float
) -> Referral:
    """Whether a sale is referred, from documented facts only.

    With a partner key the transaction creates its customer (Partnero answers 400 for an
    invalid key: not referred). Without one, the customer must exist in Partnero (from a
    sign-up): ``customer_known`` None means not asked yet; False means Partnero answered
    404. A sale may arrive before its sign-up, so an unknown customer waits
    ``wait_seconds`` from the delivery's receipt before the sale is not referred.
    """
    if partner_key or customer_known:
        return Referral.SEND
    if customer_known is None:
        return Referral.CHECK_CUSTOMER
    return Referral.WAIT_FOR_SIGNUP if waited < wait_seconds else Referral.NOT_REFERRED


def currency_problem(currency: str, program_currency: str, converts: bool) -> str | None:
    """Why a transaction in ``currency`` cannot be sent to the program, or None.

    Partnero ignores ``amount_units`` unless the program converts currencies, so a 50.00
    EUR sale in a USD program would be counted as 50.00 USD.
    """
    if not program_currency or converts or currency.upper() == program_currency.upper():
        return None
    return (
        f"the payment is in {currency.upper()} but the Partnero program counts "
        f"{program_currency.upper()} and does not convert currencies"
    )


def transaction_request(commission: Commission) -> dict[str, Any]:
    """Partnero's ``POST /v1/transactions`` body.

    With a partner key the customer is created in the same call (``create_customer``);
    the partner goes both in ``customer.partner`` (docs.partnero.com) and at the top level
    (the older developers.partnero.com reference and the PHP SDK): the same value twice
    survives whichever form the live API reads. Without one the transaction goes to an
    existing customer (from a sign-up).
    """
    customer: dict[str, Any] = {"key": commission.customer_key}
    body: dict[str, Any] = {
        "customer": customer,
        "key": commission.transaction_key,
        "amount": json_number(commission.amount),
        "amount_units": commission.currency.upper(),
        "action": "sale",
    }
    if commission.partner_key:
        customer["partner"] = {"key": commission.partner_key}
        body["partner"] = {"key": commission.partner_key}
        for field in ("email", "name", "surname"):
            value = getattr(commission, field)
            if value:
                customer[field] = value
        body["options"] = {"create_customer": True}
    if commission.product_id:
        body["product_id"] = commission.product_id
    if commission.product_type:
        body["product_type"] = commission.product_type
    if commission.created_at:
        body["created_at"] = commission.created_at
    return body

"""Every key scheme of the ledger table, in one place.

The table has one string partition key, ``pk``; the prefix names the item type. The
schemes below are what the previous releases wrote too, so a deployed stack keeps reading
its history (changing the table's key schema would make CloudFormation replace it).
"""

from __future__ import annotations

from typing import Literal

StripeObject = Literal["invoice", "pi", "ch", "cs"]

META = "meta#ledger"


def customer(customer_key: str) -> str:
    """A Partnero customer as sign-ups (and not-referred sales) know it."""
    return f"customer#{customer_key}"


def ecwid_order(store_id: int | str, internal_id: int | str | None, order_id: str) -> str:
    """An Ecwid order's commission, keyed by the fetched order's internal id.

    Orders without an internal id (not seen on current stores) fall back to the
    public id, in the alias namespace so the two can never collide.
    """
    if internal_id is not None and str(internal_id):
        return f"ecwid#{store_id}#{internal_id}"
    return ecwid_order_alias(store_id, order_id)


def ecwid_order_alias(store_id: int | str, order_id: str) -> str:
    """Points from an order's public id (``K8XTQ``) at its commission item."""
    return f"ecwid#{store_id}#id:{order_id}"


def stripe_payment(prefix: StripeObject, stripe_id: str) -> str:
    """A Stripe payment's commission: ``prefix`` abbreviates its object type."""
    return f"stripe#{prefix}:{stripe_id}"


def stripe_customer(stripe_customer_id: str) -> str:
    return f"stripe-customer#{stripe_customer_id}"


def reconcile_checkpoint(scope: str, window: str) -> str:
    """Where a reconciliation of ``scope`` (``stripe``, ``ecwid:<storeId>``) over ``window``
    keeps its progress; its pages of results are ``<this>#page#<n>``."""
    return f"reconcile#{scope}#{window}"

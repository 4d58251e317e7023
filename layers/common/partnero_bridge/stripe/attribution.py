"""Who a Stripe payment belongs to: the referral its objects' metadata names.

Read in order (the payment's own object first, then its subscription's, its checkout
session's and its customer's): metadata ``partnero_customer_key`` (or Partnero's own
``customer_key``), else the session's ``client_reference_id``, is the customer key;
``partnero_partner`` (or ``partner_key``) the partner; ``partnero: "false"`` anywhere opts
the payment out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.stripe.fields import stripe_id

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
        stripe_customer=stripe_id(stripe_customer),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        name=name.strip() if isinstance(name, str) and name.strip() else None,
    )

"""One rule for Partnero customer keys, whichever source names the customer.

Sign-ups, Ecwid orders and Stripe payments must land on the same Partnero customer when
they name the same person, so every key goes through :func:`normalize_customer_key`:
surrounding spaces removed, and e-mail-shaped keys (containing ``@``) lower-cased, since
mailboxes are compared case-insensitively in practice. Other keys (a shop's own customer
ids) keep their case.
"""

from __future__ import annotations


def normalize_customer_key(key: str) -> str:
    """``" Jane.Doe@Example.com "`` -> ``"jane.doe@example.com"``; ``"Cus_A1"`` unchanged."""
    key = key.strip()
    return key.lower() if "@" in key else key

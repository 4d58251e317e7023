"""Pure decisions of the sign-up flow: who is referred, the delivery id, the Partnero body."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from partnero_bridge.customer_keys import normalize_customer_key
from partnero_bridge.signup.models import SignupDelivery, SignupRequest, valid_token

PARTNER_COOKIE = "partnero_partner"


def partner_from_cookies(cookies: list[str] | None) -> str | None:
    """The ``partnero_partner`` cookie's value (URL-decoded), if the browser sent one.

    The value passes the same check as the body's ``partner_key`` (1-255 characters, no
    spaces or control characters). One that fails is treated as no cookie rather than
    refusing the sign-up: the visitor cannot fix a cookie, and the body's
    ``partner_key``, when sent, wins anyway. The first valid one counts.
    """
    for cookie in cookies or []:
        for pair in cookie.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name == PARTNER_COOKIE:
                partner = valid_token(unquote(value.strip().strip('"')))
                if partner is not None:
                    return partner
    return None


def to_delivery(
    request: SignupRequest, cookie_partner: str | None, trusted: bool
) -> SignupDelivery | None:
    """What to send for a sign-up; ``None`` when nobody referred it (nothing to send)."""
    partner_key = request.partner_key or cookie_partner
    if not partner_key:
        return None
    return SignupDelivery(
        # One rule for every source, so Ecwid and Stripe, which default to the email as
        # key, find the same customer (and the same person signing up twice is one).
        customer_key=normalize_customer_key(request.key or request.email),
        partner_key=partner_key,
        email=request.email,
        name=request.name or None,
        surname=request.surname or None,
        referral_url=request.referral_url,
        tags=list(request.tags) if request.tags else None,
        trusted=trusted,
    )


def delivery_id(delivery: SignupDelivery) -> str:
    """A sign-up is identified by who signed up through whom.

    Repeating the same sign-up (a double click, a retried request, the same form sent
    again) yields the same id, so idempotency drops the repeat before it reaches Partnero.
    A signed sign-up has an id of its own: an unsigned copy sent first (which
    ``SIGNUP_SALES_CLAIMED_BY=signed`` does not send) must not make it a duplicate.
    """
    identity = f"{delivery.customer_key}\x1f{delivery.partner_key}"
    if delivery.trusted:
        identity += "\x1fsigned"
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return f"signup-{digest[:40]}"


def customer_request(delivery: SignupDelivery) -> dict[str, Any]:
    """The body of ``POST /v1/customers`` (Partnero's current, flat shape)."""
    body: dict[str, Any] = {
        "partner": {"key": delivery.partner_key},
        "key": delivery.customer_key,
        "email": delivery.email,
    }
    if delivery.name:
        body["name"] = delivery.name
    if delivery.surname:
        body["surname"] = delivery.surname
    if delivery.tags:
        body["tags"] = list(delivery.tags)
    if delivery.referral_url:
        body["options"] = {"referral_url": delivery.referral_url}
    return body

"""Stripe's webhook signature: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...][,v0=...]``,
verified over the exact raw body with any configured endpoint secret (see
:mod:`partnero_bridge.timed_signature`)."""

from __future__ import annotations

from partnero_bridge.timed_signature import TOLERANCE_SECONDS, sign, verify

SIGNATURE_HEADER = "stripe-signature"

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_SECONDS", "sign", "verify"]

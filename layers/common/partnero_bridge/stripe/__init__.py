"""Stripe events: every payment counted once, renewals, refunds and disputes."""

"""Ecwid order webhooks: a referred order becomes exactly one Partnero transaction."""

"""The OpenAPI description of the bridge's three routes, built from the code itself.

Routes come from template.yaml and request schemas from the pydantic models, so the
committed ``docs/openapi.json`` can be checked against the code by a test (and rebuilt
with ``partnero-bridge openapi > docs/openapi.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partnero_bridge import __version__
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.signup.models import SignupRequest
from partnero_bridge.stripe.ingest import EventHead
from partnero_bridge_cli.local.template import read_stack

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. invalid_request"},
        "message": {"type": "string", "description": "what is wrong, for a person"},
        "fields": {
            "type": "array",
            "description": "for validation errors: each field and its problem",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}
STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {
            "type": "string",
            "enum": ["accepted", "ignored", "parked", "refused", "dropped"],
            "description": "accepted = queued; ignored = not an event the bridge handles; "
            "parked = an Ecwid store that is not configured, kept for replay; refused = "
            "an Ecwid webhook too old to process (stale); dropped = not kept (the store's "
            "parked webhooks are at their cap). All but accepted are counted and logged.",
        },
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: tuple[int, str]) -> dict[str, Any]:
    return {
        str(code): {"description": text, **_json({"$ref": "#/components/schemas/Error"})}
        for code, text in codes
    }


UNAVAILABLE = (503, "could not be queued right now (or not configured); retry later")


def _schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema


def build(root: Path) -> dict[str, Any]:
    signup, webhook, event = _schema(SignupRequest), _schema(EcwidWebhook), _schema(EventHead)
    components: dict[str, Any] = {
        "Error": ERROR,
        "Status": STATUS,
        "SignupRequest": signup,
        "EcwidWebhook": webhook,
        "StripeEvent": event,
    }
    for schema in (signup, webhook, event):
        components.update(schema.pop("$defs", {}))
    event["additionalProperties"] = True
    event["description"] = "A Stripe Event object; see Stripe's API reference."
    operations: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/signup"): {
            "summary": "Accept a sign-up from a shop's form or backend",
            "description": "Answers 202 for every valid request, referred or not, so the "
            "endpoint never reveals whether a partner key is valid. Server callers must sign; "
            "unsigned calls are accepted only from an allowed browser Origin (a filter for "
            "browsers, not authentication), at most SIGNUP_RATE_LIMIT_PER_MINUTE a minute "
            "per client address.",
            "parameters": [
                {
                    "name": "Origin",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "unsigned (browser) callers: must be in SIGNUP_ALLOWED_ORIGINS",
                },
                {
                    "name": "X-Partnero-Bridge-Signature",
                    "in": "header",
                    "schema": {"type": "string"},
                    "description": "server callers (required without an allowed Origin): "
                    "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
                },
                {
                    "name": "partnero_partner",
                    "in": "cookie",
                    "schema": {"type": "string"},
                    "description": "the partner key when the body has none",
                },
            ],
            "requestBody": {
                "required": True,
                **_json({"$ref": "#/components/schemas/SignupRequest"}),
            },
            "responses": {
                "202": {
                    "description": "accepted",
                    **_json({"$ref": "#/components/schemas/Status"}),
                },
                **_errors(
                    (400, "not a JSON object"),
                    (401, "bad signature, or unsigned without an allowed Origin"),
                    (403, "browser origin not allowed"),
                    (413, "body too large"),
                    (415, "not JSON"),
                    (422, "a field is missing or wrong"),
                    (429, "too many unsigned calls from this address this minute; Retry-After"),
                    UNAVAILABLE,
                ),
            },
        },
        ("OPTIONS", "/signup"): {
            "summary": "CORS preflight for browser callers",
            "parameters": [
                {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "204": {"description": "allowed origin: CORS headers"},
                **_errors((400, "no Origin header"), (403, "origin not allowed")),
            },
        },
        ("POST", "/webhooks/ecwid"): {
            "summary": "Receive an Ecwid webhook",
            "description": "Answers 200 once the webhook is queued (or parked, for a store "
            "not in ECWID_STORE_IDS); a webhook whose signed eventCreated is older than "
            "ECWID_MAX_EVENT_AGE_SECONDS (48 hours) is answered 200 with status refused, so "
            "Ecwid stops retrying it, and is not processed.",
            "parameters": [
                {
                    "name": "X-Ecwid-Webhook-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "base64 HMAC-SHA256 of '{eventCreated}.{eventId}'",
                }
            ],
            "requestBody": {
                "required": True,
                **_json({"$ref": "#/components/schemas/EcwidWebhook"}),
            },
            "responses": {
                "200": {
                    "description": "queued, parked, or acknowledged and not processed",
                    **_json({"$ref": "#/components/schemas/Status"}),
                },
                **_errors(
                    (400, "not a JSON object"),
                    (401, "bad or missing signature"),
                    (413, "body too large"),
                    (422, "not an Ecwid webhook, or eventCreated more than 5 minutes ahead"),
                    UNAVAILABLE,
                ),
            },
        },
        ("POST", "/webhooks/stripe"): {
            "summary": "Receive a Stripe event",
            "parameters": [
                {
                    "name": "Stripe-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
                }
            ],
            "requestBody": {
                "required": True,
                **_json({"$ref": "#/components/schemas/StripeEvent"}),
            },
            "responses": {
                "200": {
                    "description": "queued, or acknowledged and ignored",
                    **_json({"$ref": "#/components/schemas/Status"}),
                },
                **_errors(
                    (400, "bad signature, stale timestamp or not JSON"),
                    (413, "body too large"),
                    (422, "not a Stripe event"),
                    UNAVAILABLE,
                ),
            },
        },
    }
    routes = {(r.method, r.path) for r in read_stack(root).routes()}
    if routes != set(operations):
        raise ValueError(f"template routes {sorted(routes)} differ from the described ones")
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in sorted(operations.items()):
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "partnero-bridge",
            "version": __version__,
            "description": "Sign-ups, Ecwid order webhooks and Stripe events in; "
            "Partnero customers and transactions out.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }

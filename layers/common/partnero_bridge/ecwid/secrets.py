"""The two Ecwid secrets, split by use.

- The webhook secret (``ECWID_WEBHOOK_SECRET_ARN``) holds the app's client secrets, which
  sign webhooks: ``{"client_secrets": ["...", "..."]}`` (several while one is rotated; a
  legacy single ``"client_secret": "..."`` is read too). Ingest, the code that answers the
  internet, reads only this one.
- The API secret (``ECWID_API_SECRET_ARN``) holds each store's access token:
  ``{"store_tokens": {"<storeId>": "secret_..."}}``. Only processing reads it, to fetch
  orders.

Errors name the field that is wrong, never a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnero_bridge.errors import ConfigurationError

if TYPE_CHECKING:
    from partnero_bridge.runtime import Runtime


def webhook_client_secrets(runtime: Runtime) -> list[str]:
    """Every configured client secret (possibly none: then nothing verifies)."""
    secret = runtime.secrets.read(runtime.settings.ecwid_webhook_secret_arn)
    listed = secret.get("client_secrets")
    if listed is None:
        listed = []
    if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
        raise ConfigurationError("ecwid webhook secret: client_secrets is not a list of strings")
    legacy = secret.get("client_secret")
    if legacy is not None and not isinstance(legacy, str):
        raise ConfigurationError("ecwid webhook secret: client_secret is not a string")
    found: list[str] = []
    for candidate in [*listed, legacy or ""]:
        candidate = candidate.strip()
        if candidate and candidate not in found:
            found.append(candidate)
    return found


def ecwid_store_tokens(runtime: Runtime) -> dict[str, str]:
    """Store id -> access token, from the API secret."""
    secret = runtime.secrets.read(runtime.settings.ecwid_api_secret_arn)
    tokens = secret.get("store_tokens")
    if tokens is None:
        return {}
    if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in tokens.values()):
        raise ConfigurationError("ecwid API secret: store_tokens is not an object of strings")
    return {str(store).strip(): token for store, token in tokens.items()}

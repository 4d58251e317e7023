"""What the bridge's three HTTP clients (Partnero, Ecwid, Stripe) share: one connection
pool per container with the same timeouts, and transport failures turned into retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from partnero_bridge.errors import ConfigurationError, RetryableError

USER_AGENT = "partnero-bridge/0.1"
# Connecting gets at most this long (less when the client's timeout is shorter).
CONNECT_TIMEOUT_SECONDS = 3.0


def pooled_client(
    base_url: str,
    timeout_seconds: float,
    headers: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client for one API. Connecting gets at most 3 s: a remote that cannot even be
    reached is a retry, not a stuck invocation."""
    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx.Timeout(
            timeout_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)
        ),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **headers},
        transport=transport,
    )


def send(
    client: httpx.Client, service: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """``client.request``; a timeout or connection failure raises RetryableError naming
    ``service`` (``"Partnero"``, ``"Stripe retrieve charges"``) and the failure's kind.

    A redirect (3xx) raises ConfigurationError: redirects are not followed, so it is never
    an answer to the request but a wrong or moved API URL or a maintenance page in front
    of the API; the delivery is retried until that is fixed, not dead-lettered.
    """
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{service} did not answer in time ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"{service} connection failed ({type(exc).__name__})") from None
    if 300 <= response.status_code < 400:
        raise ConfigurationError(
            f"{service} answered {response.status_code}, a redirect to "
            f"{_host(response.headers.get('location'))}: check its API URL"
        )
    return response


def _host(location: str | None) -> str:
    """Only the redirect target's host: its path or query may carry more than a log should."""
    try:
        return httpx.URL(location or "").host or "no host"
    except (httpx.InvalidURL, ValueError, TypeError):
        return "an unreadable location"

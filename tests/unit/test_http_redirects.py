"""A redirect from Partnero, Ecwid or Stripe is retried within the retry window, never
dead-lettered at once.

The clients do not follow redirects, so a 3xx is never an answer the bridge can use: it
comes from a wrong or moved API URL (http to https, a trailing slash, a new host) or a
maintenance redirect in front of the API. Neither says the request itself is wrong, so
each delivery must wait for the fix like any configuration error, not go to the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from partnero_bridge.ecwid.client import EcwidClient
from partnero_bridge.errors import ConfigurationError, PermanentError, RetryableError
from partnero_bridge.partnero import PartneroClient
from partnero_bridge.stripe.client import StripeClient

pytestmark = pytest.mark.unit

API_KEY = "redirect-test-api-key-93be"
REDIRECTS = [300, 301, 302, 303, 304, 307, 308]


def redirect(status: int, location: str | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        target = location or str(request.url).replace("https://", "https://maintenance.")
        return httpx.Response(status, headers={"Location": target}, text="Moved")

    return httpx.MockTransport(handler)


def partnero_call(status: int) -> Callable[[], object]:
    client = PartneroClient(
        "https://api.partnero.test/v1",
        lambda: API_KEY,
        timeout_seconds=2.0,
        transport=redirect(status),
    )
    return lambda: client.create_customer({"key": "ada@example.com"})


def ecwid_call(status: int) -> Callable[[], object]:
    client = EcwidClient("https://app.ecwid.test/api/v3", 2.0, transport=redirect(status))
    return lambda: client.order(1003, "Q7MXT", "secret_token")


def stripe_call(status: int) -> Callable[[], object]:
    client = StripeClient(
        base_url="https://api.stripe.test/",
        api_key=lambda: "rk_test_redirect",
        timeout_seconds=2.0,
        transport=redirect(status),
    )
    return lambda: client.retrieve("charges", "ch_1")


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize(
    ("service", "call"),
    [("Partnero", partnero_call), ("Ecwid", ecwid_call), ("Stripe", stripe_call)],
)
def test_a_redirect_is_a_configuration_error_that_is_retried(
    service: str, call: Callable[[int], Callable[[], object]], status: int
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        call(status)()

    assert not isinstance(caught.value, PermanentError)
    assert service in caught.value.reason
    assert str(status) in caught.value.reason
    assert "URL" in caught.value.reason
    assert API_KEY not in caught.value.reason


@pytest.mark.parametrize("location", ["http://[::1", "https://status.partnero.test/?t=abc", ""])
def test_the_reason_names_only_the_redirect_target_host(location: str) -> None:
    client = PartneroClient(
        "https://api.partnero.test/v1",
        lambda: API_KEY,
        timeout_seconds=2.0,
        transport=redirect(302, location),
    )
    # (An unreadable Location may fail in httpx already: a retry as well.)
    with pytest.raises(RetryableError) as caught:
        client.get_customer("ada@example.com")

    assert "t=abc" not in caught.value.reason
    assert ("status.partnero.test" in caught.value.reason) == ("status." in location)

"""One local stack for the e2e tests, started as `make run` starts it, with Partnero, Ecwid
and the Stripe API replaced by their local fakes (the real services cannot be reached from
here)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.support.leaks import log_leaks
from tests.support.local_stack import RunningStack

PARTNERO_KEY = "e2e-partnero-key-71aa"
SHOP = "https://shop.example"
ECWID_STORE = 1003
ECWID_TOKEN = "secret_e2e_store_token"
ECWID_CLIENT_SECRET = "e2e-ecwid-client-secret"
STRIPE_SECRET = "whsec_e2e_endpoint_secret"
STRIPE_API_KEY = "rk_test_e2e_reader_5c0d"
SIGNUP_SECRET = "e2e-signup-hmac-secret-3b7e"
# Unsigned sign-ups per client address per minute: above what the session's tests send
# from 127.0.0.1 together; the flood test sends from addresses of its own.
SIGNUP_RATE_LIMIT = 20


@pytest.fixture(scope="session")
def partnero() -> Iterator[PartneroSandbox]:
    with PartneroSandbox(api_key=PARTNERO_KEY, partners=("demo-partner",)) as server:
        yield server


@pytest.fixture(scope="session")
def ecwid() -> Iterator[FakeEcwid]:
    with FakeEcwid(stores={ECWID_STORE: ECWID_TOKEN}) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_api() -> Iterator[FakeStripeApi]:
    with FakeStripeApi(api_keys=[STRIPE_API_KEY]) as server:
        yield server


def connected(
    partnero: PartneroSandbox, ecwid: FakeEcwid, stripe_api: FakeStripeApi
) -> dict[str, str]:
    """A local stack's settings that connect it to the fakes of this run."""
    return {
        "PARTNERO_API_URL": partnero.url,
        "PARTNERO_API_KEY": PARTNERO_KEY,
        "ECWID_API_URL": ecwid.url,
        "ECWID_CLIENT_SECRET": ECWID_CLIENT_SECRET,
        "ECWID_STORE_TOKENS": json.dumps({str(ECWID_STORE): ECWID_TOKEN}),
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "STRIPE_LIVEMODE": "false",
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": STRIPE_API_KEY,
    }


@pytest.fixture(scope="session")
def stack(
    partnero: PartneroSandbox, ecwid: FakeEcwid, stripe_api: FakeStripeApi
) -> Iterator[RunningStack]:
    running = RunningStack(
        {
            **connected(partnero, ecwid, stripe_api),
            "SIGNUP_ALLOWED_ORIGINS": f"{SHOP},{{shop_url}}",
            "SIGNUP_HMAC_SECRET": SIGNUP_SECRET,
            "SIGNUP_RATE_LIMIT_PER_MINUTE": str(SIGNUP_RATE_LIMIT),
            # Shorter than any fault a test injects, so a hanging Partnero becomes a retry fast.
            "PARTNERO_TIMEOUT_SECONDS": "2",
            "BRIDGE_MAX_RECEIVES": "3",
            "BRIDGE_RETRY_BASE_SECONDS": "1",
            # A sale without a partner waits this long for its sign-up (900 s deployed).
            "BRIDGE_SIGNUP_WAIT_SECONDS": "3",
            # The fakes have no rate limit: the nightly reconciliation runs unpaced.
            "RECONCILE_API_SHARE": "0",
        }
    )
    yield running
    assert running.stop() == 0, running.output()
    # Everything the stack logged during the whole e2e run: no secret, no raw email.
    secrets = {
        PARTNERO_KEY,
        ECWID_TOKEN,
        ECWID_CLIENT_SECRET,
        STRIPE_SECRET,
        STRIPE_API_KEY,
        SIGNUP_SECRET,
    }
    problems = log_leaks(running.output(), secrets)
    assert not problems, f"the local stack's logs leak: {sorted(set(problems))}"


@pytest.fixture(autouse=True)
def clean_fakes(partnero: PartneroSandbox, ecwid: FakeEcwid, stripe_api: FakeStripeApi) -> None:
    partnero.reset()
    ecwid.clear_faults()
    # Each test loads what Stripe holds for its own events (see tests/support/stripe.py).
    stripe_api.reset()

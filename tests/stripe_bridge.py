"""Setup shared by the tests that run the bridge in-process against the Partnero sandbox
and the fake Stripe API (explain, forget): the environment, a Stripe sample delivered as
Stripe would, and a runtime with one function's settings, as the CLI builds one."""

from __future__ import annotations

from partnero_bridge.config import BridgeSettings
from partnero_bridge.runtime import Runtime
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stack import function_environment
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from tests.conftest import SANDBOX_KEY
from tests.support.inprocess import ROOT, InProcessBridge
from tests.support.stripe import load, signed
from tests.support.stripe import state as sidecar


def stripe_bridge_env(
    sandbox: PartneroSandbox, stripe_api: FakeStripeApi, *, secret: str, api_key: str
) -> dict[str, str]:
    """The bridge's settings for the sandbox and the fake Stripe API (test mode), with
    ``secret`` as the webhook signing secret and ``api_key`` as Stripe's key."""
    return {
        "PARTNERO_API_URL": sandbox.url,
        "PARTNERO_API_KEY": SANDBOX_KEY,
        "STRIPE_API_URL": stripe_api.url,
        "STRIPE_API_KEY": api_key,
        "STRIPE_WEBHOOK_SECRETS": secret,
        "STRIPE_LIVEMODE": "false",
    }


def deliver_stripe(
    bridge: InProcessBridge, stripe_api: FakeStripeApi, name: str, secret: str
) -> None:
    """Stripe holds the sample ``name``'s objects and sends its event, signed with
    ``secret``; the bridge accepts it (processing is left to the caller's drain)."""
    event = load(name)
    stripe_api.load_event(event, sidecar(name))
    raw, headers = signed(event, secret)
    assert bridge.call("POST", "/webhooks/stripe", raw, headers).status == 200


def runtime_of(bridge: InProcessBridge, function: str) -> Runtime:
    """A runtime with the settings ``function`` has in this bridge (as explain builds one)."""
    spec = bridge.stack.functions[function]
    resolver = bridge.resources.resolver(bridge.parameters)
    env = function_environment(spec, resolver, bridge.user_env, "", ROOT / "layers" / "common")
    return Runtime(BridgeSettings.from_environ(env))

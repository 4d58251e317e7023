"""The local stack's configuration: environment variables become template parameters and
function settings as a deployment's would; secret values go only to Secrets Manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from partnero_bridge.config import BridgeSettings
from partnero_bridge_cli.local.aws import SECRET_VARIABLES, secret_seeds
from partnero_bridge_cli.local.stack import (
    DEMO_ECWID_STORE,
    function_environment,
    local_ecwid_store_ids,
    parameter_overrides,
    workers_of,
)
from partnero_bridge_cli.local.template import Resolver, StackModel, read_stack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FIRST_CLIENT_SECRET = "local-config-first-client-secret"
SECOND_CLIENT_SECRET = "local-config-second-client-secret"
STORE_TOKEN = "secret_local_config_store_token"


@pytest.fixture(scope="module")
def stack() -> StackModel:
    return read_stack(ROOT)


def settings_of(stack: StackModel, function: str, user_env: dict[str, str]) -> BridgeSettings:
    parameters = parameter_overrides(stack, user_env)
    refs = {
        logical_id: f"local-{logical_id}"
        for logical_id in [*stack.queues, *stack.tables, *stack.secrets]
    }
    env = function_environment(
        stack.functions[function],
        Resolver(parameters, refs, {}),
        user_env,
        "http://127.0.0.1:4566",
        ROOT / "layers" / "common",
    )
    for name in SECRET_VARIABLES:
        assert name not in env, name
    return BridgeSettings.from_environ(env)


USER_ENV = {
    "ECWID_STORE_IDS": "1003,2042",
    "ECWID_MAX_EVENT_AGE_SECONDS": "7200",
    "BRIDGE_SIGNUP_WAIT_SECONDS": "60",
    "BRIDGE_RETRIGGER_DAYS": "7",
    "PARTNERO_PROGRAM_CURRENCY": "EUR",
    "PARTNERO_CONVERTS_CURRENCIES": "true",
    "ECWID_CLIENT_SECRET": f"{FIRST_CLIENT_SECRET},{SECOND_CLIENT_SECRET}",
}


def test_ecwid_ingest_settings(stack: StackModel) -> None:
    settings = settings_of(stack, "EcwidOrderIngestFunction", USER_ENV)

    assert settings.ecwid_store_ids == ["1003", "2042"]
    assert settings.ecwid_max_event_age_seconds == 7200
    assert settings.ecwid_webhook_secret_arn == "local-EcwidWebhookSecret"
    assert settings.parked_table == "local-ParkedWebhooksTable"
    assert settings.work_queue_url == "local-EcwidOrderQueue"


def test_ecwid_process_settings(stack: StackModel) -> None:
    settings = settings_of(stack, "EcwidOrderProcessFunction", USER_ENV)

    assert settings.ecwid_api_secret_arn == "local-EcwidSecret"
    assert settings.signup_wait_seconds == 60
    assert settings.partnero_program_currency == "EUR"
    assert settings.partnero_converts_currencies is True
    assert (settings.work_queue_url, settings.dead_letter_queue_url) == (
        "local-EcwidOrderQueue",
        "local-EcwidOrderDeadLetterQueue",
    )


def test_stripe_function_settings(stack: StackModel) -> None:
    settings = settings_of(stack, "StripeEventProcessFunction", USER_ENV)

    assert settings.signup_wait_seconds == 60
    assert settings.partnero_program_currency == "EUR"
    assert settings.partnero_converts_currencies is True


def test_signup_function_settings(stack: StackModel) -> None:
    settings = settings_of(stack, "SignupProcessFunction", USER_ENV)

    assert settings.retrigger_days == 7
    assert settings.ecwid_queue_url == "local-EcwidOrderQueue"
    assert settings.stripe_queue_url == "local-StripeEventQueue"


def test_defaults_without_any_variable(stack: StackModel) -> None:
    ecwid_ingest = settings_of(stack, "EcwidOrderIngestFunction", {})
    ecwid = settings_of(stack, "EcwidOrderProcessFunction", {})
    signup = settings_of(stack, "SignupProcessFunction", {})

    assert ecwid_ingest.ecwid_store_ids == []
    assert ecwid_ingest.ecwid_max_event_age_seconds == 48 * 3600
    assert ecwid.signup_wait_seconds == 900
    assert (ecwid.partnero_program_currency, ecwid.partnero_converts_currencies) == ("", False)
    assert (ecwid.retry_window_seconds, ecwid.max_receives) == (259200, 200)
    assert signup.retrigger_days == 30
    assert signup.signup_partner_budget_per_hour == 200


def test_secrets_are_seeded_apart() -> None:
    seeds = secret_seeds(
        {
            "ECWID_CLIENT_SECRET": f" {FIRST_CLIENT_SECRET} , {SECOND_CLIENT_SECRET},",
            "ECWID_STORE_TOKENS": f'{{"1003": "{STORE_TOKEN}"}}',
        }
    )

    assert seeds["EcwidWebhookSecret"] == {
        "client_secrets": [FIRST_CLIENT_SECRET, SECOND_CLIENT_SECRET]
    }
    assert seeds["EcwidSecret"] == {"store_tokens": {"1003": STORE_TOKEN}}


@pytest.mark.parametrize("tokens", ["not json", "[1, 2]"])
def test_store_tokens_must_be_an_object(tokens: str) -> None:
    with pytest.raises(SystemExit, match="ECWID_STORE_TOKENS"):
        secret_seeds({"ECWID_STORE_TOKENS": tokens})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            {"ECWID_STORE_IDS": "7,8", "ECWID_STORE_TOKENS": '{"9": "t"}'}, "7,8", id="set"
        ),
        pytest.param({"ECWID_STORE_IDS": ""}, "", id="set-empty"),
        pytest.param({"ECWID_STORE_TOKENS": '{"9": "t", "10": "u"}'}, "9,10", id="tokens"),
        pytest.param({}, DEMO_ECWID_STORE, id="fake-ecwid-demo-store"),
        pytest.param({"ECWID_API_URL": "https://app.ecwid.com/api/v3"}, "", id="real-ecwid"),
    ],
)
def test_local_store_ids_default_to_the_stores_with_a_token(
    env: dict[str, str], expected: str
) -> None:
    assert local_ecwid_store_ids(env) == expected


def test_the_stripe_api_key_goes_to_its_secret_and_the_url_to_the_function(
    stack: StackModel,
) -> None:
    env = {"STRIPE_API_URL": "http://127.0.0.1:4030", "STRIPE_API_KEY": "rk_test_local_config"}

    assert secret_seeds(env)["StripeApiSecret"] == {"api_key": "rk_test_local_config"}
    settings = settings_of(stack, "StripeEventProcessFunction", env)  # the key is not passed
    assert settings.stripe_api_url == "http://127.0.0.1:4030"
    assert settings.stripe_api_secret_arn == "local-StripeApiSecret"


def test_each_source_runs_as_an_ingest_and_a_process_function(stack: StackModel) -> None:
    routes = {(r.method, r.path): r.function for r in stack.routes()}
    assert routes == {
        ("POST", "/signup"): "SignupIngestFunction",
        ("OPTIONS", "/signup"): "SignupIngestFunction",
        ("POST", "/webhooks/ecwid"): "EcwidOrderIngestFunction",
        ("POST", "/webhooks/stripe"): "StripeEventIngestFunction",
    }
    for queue in ("SignupQueue", "EcwidOrderQueue", "StripeEventQueue"):
        process = stack.consumer_of(queue)
        assert process.logical_id == queue.replace("Queue", "ProcessFunction")
        # The worker imports the template's handler with the template's timeout.
        assert (process.handler, process.timeout) == ("process.handler", 120)
        assert (process.code_dir / "process.py").is_file()
    for route_function in set(routes.values()):
        ingest = stack.functions[route_function]
        assert (ingest.handler, ingest.timeout, ingest.triggers) == ("ingest.handler", 15, [])
        assert (ingest.code_dir / "ingest.py").is_file()


def test_process_functions_get_one_warm_worker_per_queue(stack: StackModel) -> None:
    assert workers_of(stack.functions["StripeEventIngestFunction"], 3) == 3
    assert workers_of(stack.functions["StripeEventProcessFunction"], 3) == 1


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        pytest.param(None, [], id="default-none"),
        pytest.param("https://a.example", ["https://a.example"], id="one"),
        pytest.param(
            " https://a.example , https://b.example",
            ["https://a.example", "https://b.example"],
            id="two",
        ),
    ],
)
def test_a_list_parameter_reaches_the_function_as_text(
    stack: StackModel, variable: str | None, expected: list[str]
) -> None:
    env = {} if variable is None else {"SIGNUP_ALLOWED_ORIGINS": variable}
    assert parameter_overrides(stack, env)["SignupAllowedOrigins"] == (variable or "")
    settings = settings_of(stack, "SignupIngestFunction", env)
    assert settings.signup_allowed_origins == expected


def test_ingest_is_not_told_of_the_partnero_key_or_the_ledger(stack: StackModel) -> None:
    parameters = parameter_overrides(stack, {})
    refs = {
        logical_id: f"local-{logical_id}"
        for logical_id in [*stack.queues, *stack.tables, *stack.secrets]
    }
    for name in ("SignupIngestFunction", "EcwidOrderIngestFunction", "StripeEventIngestFunction"):
        env = function_environment(
            stack.functions[name], Resolver(parameters, refs, {}), {}, "http://127.0.0.1:4566", ROOT
        )
        values = set(env.values())
        for forbidden in (
            "local-PartneroSecret",
            "local-EcwidSecret",
            "local-StripeApiSecret",
            "local-LedgerTable",
            "local-IdempotencyTable",
        ):
            assert forbidden not in values, (name, forbidden)

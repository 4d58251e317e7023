"""Each function declares the settings it cannot run without, and reads them at cold start.

template.yaml stays the source of truth: what a function requires is exactly the tables,
queues and secrets its Environment names, and without one of them its module does not
import (one message naming the variable), instead of failing later at an AWS call.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from partnero_bridge.config import required_variables
from partnero_bridge.envelope import QueueEnvelope, Source
from partnero_bridge.errors import ConfigurationError
from partnero_bridge.runtime import Runtime, install_runtime, reset_runtime
from partnero_bridge_cli.local.gateway import build_event
from partnero_bridge_cli.local.template import FunctionSpec, HttpRoute, read_stack
from partnero_bridge_cli.local.worker import LocalContext
from tests.support.inprocess import load_function_module, template_environment

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STACK = read_stack(ROOT)
FUNCTIONS = sorted(STACK.functions)
# What a function may name in its Environment that it cannot run without.
RESOURCES = {*STACK.queues, *STACK.tables, *STACK.secrets}


@pytest.fixture(autouse=True)
def fresh_runtime() -> Any:
    reset_runtime()
    yield
    reset_runtime()


def resource_variables(spec: FunctionSpec) -> set[str]:
    """The variables the template sets to a table, queue or secret (``!Ref`` of one)."""
    return {
        name
        for name, value in spec.environment.items()
        if isinstance(value, dict) and value.get("Ref") in RESOURCES
    }


def test_every_function_is_covered() -> None:
    assert len(FUNCTIONS) == 8


@pytest.mark.parametrize("function", FUNCTIONS)
def test_required_settings_are_exactly_the_resources_the_template_gives(function: str) -> None:
    spec = STACK.functions[function]
    module = load_function_module(function)

    required = required_variables(module.SETTINGS)

    assert required == resource_variables(spec)
    assert required <= set(spec.environment)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_missing_resource_is_named(function: str) -> None:
    model = load_function_module(function).SETTINGS
    environment = template_environment(function)
    model.from_environ(environment)  # the template's environment is enough

    for variable in sorted(required_variables(model)):
        without = {k: v for k, v in environment.items() if k != variable}
        with pytest.raises(ConfigurationError) as missing:
            model.from_environ(without)
        assert str(missing.value) == f"invalid settings: {variable} is not set"
        with pytest.raises(ConfigurationError) as empty:
            model.from_environ({**environment, variable: ""})
        assert str(empty.value) == f"invalid settings: {variable} is not set"


def test_a_missing_table_fails_the_cold_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in template_environment("StripeEventProcessFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BRIDGE_LEDGER_TABLE")
    monkeypatch.setenv("BRIDGE_DEAD_LETTER_QUEUE_URL", "")
    path = ROOT / "functions" / "stripe_event" / "process.py"
    spec = importlib.util.spec_from_file_location("stripe_event_process_cold", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)

    with pytest.raises(ConfigurationError) as failed:
        spec.loader.exec_module(module)

    assert str(failed.value) == (
        "invalid settings: BRIDGE_LEDGER_TABLE is not set, BRIDGE_DEAD_LETTER_QUEUE_URL is not set"
    )


class _Queue:
    """Stands for the work queue: keeps what the function accepted."""

    def __init__(self) -> None:
        self.accepted: list[QueueEnvelope] = []

    def accept(self, envelope: QueueEnvelope) -> str:
        self.accepted.append(envelope)
        return f"m{len(self.accepted)}"


def test_a_function_runs_with_the_objects_its_runtime_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {
        **template_environment("SignupIngestFunction"),
        "SIGNUP_ALLOWED_ORIGINS": "https://shop.example",
        "SIGNUP_RATE_LIMIT_PER_MINUTE": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    module = load_function_module("SignupIngestFunction")
    queue = _Queue()
    install_runtime(
        module.SETTINGS,
        Runtime(module.SETTINGS.from_environ(), queues=queue),  # type: ignore[arg-type]
    )
    route = HttpRoute("POST", "/signup", "SignupIngestFunction")
    body = json.dumps({"email": "jo@example.com", "partner_key": "demo-partner"}).encode()
    headers = [("content-type", "application/json"), ("origin", "https://shop.example")]
    event = build_event(route, "POST", "/signup", headers, body, "203.0.113.9", {})

    answer = module.handler(event, LocalContext("SignupIngestFunction", 256, 15))

    assert answer["statusCode"] == 202
    [envelope] = queue.accepted
    assert envelope.source is Source.SIGNUP
    assert envelope.payload["partner_key"] == "demo-partner"

"""Runs the functions in this process against moto (mock_aws) and a Partnero sandbox.

Tables, queues and secrets are created from template.yaml and each function gets the
environment the template gives it, so integration tests exercise the real wiring: API
event in, SQS message out, SQS batch in, Partnero over real HTTP, DLQ on failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import patch

import pytest
from moto import mock_aws

from partnero_bridge.runtime import reset_runtime
from partnero_bridge_cli.local.aws import client, create_resources
from partnero_bridge_cli.local.functions import Invocation
from partnero_bridge_cli.local.gateway import build_event, response_from
from partnero_bridge_cli.local.pollers import QueuePoller
from partnero_bridge_cli.local.stack import (
    function_environment,
    local_ecwid_store_ids,
    parameter_overrides,
)
from partnero_bridge_cli.local.template import HttpRoute, Resolver, read_stack
from partnero_bridge_cli.local.worker import LocalContext

ROOT = Path(__file__).resolve().parents[2]
# Each source's work queue (its ingest function fills it, its process function drains it).
SOURCE_QUEUES = {
    "signup": "SignupQueue",
    "ecwid": "EcwidOrderQueue",
    "stripe": "StripeEventQueue",
}


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    body: Any


def template_environment(logical_id: str) -> dict[str, str]:
    """A function's Environment as template.yaml gives it with the parameters' defaults,
    each table, queue or secret it names standing in as its logical id."""
    stack = read_stack(ROOT)
    named = {**stack.queues, **stack.tables, **stack.secrets}
    resolver = Resolver(stack.parameters, {name: name for name in named}, {})
    function = stack.functions[logical_id]
    return {name: str(resolver.resolve(value)) for name, value in function.environment.items()}


def load_function_module(logical_id: str) -> ModuleType:
    """The module of a function's Handler (``ingest.handler`` -> functions/<source>/ingest.py),
    under a name of its own, since every source has an ``ingest`` and a ``process``.

    A function reads its settings at import: a variable its template Environment sets and
    this process has not is given the template's value (see template_environment) for the
    import only.
    """
    function = read_stack(ROOT).functions[logical_id]
    module_name = function.handler.rpartition(".")[0]
    path = function.code_dir / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{module_name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    unset = {k: v for k, v in template_environment(logical_id).items() if k not in os.environ}
    with patch.dict(os.environ, unset):
        spec.loader.exec_module(module)
    return module


def _clear_secret_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()


class InProcessBridge:
    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        user_env: Mapping[str, str],
        aws_endpoint: str | None = None,
    ) -> None:
        self._monkeypatch = monkeypatch
        self.aws_endpoint = aws_endpoint
        self.stack = read_stack(ROOT)
        self.user_env = dict(user_env)
        # As the local stack does: the stores with a token are configured by default.
        self.user_env["ECWID_STORE_IDS"] = local_ecwid_store_ids(self.user_env)
        self.parameters = parameter_overrides(self.stack, self.user_env)
        self.resources = create_resources(
            self.stack,
            self.parameters,
            aws_endpoint,
            self.user_env,  # type: ignore[arg-type]
        )
        self.sqs = client("sqs", aws_endpoint)  # type: ignore[arg-type]
        self.dynamodb = client("dynamodb", aws_endpoint)  # type: ignore[arg-type]
        self._modules: dict[str, ModuleType] = {}
        self._active: str | None = None
        self.invocations = 0

    # -- environment ----------------------------------------------------------------------
    def _activate(self, function: str) -> ModuleType:
        if self._active != function:
            spec = self.stack.functions[function]
            env = function_environment(
                spec,
                self.resources.resolver(self.parameters),
                self.user_env,
                self.aws_endpoint or "",
                ROOT / "layers" / "common",
            )
            for name in ("PYTHONPATH", "PATH", "LANG"):
                env.pop(name, None)
            if not self.aws_endpoint:
                env.pop("AWS_ENDPOINT_URL")
            for name in list(os.environ):
                if name.startswith(("BRIDGE_", "SIGNUP_", "ECWID_", "STRIPE_", "PARTNERO_")):
                    self._monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                self._monkeypatch.setenv(name, value)
            reset_runtime()
            _clear_secret_cache()
            self._active = function
        if function not in self._modules:
            self._modules[function] = load_function_module(function)
        return self._modules[function]

    def invoke(self, function: str, event: dict[str, Any]) -> Invocation:
        module = self._activate(function)
        self.invocations += 1
        spec = self.stack.functions[function]
        try:
            result = module.handler(event, LocalContext(function, spec.memory_mb, spec.timeout))
        except Exception as exc:
            return Invocation(None, f"{type(exc).__name__}: {exc}")
        return Invocation(json.loads(json.dumps(result, default=str)))

    # -- ingest ---------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiAnswer:
        route = next(
            (r for r in self.stack.routes() if r.path == path and r.method == method), None
        )
        if route is None:
            route = HttpRoute(method, path, "SignupIngestFunction")
        raw = (
            json.dumps(body).encode()
            if isinstance(body, dict)
            else body.encode()
            if isinstance(body, str)
            else body or b""
        )
        all_headers = {"content-type": "application/json", **(headers or {})}
        event = build_event(route, method, path, list(all_headers.items()), raw, "203.0.113.9", {})
        outcome = self.invoke(route.function, event)
        if outcome.error is not None:
            return ApiAnswer(500, {}, {"message": "Internal Server Error"})
        status, answer_headers, answer = response_from(outcome.payload)
        text = answer.decode()
        return ApiAnswer(
            status, {k.lower(): v for k, v in answer_headers}, json.loads(text) if text else None
        )

    # -- queues ---------------------------------------------------------------------------
    def queue_url(self, logical_id: str) -> str:
        return self.resources.refs[logical_id]

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def work_queue(self, name: str) -> str:
        """The work queue (logical id) that ``name`` stands for: a source ("signup",
        "ecwid", "stripe"), a queue, or a function (an ingest function's queue is the one it
        fills, a process function's the one it consumes)."""
        if name in SOURCE_QUEUES:
            return SOURCE_QUEUES[name]
        if name in self.stack.queues:
            return name
        function = self.stack.functions[name]
        if function.triggers:
            return function.triggers[0].queue
        fills = function.environment["BRIDGE_WORK_QUEUE_URL"]
        return str(fills["Ref"])

    def drain(self, name: str, timeout: float = 20.0) -> None:
        """Feed a work queue to its process function until the queue is empty (or time runs
        out); ``name`` as for ``work_queue``: ``drain("signup")``, ``drain("SignupQueue")``,
        ``drain("SignupProcessFunction")``."""
        queue = self.work_queue(name)
        function = self.stack.consumer_of(queue)
        trigger = next(t for t in function.triggers if t.queue == queue)
        poller = QueuePoller(
            self.sqs,
            self.queue_url(queue),
            self.resources.attributes[(queue, "Arn")],
            function.logical_id,
            trigger.batch_size,
            self.invoke,
            lambda line: None,
        )
        deadline = time.monotonic() + timeout
        while self.queue_depth(queue) and time.monotonic() < deadline:
            if not poller.poll_once():
                time.sleep(0.05)
        assert self.queue_depth(queue) == 0, f"{queue} still has messages after {timeout}s"

    def messages(self, logical_id: str) -> list[dict[str, Any]]:
        """Read (and delete) every message of a queue, e.g. a DLQ, with its attributes."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url(logical_id),
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(message)
                self.sqs.delete_message(
                    QueueUrl=self.queue_url(logical_id), ReceiptHandle=message["ReceiptHandle"]
                )

    def ledger_item(self, pk: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.resources.refs["LedgerTable"], Key={"pk": {"S": pk}}
        ).get("Item")
        if item is None:
            return None
        return {name: next(iter(value.values())) for name, value in item.items()}


@contextmanager
def in_process_bridge(
    monkeypatch: pytest.MonkeyPatch, user_env: Mapping[str, str]
) -> Iterator[InProcessBridge]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        reset_runtime()
        _clear_secret_cache()
        yield InProcessBridge(monkeypatch, user_env)
    reset_runtime()
    _clear_secret_cache()

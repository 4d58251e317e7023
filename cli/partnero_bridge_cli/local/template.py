"""Reads template.yaml into what the local stack needs, so it can never drift from it.

Only the parts the emulation uses are modelled: parameters, function environments,
handlers, timeouts and events, queues with their redrive policies, tables, secrets, and
schedules that start a function (run on demand locally).
Values are resolved for the intrinsic functions the template uses there (Ref, GetAtt, Sub,
and Join, also of a CommaDelimitedList parameter). Roles, alarms and rules are AWS's
business: nothing local enforces them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_NAME = "partnero-bridge-local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    template: dict[str, Any] = cfn_yaml.load(str(path))
    return template


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function: str


@dataclass(frozen=True)
class QueueTrigger:
    queue: str  # logical id
    batch_size: int
    report_failures: bool


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory_mb: int
    environment: dict[str, Any]  # unresolved template values
    routes: list[HttpRoute] = field(default_factory=list)
    triggers: list[QueueTrigger] = field(default_factory=list)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge Scheduler schedule whose target is one of the stack's functions:
    locally it runs on demand (the gateway's ``/_local/schedules``), never by the clock."""

    logical_id: str
    function: str  # logical id of the target function
    input: Any  # the event the target gets (the schedule's Input, JSON-decoded)
    expression: Any  # unresolved template value (a parameter's !Ref, usually)


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class SecretSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass
class StackModel:
    root: Path
    parameters: dict[str, str]
    functions: dict[str, FunctionSpec]
    queues: dict[str, QueueSpec]
    tables: dict[str, TableSpec]
    secrets: dict[str, SecretSpec]
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)

    def routes(self) -> list[HttpRoute]:
        return [route for fn in self.functions.values() for route in fn.routes]

    def consumer_of(self, queue: str) -> FunctionSpec:
        """The function whose SQS event source is ``queue`` (a logical id)."""
        for function in self.functions.values():
            if any(trigger.queue == queue for trigger in function.triggers):
                return function
        raise KeyError(f"no function consumes {queue}")


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


def read_stack(root: Path) -> StackModel:
    template = load_template(root / "template.yaml")
    resources: dict[str, Any] = template["Resources"]
    globals_fn: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
    }
    functions: dict[str, FunctionSpec] = {}
    queues: dict[str, QueueSpec] = {}
    tables: dict[str, TableSpec] = {}
    secrets: dict[str, SecretSpec] = {}
    schedules: dict[str, ScheduleSpec] = {}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        props: dict[str, Any] = resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            functions[logical_id] = _function(root, logical_id, props, globals_fn)
        elif kind == "AWS::SQS::Queue":
            queues[logical_id] = QueueSpec(logical_id, props)
        elif kind == "AWS::DynamoDB::Table":
            tables[logical_id] = TableSpec(logical_id, props)
        elif kind == "AWS::SecretsManager::Secret":
            secrets[logical_id] = SecretSpec(logical_id, props)
        elif kind == "AWS::Scheduler::Schedule":
            schedule = _schedule(logical_id, props)
            if schedule is not None:
                schedules[logical_id] = schedule
        # Anything else (roles, alarms, log groups, the dashboard) has no local part.
    schedules = {k: v for k, v in schedules.items() if v.function in functions}
    return StackModel(root, parameters, functions, queues, tables, secrets, schedules)


def _schedule(logical_id: str, props: dict[str, Any]) -> ScheduleSpec | None:
    """A schedule whose target is ``!GetAtt <Function>.Arn``; None for any other target."""
    target = props.get("Target", {})
    arn = target.get("Arn")
    if not (isinstance(arn, Mapping) and set(arn) == {"Fn::GetAtt"}):
        return None
    attribute = arn["Fn::GetAtt"]
    function = attribute[0] if isinstance(attribute, list) else str(attribute).split(".", 1)[0]
    text = target.get("Input")
    event = json.loads(text) if isinstance(text, str) and text.strip() else {}
    return ScheduleSpec(logical_id, str(function), event, props.get("ScheduleExpression"))


def _function(
    root: Path, logical_id: str, props: dict[str, Any], globals_fn: dict[str, Any]
) -> FunctionSpec:
    def setting(name: str, default: Any) -> Any:
        return props.get(name, globals_fn.get(name, default))

    environment = {
        **globals_fn.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
    }
    routes: list[HttpRoute] = []
    triggers: list[QueueTrigger] = []
    for event in props.get("Events", {}).values():
        event_props = event.get("Properties", {})
        if event["Type"] == "HttpApi":
            routes.append(HttpRoute(event_props["Method"].upper(), event_props["Path"], logical_id))
        elif event["Type"] == "SQS":
            queue_arn = event_props["Queue"]
            queue = queue_arn["Fn::GetAtt"][0] if isinstance(queue_arn, Mapping) else queue_arn
            if isinstance(queue, str) and "." in queue:
                queue = queue.split(".", 1)[0]
            triggers.append(
                QueueTrigger(
                    queue=str(queue),
                    batch_size=int(event_props.get("BatchSize", 10)),
                    report_failures="ReportBatchItemFailures"
                    in event_props.get("FunctionResponseTypes", []),
                )
            )
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=(root / props["CodeUri"]).resolve(),
        handler=str(setting("Handler", "")) or _missing(logical_id, "Handler"),
        timeout=int(setting("Timeout", 3)),
        memory_mb=int(setting("MemorySize", 128)),
        environment=environment,
        routes=routes,
        triggers=triggers,
    )


def _missing(logical_id: str, name: str) -> str:
    raise ValueError(f"template.yaml: function {logical_id} has no {name}")


class Resolver:
    """Resolves template values against parameters and the emulated resources."""

    def __init__(
        self,
        parameters: Mapping[str, str],
        refs: Mapping[str, str],
        attributes: Mapping[tuple[str, str], str],
    ) -> None:
        self._refs = {
            **parameters,
            **refs,
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
        }
        self._attributes = attributes

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((name, arg),) = value.items()
                if name == "Ref":
                    return self._refs[str(arg)]
                if name == "Fn::GetAtt":
                    logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                    return self._attributes[(str(logical_id), str(attribute))]
                if name == "Fn::Sub":
                    return self._sub(arg)
                if name == "Fn::Join":
                    separator, parts = arg
                    resolved = self.resolve(parts)
                    if isinstance(resolved, str):
                        # A CommaDelimitedList parameter, held as its text: CloudFormation
                        # gives its members trimmed.
                        resolved = [part.strip() for part in resolved.split(",")]
                    return str(separator).join(str(part) for part in resolved)
            return {str(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(self.resolve(extra[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._attributes[(logical_id, attribute)]
            return self._refs[name]

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))

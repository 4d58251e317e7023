"""The OpenAPI description of the bridge's routes, assembled from the ingest functions.

Each ingest function's resolver declares its routes' answers, headers and body model
(partnero_bridge.openapi); this merges their ``get_openapi_schema()``, adds the request
models' schemas and checks the routes are template.yaml's. The committed
``docs/openapi.json`` is checked against it by a test (rebuild it with
``partnero-bridge openapi > docs/openapi.json``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from pydantic import BaseModel

from partnero_bridge import __version__
from partnero_bridge.ecwid.models import EcwidWebhook
from partnero_bridge.openapi import SCHEMAS, schema_name
from partnero_bridge.signup.models import SignupRequest
from partnero_bridge.stripe.ingest import EventHead
from partnero_bridge_cli.local.template import FunctionSpec, Resolver, StackModel, read_stack

# The bodies the routes' declarations name (their schemas are not Powertools' to make:
# it never sees them, as nothing validates a request against them).
REQUEST_MODELS: tuple[type[BaseModel], ...] = (SignupRequest, EcwidWebhook, EventHead)
DESCRIPTION = (
    "Sign-ups, Ecwid order webhooks and Stripe events in; Partnero customers and transactions out."
)


def _environment(stack: StackModel, function: FunctionSpec) -> dict[str, str]:
    """The function's Environment as template.yaml gives it, each resource named by its
    logical id: importing a function checks its settings, and the description needs no
    real queue, table or secret."""
    names = {*stack.functions, *stack.queues, *stack.tables, *stack.secrets}
    resolver = Resolver(stack.parameters, {name: name for name in names}, {})
    return {name: str(resolver.resolve(value)) for name, value in function.environment.items()}


def _resolver_schema(stack: StackModel, function: FunctionSpec) -> Any:
    path = function.code_dir / f"{function.handler.rpartition('.')[0]}.py"
    spec = importlib.util.spec_from_file_location(f"openapi_{function.logical_id}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Each function sets the metrics' default dimensions as it is imported: here, in one
    # process, Powertools warns that the next overwrites them.
    with mock.patch.dict(os.environ, _environment(stack, function)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return module.app.get_openapi_schema()


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def _used_schemas(spec: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The schemas the paths refer to, directly or through each other: Powertools also
    lists its own validation errors, which these routes never answer."""
    used: dict[str, Any] = {}
    pending = _references(spec["paths"])
    while pending:
        name = pending.pop().removeprefix(SCHEMAS)
        if name not in schemas:
            raise ValueError(f"the description refers to {name}, which no model defines")
        if name not in used:
            used[name] = schemas[name]
            pending |= _references(schemas[name])
    return {name: used[name] for name in sorted(used)}


def _request_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in REQUEST_MODELS:
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[schema_name(model)] = schema
    return schemas


def build(root: Path) -> dict[str, Any]:
    """The description (OpenAPI 3.1) of every route in ``root``'s template.yaml.

    Raises ValueError when a template route has no declaration or the other way round,
    or when a declaration names a schema no model defines.
    """
    stack = read_stack(root)
    merge = OpenAPIMerge(
        title="partnero-bridge", version=__version__, description=DESCRIPTION, on_conflict="error"
    )
    for function in stack.functions.values():
        if function.routes:
            merge.add_schema(_resolver_schema(stack, function))
    spec: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    schemas = {**spec.get("components", {}).get("schemas", {}), **_request_schemas()}
    spec["components"] = {"schemas": _used_schemas(spec, schemas)}
    described = {(m.upper(), path) for path, item in spec["paths"].items() for m in item}
    routes = {(r.method, r.path) for r in stack.routes()}
    if routes != described:
        raise ValueError(f"template routes {sorted(routes)} differ from the described ones")
    return spec

"""The settings a process function runs with, for commands that read what it reads.

``explain`` reads a payment the way processing does, so it needs that function's settings
(its ledger table, secret ARNs, API URLs and decision rules): from a deployed function's
environment (``--stack-name``), or, for the local stack, resolved from template.yaml and
the environment the way ``make run`` resolves them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partnero_bridge.config import BridgeSettings
from partnero_bridge_cli.local.stack import function_environment, local_ecwid_store_ids
from partnero_bridge_cli.local.template import STACK_NAME, Resolver, StackModel, read_stack


class SettingsError(Exception):
    """The stack's settings cannot be found (one line for the user)."""


def local_user_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` completed as ``make run`` completes it: the local fakes' URLs (at their
    default ports, or BRIDGE_*_PORT) unless set, the configured Ecwid stores, test mode."""
    user = dict(env)
    defaults = {
        "PARTNERO_API_URL": f"http://127.0.0.1:{user.get('BRIDGE_SANDBOX_PORT', '4010')}/v1",
        "ECWID_API_URL": f"http://127.0.0.1:{user.get('BRIDGE_ECWID_PORT', '4020')}/api/v3",
        "STRIPE_API_URL": f"http://127.0.0.1:{user.get('BRIDGE_STRIPE_API_PORT', '4030')}",
    }
    # Decided before the URL defaults: with no ECWID_API_URL, the fake's demo store counts.
    user["ECWID_STORE_IDS"] = local_ecwid_store_ids(user)
    for name, value in defaults.items():
        if not user.get(name):
            user[name] = value
    user.setdefault("STRIPE_LIVEMODE", "false")
    return user


def _local_refs(stack: StackModel, parameters: Mapping[str, str]) -> dict[str, str]:
    """What ``!Ref`` gives for the local stack's tables, secrets and queues (their names:
    DynamoDB, Secrets Manager and SQS calls accept those)."""
    early = Resolver(parameters, {}, {})
    refs: dict[str, str] = {}
    for table in stack.tables.values():
        named = early.resolve(table.properties.get("TableName"))
        refs[table.logical_id] = named or f"{STACK_NAME}-{table.logical_id}"
    for secret in stack.secrets.values():
        named = early.resolve(secret.properties.get("Name"))
        refs[secret.logical_id] = named or f"{STACK_NAME}/{secret.logical_id}"
    for queue in stack.queues.values():
        named = early.resolve(queue.properties.get("QueueName"))
        refs[queue.logical_id] = named or f"{STACK_NAME}-{queue.logical_id}"
    return refs


def local_settings(root: Path, function: str, env: Mapping[str, str]) -> BridgeSettings:
    """The settings ``function`` (a logical id) has in the local stack started from ``root``
    with environment ``env``."""
    from partnero_bridge_cli.local.stack import parameter_overrides

    stack = read_stack(root)
    if function not in stack.functions:
        raise SettingsError(f"template.yaml has no function {function}")
    user = local_user_environment(env)
    parameters = parameter_overrides(stack, user)
    resolver = Resolver(parameters, _local_refs(stack, parameters), {})
    environment = function_environment(
        stack.functions[function],
        resolver,
        user,
        user.get("AWS_ENDPOINT_URL", ""),
        root / "layers" / "common",
    )
    return BridgeSettings.from_environ(environment)


def deployed_settings(
    stack_name: str, function: str, cloudformation: Any, lambda_client: Any
) -> BridgeSettings:
    """The settings of a deployed stack's function ``function`` (a logical id): its
    environment as Lambda holds it."""
    try:
        resource = cloudformation.describe_stack_resource(
            StackName=stack_name, LogicalResourceId=function
        )["StackResourceDetail"]
    except Exception as exc:
        if "does not exist" in str(exc):
            raise SettingsError(
                f"stack {stack_name} has no {function}: deploy this version first, or check "
                "--stack-name and AWS_REGION"
            ) from None
        raise
    configuration = lambda_client.get_function_configuration(
        FunctionName=resource["PhysicalResourceId"]
    )
    variables = configuration.get("Environment", {}).get("Variables", {})
    return BridgeSettings.from_environ(variables)


def bridge_logs_to_stderr() -> None:
    """For a command that prints its own output: the bridge's log lines (JSON, to stdout in
    a function) go to stderr, warnings and errors only."""
    from partnero_bridge.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    logger.setLevel(logging.WARNING)

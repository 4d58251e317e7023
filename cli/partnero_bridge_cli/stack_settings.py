"""Which stack a command talks to, and the settings a process function runs with there.

Without ``--stack-name`` the commands talk to the local stack: :func:`reach_local_stack`
asks its gateway where its AWS emulation is (``GET /_local/stack``), so a new terminal
needs no ``export`` line. ``explain`` reads a payment the way processing does, so it needs
that function's settings (its ledger table, secret ARNs, API URLs and decision rules): from
a deployed function's environment (``--stack-name``), or, for the local stack, resolved
from template.yaml and the environment the way ``make run`` resolves them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

from partnero_bridge.config import BridgeSettings
from partnero_bridge_cli.local.aws import DUMMY_CREDENTIALS
from partnero_bridge_cli.local.stack import (
    NotTheStack,
    StackRefused,
    ask_local_stack,
    function_environment,
    gateway_url,
    local_ecwid_store_ids,
)
from partnero_bridge_cli.local.template import STACK_NAME, Resolver, StackModel, read_stack


class SettingsError(Exception):
    """The stack's settings cannot be found (one line for the user)."""


# Where an AWS client would look for an account of its own: set, the user chose one.
_AWS_CHOICES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID")


def reach_local_stack(
    stack_name: str | None,
    env: MutableMapping[str, str] | None = None,
    err: TextIO | None = None,
) -> str | None:
    """Point this process's AWS clients at the running local stack, unless ``stack_name``
    (a deployed stack) or ``AWS_ENDPOINT_URL`` (an endpoint chosen by the user) says
    otherwise. The stack's gateway (``BRIDGE_URL``, or ``BRIDGE_PORT``, default 3000)
    tells its AWS endpoint, region and ports; they are set in ``env`` (default
    ``os.environ``) with the emulation's dummy credentials, a profile or keys of the user's
    set aside for this process. Says on ``err`` (default stderr) which stack is used.

    Returns None when the command can go on, else the one line saying why not (the local
    stack is not running, or BRIDGE_PORT is no port)."""
    env = os.environ if env is None else env
    if stack_name or env.get("AWS_ENDPOINT_URL"):
        honour_aws_region(env)
        return None
    try:
        about = ask_local_stack(gateway_url(env))
    except (StackRefused, NotTheStack) as exc:
        return f"{exc}, or pass --stack-name for a deployed stack"
    endpoint, region = str(about["aws_endpoint"]), str(about["region"])
    chosen = [name for name in _AWS_CHOICES if env.get(name)]
    for name in _AWS_CHOICES:
        env.pop(name, None)
    env.update({k: v for k, v in DUMMY_CREDENTIALS.items() if "REGION" not in k})
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    for name, port in (about.get("ports") or {}).items():
        env.setdefault(str(name), str(port))
    note = f" ({', '.join(chosen)} not used: --stack-name for a deployed stack)" if chosen else ""
    print(f"the local stack: AWS at {endpoint}, {region}{note}", file=err or sys.stderr)
    return None


def honour_aws_region(env: MutableMapping[str, str]) -> None:
    """AWS_REGION as the region of this process's AWS clients when AWS_DEFAULT_REGION is
    not set: boto3 reads only the latter (or a profile's), the AWS CLI and other SDKs the
    former too."""
    if env.get("AWS_REGION") and not env.get("AWS_DEFAULT_REGION"):
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]


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

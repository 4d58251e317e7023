"""The AWS side of the local stack: a moto server with template.yaml's resources in it."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partnero_bridge_cli.local.template import REGION, STACK_NAME, Resolver, StackModel

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# Environment variables whose values are secrets: seeded into Secrets Manager by
# secret_seeds(), never handed to a function as a value.
SECRET_VARIABLES = frozenset(
    {
        "PARTNERO_API_KEY",
        "SIGNUP_HMAC_SECRET",
        "ECWID_CLIENT_SECRET",
        "ECWID_STORE_TOKENS",
        "STRIPE_WEBHOOK_SECRETS",
        "STRIPE_API_KEY",
    }
)


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def ecwid_store_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """ECWID_STORE_TOKENS (a JSON object of store id -> token), or nothing."""
    try:
        tokens = json.loads(env.get("ECWID_STORE_TOKENS") or "{}")
    except ValueError:
        tokens = None
    if not isinstance(tokens, dict):
        raise SystemExit("ECWID_STORE_TOKENS must be a JSON object of store id -> token")
    return {str(store): str(token) for store, token in tokens.items()}


def secret_seeds(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Secret values from environment variables, in the shapes the functions read."""
    return {
        "PartneroSecret": {"api_key": env.get("PARTNERO_API_KEY", "")},
        "SignupSecret": {"hmac_secret": env.get("SIGNUP_HMAC_SECRET", "")},
        # Webhook signing secrets apart from API credentials, as deployed.
        # ECWID_CLIENT_SECRET may list several (comma-separated), as while rotating.
        "EcwidWebhookSecret": {"client_secrets": _csv(env.get("ECWID_CLIENT_SECRET", ""))},
        "EcwidSecret": {"store_tokens": ecwid_store_tokens(env)},
        "StripeSecret": {"webhook_secrets": _csv(env.get("STRIPE_WEBHOOK_SECRETS", ""))},
        # The restricted read-only key the bridge reads Stripe state with (seeded once the
        # template declares StripeApiSecret; create_resources seeds only declared secrets).
        "StripeApiSecret": {"api_key": env.get("STRIPE_API_KEY", "")},
    }


@dataclass
class LocalResources:
    refs: dict[str, str]
    attributes: dict[tuple[str, str], str]

    def resolver(self, parameters: Mapping[str, str]) -> Resolver:
        return Resolver(parameters, self.refs, self.attributes)


class MotoServer:
    def __init__(self, port: int) -> None:
        from moto.server import ThreadedMotoServer

        # One access-log line per AWS call would drown the functions' own logs.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


def client(service: str, endpoint_url: str) -> Any:
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


def create_resources(
    stack: StackModel,
    parameters: Mapping[str, str],
    endpoint_url: str,
    env: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create the template's queues, tables and secrets in the emulated account."""
    env = os.environ if env is None else env
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    early = Resolver(parameters, {}, {})

    sqs = client("sqs", endpoint_url)
    for queue in stack.queues.values():
        name = early.resolve(queue.properties.get("QueueName")) or (
            f"{STACK_NAME}-{queue.logical_id}"
        )
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        refs[queue.logical_id] = url
        attributes[(queue.logical_id, "Arn")] = arn
        attributes[(queue.logical_id, "QueueName")] = name
        attributes[(queue.logical_id, "QueueUrl")] = url

    dynamodb = client("dynamodb", endpoint_url)
    for table in stack.tables.values():
        props = table.properties
        name = early.resolve(props.get("TableName")) or f"{STACK_NAME}-{table.logical_id}"
        described = dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        refs[table.logical_id] = name
        attributes[(table.logical_id, "Arn")] = described["TableArn"]

    secretsmanager = client("secretsmanager", endpoint_url)
    seeds = secret_seeds(env)
    for secret in stack.secrets.values():
        name = early.resolve(secret.properties.get("Name")) or (f"{STACK_NAME}/{secret.logical_id}")
        value = seeds.get(secret.logical_id)
        text = (
            json.dumps(value) if value is not None else secret.properties.get("SecretString", "{}")
        )
        arn = secretsmanager.create_secret(Name=name, SecretString=text)["ARN"]
        refs[secret.logical_id] = arn
        attributes[(secret.logical_id, "Id")] = arn

    resources = LocalResources(refs, attributes)
    resolver = resources.resolver(parameters)
    for queue in stack.queues.values():
        settings: dict[str, str] = {}
        for name in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if name in queue.properties:
                settings[name] = str(resolver.resolve(queue.properties[name]))
        redrive = queue.properties.get("RedrivePolicy")
        if redrive:
            policy = resolver.resolve(redrive)
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            settings["RedrivePolicy"] = json.dumps(policy)
        if settings:
            sqs.set_queue_attributes(QueueUrl=refs[queue.logical_id], Attributes=settings)
    return resources

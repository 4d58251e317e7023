"""Least privilege as deployed: template.yaml as SAM transforms it (aws-sam-translator).

SAM adds to what a template says: a function without a Role gets a generated role with
managed policies (AWSLambdaSQSQueueExecutionRole for an SQS event: receive and delete on
every queue of the account). So the permissions are read from the transformed template,
with the AWS managed policies SAM attaches resolved to their statements. The checks:

- no statement grants an SQS, DynamoDB or Secrets Manager action on ``*``;
- each function's role grants exactly what its code calls (the table below), on the named
  resources, plus what Lambda itself does with the role (logs to the function's own group,
  X-Ray, and the event source mapping's receive/delete on its queue);
- the code that answers the internet (ingest) can read no API credential (Partnero key,
  Ecwid store tokens, Stripe API key) and cannot write the ledger or idempotency table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.support.sam_transform import REGION, as_list, role_of, role_statements, transform

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Services whose resources always have a name here: never granted on "*".
NAMED_SERVICES = ("sqs", "dynamodb", "secretsmanager")

Grant = tuple[str, str]  # (action, resource): "SignupQueue.Arn", "PartneroSecret", "*"


def resource_key(value: Any) -> str:
    """A readable, comparable name for a statement's resource."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return str(value["Ref"])
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        attribute = value["Fn::GetAtt"]
        return ".".join(attribute) if isinstance(attribute, list) else str(attribute)
    return json.dumps(value, sort_keys=True)


def grants_of(statements: Iterator[dict[str, Any]]) -> set[Grant]:
    granted: set[Grant] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
        assert "Condition" not in statement, statement
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                granted.add((str(action), resource_key(resource)))
    return granted


def function_grants(transformed: Mapping[str, Any]) -> dict[str, set[Grant]]:
    resources = transformed["Resources"]
    return {
        name: grants_of(role_statements(resources, role_of(resource)))
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def wildcard_violations(transformed: Mapping[str, Any]) -> list[str]:
    """Statements anywhere (roles, managed policies, policy resources) that grant an
    SQS, DynamoDB or Secrets Manager action (or every action) on a resource with ``*``."""
    resources = transformed["Resources"]
    found = []
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for action, target in grants_of(role_statements(resources, name)):
            service = action.split(":", 1)[0]
            if "*" in target and (service in NAMED_SERVICES or action == "*"):
                found.append(f"{name}: {action} on {target}")
    return sorted(found)


# ---------------------------------------------------------------------------- expected


def _own_logs_and_tracing(function: str) -> set[Grant]:
    group = f"{function}LogGroup.Arn"
    return {
        ("logs:CreateLogStream", group),
        ("logs:PutLogEvents", group),
        # X-Ray has no resource-level permissions.
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
    }


def _consume(queue: str, dead_letter_queue: str) -> set[Grant]:
    arn = f"{queue}.Arn"
    return {
        ("sqs:ReceiveMessage", arn),
        ("sqs:DeleteMessage", arn),
        ("sqs:GetQueueAttributes", arn),
        ("sqs:ChangeMessageVisibility", arn),  # retry back-off
        ("sqs:SendMessage", f"{dead_letter_queue}.Arn"),  # dead-lettering with the reason
    }


# Powertools' DynamoDB persistence layer: put in progress, get on conflict, update the
# result, delete after a failure.
_IDEMPOTENCY = {
    (f"dynamodb:{action}", "IdempotencyTable.Arn")
    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
}
# The reconciler: claims and records by conditional updates, reads items, puts aliases and
# the ledger's start; never a Query or a Scan.
_SALE_LEDGER = {
    (f"dynamodb:{action}", "LedgerTable.Arn") for action in ("GetItem", "PutItem", "UpdateItem")
}

EXPECTED: dict[str, set[Grant]] = {
    "SignupIngestFunction": _own_logs_and_tracing("SignupIngestFunction")
    | {
        ("sqs:SendMessage", "SignupQueue.Arn"),
        ("secretsmanager:GetSecretValue", "SignupSecret"),  # verifies signed calls
        ("dynamodb:UpdateItem", "RateLimitTable.Arn"),  # unsigned calls per address
    },
    "SignupProcessFunction": _own_logs_and_tracing("SignupProcessFunction")
    | _consume("SignupQueue", "SignupDeadLetterQueue")
    | _IDEMPOTENCY
    | {
        # Re-checks of the customer's waiting sales.
        ("sqs:SendMessage", "EcwidOrderQueue.Arn"),
        ("sqs:SendMessage", "StripeEventQueue.Arn"),
        # Records the customer and forgets re-checked sales: conditional updates only.
        ("dynamodb:UpdateItem", "LedgerTable.Arn"),
        ("dynamodb:UpdateItem", "RateLimitTable.Arn"),  # sign-ups per partner per hour
        ("secretsmanager:GetSecretValue", "PartneroSecret"),
    },
    "EcwidOrderIngestFunction": _own_logs_and_tracing("EcwidOrderIngestFunction")
    | {
        ("sqs:SendMessage", "EcwidOrderQueue.Arn"),
        ("secretsmanager:GetSecretValue", "EcwidWebhookSecret"),
        # Parking: a conditional put and a counter update, in one transaction.
        ("dynamodb:PutItem", "ParkedWebhooksTable.Arn"),
        ("dynamodb:UpdateItem", "ParkedWebhooksTable.Arn"),
    },
    "EcwidOrderProcessFunction": _own_logs_and_tracing("EcwidOrderProcessFunction")
    | _consume("EcwidOrderQueue", "EcwidOrderDeadLetterQueue")
    | _IDEMPOTENCY
    | _SALE_LEDGER
    | {
        ("secretsmanager:GetSecretValue", "PartneroSecret"),
        ("secretsmanager:GetSecretValue", "EcwidSecret"),  # the store tokens
    },
    "StripeEventIngestFunction": _own_logs_and_tracing("StripeEventIngestFunction")
    | {
        ("sqs:SendMessage", "StripeEventQueue.Arn"),
        ("secretsmanager:GetSecretValue", "StripeSecret"),
    },
    "StripeEventProcessFunction": _own_logs_and_tracing("StripeEventProcessFunction")
    | _consume("StripeEventQueue", "StripeEventDeadLetterQueue")
    | _IDEMPOTENCY
    | _SALE_LEDGER
    | {
        ("secretsmanager:GetSecretValue", "PartneroSecret"),
        ("secretsmanager:GetSecretValue", "StripeApiSecret"),
    },
    # Plans the nightly reconciliation: it only queues chunks.
    "ReconcileScheduleFunction": _own_logs_and_tracing("ReconcileScheduleFunction")
    | {("sqs:SendMessage", "ReconcileQueue.Arn")},
    # Reconciles a chunk: reads commission records, keeps its checkpoints (put, get, and
    # a batch get of a resumed run's findings), reads the APIs, heals by re-checks sent to
    # the sale queues (the payment's record marked first). No idempotency table, no DLQ
    # of its own to write (SQS redrives a chunk that keeps failing).
    "ReconcileWorkerFunction": _own_logs_and_tracing("ReconcileWorkerFunction")
    | {
        ("sqs:ReceiveMessage", "ReconcileQueue.Arn"),
        ("sqs:DeleteMessage", "ReconcileQueue.Arn"),
        ("sqs:GetQueueAttributes", "ReconcileQueue.Arn"),
        ("sqs:SendMessage", "EcwidOrderQueue.Arn"),
        ("sqs:SendMessage", "StripeEventQueue.Arn"),
        ("dynamodb:GetItem", "LedgerTable.Arn"),
        ("dynamodb:PutItem", "LedgerTable.Arn"),
        ("dynamodb:BatchGetItem", "LedgerTable.Arn"),
        ("dynamodb:UpdateItem", "LedgerTable.Arn"),  # a heal: ask Partnero first
        ("secretsmanager:GetSecretValue", "PartneroSecret"),
        ("secretsmanager:GetSecretValue", "EcwidSecret"),
        ("secretsmanager:GetSecretValue", "StripeApiSecret"),
    },
}
# Roles that are no function's: EventBridge Scheduler's, which starts the nightly run.
SERVICE_ROLES = {"ReconcileSchedulerRole"}
INGEST = ("SignupIngestFunction", "EcwidOrderIngestFunction", "StripeEventIngestFunction")
API_CREDENTIALS = ("PartneroSecret", "EcwidSecret", "StripeApiSecret")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "PartiQLInsert")
WRITES += ("PartiQLUpdate", "PartiQLDelete")

PARAMETERS = {
    "dev": {"Stage": "dev"},
    "prod": {
        "Stage": "prod",
        "AlarmTopicArn": f"arn:aws:sns:{REGION}:123456789012:bridge-alarms",
        "SignupAllowedOrigins": "https://shop.example,https://www.shop.example",
    },
}


@pytest.fixture(scope="module", params=list(PARAMETERS))
def transformed(request: pytest.FixtureRequest) -> dict[str, Any]:
    template: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return transform(template, PARAMETERS[str(request.param)])


# ---------------------------------------------------------------------------- tests


def test_no_sqs_dynamodb_or_secrets_action_on_star(transformed: dict[str, Any]) -> None:
    assert wildcard_violations(transformed) == []


def test_sam_adds_no_role_and_no_managed_policy(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    roles = {n for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {name.replace("Function", "Role") for name in EXPECTED} | SERVICE_ROLES
    for role in roles:
        assert "ManagedPolicyArns" not in resources[role]["Properties"], role


def test_each_function_is_granted_exactly_what_its_code_uses(
    transformed: dict[str, Any],
) -> None:
    granted = function_grants(transformed)
    assert set(granted) == set(EXPECTED)
    for function, expected in EXPECTED.items():
        extra = sorted(granted[function] - expected)
        missing = sorted(expected - granted[function])
        assert (extra, missing) == ([], []), function


@pytest.mark.parametrize("function", INGEST)
def test_ingest_reads_no_api_credential_and_writes_no_ledger(
    transformed: dict[str, Any], function: str
) -> None:
    granted = function_grants(transformed)[function]
    for action, target in granted:
        name = target.removesuffix(".Arn")
        if action.startswith("secretsmanager:"):
            assert name not in API_CREDENTIALS, f"{function} can read {name}"
            assert "*" not in target
        if action.removeprefix("dynamodb:") in WRITES:
            assert name not in ("LedgerTable", "IdempotencyTable"), f"{function}: {action}"
            assert "*" not in target


def test_roles_let_lambda_do_its_part(transformed: dict[str, Any]) -> None:
    """What Lambda does with a function's role: write its logs, send its traces, and poll
    its SQS event source (the mapping is refused without receive/delete/attributes)."""
    resources = transformed["Resources"]
    granted = function_grants(transformed)
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            props = resource["Properties"]
            group = props["LoggingConfig"]["LogGroup"]
            assert resource_key(group) == f"{name}LogGroup"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                assert (action, f"{name}LogGroup.Arn") in granted[name]
            assert props["TracingConfig"] == {"Mode": "Active"}
            for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
                assert (action, "*") in granted[name]
    mappings = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) == 4
    for mapping in mappings:
        function = resource_key(mapping["FunctionName"])
        queue = resource_key(mapping["EventSourceArn"])
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
            assert (action, queue) in granted[function], (function, action)


def test_the_rules_survive_the_transform(transformed: dict[str, Any]) -> None:
    assert set(transformed["Rules"]) == {"ProdHasAlarmTopic", "ProdSignupOriginsAreListed"}


def test_a_generated_role_with_an_sqs_event_is_caught() -> None:
    """The check itself: SAM's own role for a queue-fed function (as this stack had before
    its functions got roles of their own) is found out."""
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "process.handler",
                    "CodeUri": "functions/signup/",
                    "Tracing": "Active",
                    "Policies": [
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "dynamodb:Query",
                                    "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                                }
                            ]
                        }
                    ],
                    "Events": {
                        "Queue": {
                            "Type": "SQS",
                            "Properties": {"Queue": {"Fn::GetAtt": ["Queue", "Arn"]}},
                        }
                    },
                },
            },
        },
    }
    transformed = transform(template, {})
    assert wildcard_violations(transformed) == [
        "WorkerRole: sqs:DeleteMessage on *",
        "WorkerRole: sqs:GetQueueAttributes on *",
        "WorkerRole: sqs:ReceiveMessage on *",
    ]
    granted = function_grants(transformed)["Worker"]
    assert ("dynamodb:Query", "Queue.Arn") in granted
    assert ("logs:CreateLogGroup", "*") in granted


def test_the_scheduler_may_only_start_the_scheduled_function(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    role = resources["ReconcileSchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    # Only schedules of this account may assume it (the confused-deputy guard).
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = grants_of(role_statements(resources, "ReconcileSchedulerRole"))
    assert granted == {("lambda:InvokeFunction", "ReconcileScheduleFunction.Arn")}
    schedule = resources["ReconcileScheduleRule"]["Properties"]
    assert resource_key(schedule["Target"]["Arn"]) == "ReconcileScheduleFunction.Arn"
    assert resource_key(schedule["Target"]["RoleArn"]) == "ReconcileSchedulerRole.Arn"

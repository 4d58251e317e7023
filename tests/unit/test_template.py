"""Structural checks of template.yaml.

The template is the single source of routes, queues, tables and environment; the local stack
and the code read it. These tests pin the contracts the code relies on and the safety
properties (dead-letter queues, retained tables, least-privilege IAM, secrets by ARN only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

FUNCTIONS = ("SignupFunction", "EcwidOrderFunction", "StripeEventFunction")

# (method, path) -> function that must serve it
ROUTES = {
    ("POST", "/signup"): "SignupFunction",
    ("OPTIONS", "/signup"): "SignupFunction",
    ("POST", "/webhooks/ecwid"): "EcwidOrderFunction",
    ("POST", "/webhooks/stripe"): "StripeEventFunction",
}

# function -> (work queue, dead-letter queue, source secret)
SOURCES = {
    "SignupFunction": ("SignupQueue", "SignupDeadLetterQueue", "SignupSecret"),
    "EcwidOrderFunction": ("EcwidOrderQueue", "EcwidOrderDeadLetterQueue", "EcwidSecret"),
    "StripeEventFunction": ("StripeEventQueue", "StripeEventDeadLetterQueue", "StripeSecret"),
}

SECRETS = (
    "PartneroSecret",
    "EcwidSecret",
    "EcwidWebhookSecret",
    "StripeSecret",
    "StripeApiSecret",
    "SignupSecret",
)


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(name: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}


COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME": "partnero-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "PartneroBridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "BRIDGE_STAGE": ref("Stage"),
    "BRIDGE_IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
    "BRIDGE_LEDGER_TABLE": ref("LedgerTable"),
    "BRIDGE_MAX_RECEIVES": ref("MaxReceives"),
    "BRIDGE_RETRY_BASE_SECONDS": ref("RetryBaseSeconds"),
    "BRIDGE_RETRY_MAX_SECONDS": ref("RetryMaxSeconds"),
    "PARTNERO_API_URL": ref("PartneroApiUrl"),
    "PARTNERO_SECRET_ARN": ref("PartneroSecret"),
}

FUNCTION_ENV = {
    "SignupFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("SignupQueue"),
        "BRIDGE_DEAD_LETTER_QUEUE_URL": ref("SignupDeadLetterQueue"),
        "SIGNUP_ALLOWED_ORIGINS": ref("SignupAllowedOrigins"),
        "SIGNUP_REQUIRE_SIGNATURE": ref("SignupRequireSignature"),
        "SIGNUP_SECRET_ARN": ref("SignupSecret"),
        "BRIDGE_RETRIGGER_DAYS": ref("RetriggerDays"),
        "BRIDGE_ECWID_QUEUE_URL": ref("EcwidOrderQueue"),
        "BRIDGE_STRIPE_QUEUE_URL": ref("StripeEventQueue"),
    },
    "EcwidOrderFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("EcwidOrderQueue"),
        "BRIDGE_DEAD_LETTER_QUEUE_URL": ref("EcwidOrderDeadLetterQueue"),
        "ECWID_API_URL": ref("EcwidApiUrl"),
        "ECWID_WEBHOOK_SECRET_ARN": ref("EcwidWebhookSecret"),
        "ECWID_API_SECRET_ARN": ref("EcwidSecret"),
        "ECWID_STORE_IDS": ref("EcwidStoreIds"),
        "ECWID_MAX_EVENT_AGE_SECONDS": ref("EcwidMaxEventAgeSeconds"),
        "BRIDGE_PARKED_TABLE": ref("ParkedWebhooksTable"),
        "BRIDGE_SIGNUP_WAIT_SECONDS": ref("SignupWaitSeconds"),
        "PARTNERO_PROGRAM_CURRENCY": ref("PartneroProgramCurrency"),
        "PARTNERO_CONVERTS_CURRENCIES": ref("PartneroConvertsCurrencies"),
    },
    "StripeEventFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("StripeEventQueue"),
        "BRIDGE_DEAD_LETTER_QUEUE_URL": ref("StripeEventDeadLetterQueue"),
        "STRIPE_SECRET_ARN": ref("StripeSecret"),
        "STRIPE_API_URL": ref("StripeApiUrl"),
        "STRIPE_API_SECRET_ARN": ref("StripeApiSecret"),
        "BRIDGE_SIGNUP_WAIT_SECONDS": ref("SignupWaitSeconds"),
        "PARTNERO_PROGRAM_CURRENCY": ref("PartneroProgramCurrency"),
        "PARTNERO_CONVERTS_CURRENCIES": ref("PartneroConvertsCurrencies"),
    },
}

# Beyond its own queues, table access and secrets (SOURCES), what each function may do.
EXTRA_SEND_QUEUES = {
    # Sign-ups send re-check messages to the sale queues.
    "SignupFunction": ["EcwidOrderQueue", "StripeEventQueue"],
    "EcwidOrderFunction": [],
    "StripeEventFunction": [],
}
EXTRA_SECRETS = {
    "SignupFunction": [],
    # Ingest and processing share the function for now: signing secrets and store tokens.
    "EcwidOrderFunction": ["EcwidWebhookSecret"],
    # Processing reads each payment's current state with the Stripe API key.
    "StripeEventFunction": ["StripeApiSecret"],
}
# Parking writes only: a conditional put per eventId and a conditional counter update.
EXTRA_TABLE_WRITES = {
    "SignupFunction": [],
    "EcwidOrderFunction": ["ParkedWebhooksTable"],
    "StripeEventFunction": [],
}

# Actions for which AWS only accepts Resource "*". None are needed today; add an action here
# (with a reason) only if a statement really has to use "*".
ACTIONS_REQUIRING_STAR_RESOURCE: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res


def function_props(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's properties with the Globals.Function section applied (as SAM does)."""
    globals_fn = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][name]["Properties"]
    merged = {**globals_fn, **own}
    merged["Environment"] = {
        "Variables": {
            **globals_fn.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
    }
    return merged


def events_of_type(resources: dict[str, Any], name: str, kind: str) -> list[dict[str, Any]]:
    events = resources[name]["Properties"].get("Events", {})
    return [e["Properties"] for e in events.values() if e["Type"] == kind]


def sub_string(value: Any) -> str:
    """The literal of a plain string or a one-argument Fn::Sub."""
    if isinstance(value, str):
        return value
    assert isinstance(value, dict), value
    assert list(value) == ["Fn::Sub"], value
    sub = value["Fn::Sub"]
    assert isinstance(sub, str), "expected the short form of Fn::Sub"
    return sub


def iter_statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere in the template."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from iter_statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_statements(item)


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------- runtime


def test_runtime_is_python313_on_arm64(template: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        props = function_props(template, name)
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["Handler"] == "app.handler", name
        assert props["Tracing"] == "Active", name
        assert props["Layers"] == [ref("CommonLayer")], name


def test_layer_matches_runtime_and_is_built_by_makefile(resources: dict[str, Any]) -> None:
    layer = resources["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # The Makefile keeps botocore out of the layer; the python builder would not.
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert (REPO_ROOT / "layers" / "common" / "Makefile").is_file()


def test_layer_requirements_exclude_the_runtime_sdk() -> None:
    lines = (REPO_ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    names = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    assert all("==" in pin for pin in pins), "every layer requirement must be pinned"
    for shipped_by_runtime in ("boto3", "botocore", "s3transfer", "urllib3", "python-dateutil"):
        assert shipped_by_runtime not in names
    assert {"aws-lambda-powertools", "aws-xray-sdk", "httpx", "pydantic"} <= names


# ---------------------------------------------------------------------------- HTTP API


def test_routes_point_to_the_right_functions(resources: dict[str, Any]) -> None:
    found: dict[tuple[str, str], str] = {}
    for name in FUNCTIONS:
        for props in events_of_type(resources, name, "HttpApi"):
            assert props["ApiId"] == ref("HttpApi"), name
            key = (props["Method"].upper(), props["Path"])
            assert key not in found, f"route {key} defined twice"
            found[key] = name
    assert found == ROUTES


def test_http_api_leaves_cors_to_the_function(resources: dict[str, Any]) -> None:
    api = resources["HttpApi"]["Properties"]
    # API Gateway ignores the function's CORS headers when the API configures CORS itself.
    assert "CorsConfiguration" not in api
    assert api["FailOnWarnings"] is True
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": ref("ThrottleBurstLimit"),
        "ThrottlingRateLimit": ref("ThrottleRateLimit"),
    }
    access_logs = api["AccessLogSettings"]
    assert access_logs["DestinationArn"] == get_att("HttpApiAccessLogs", "Arn")
    log_format = json.loads(access_logs["Format"])
    for field in (
        "requestId",
        "ip",
        "requestTime",
        "httpMethod",
        "routeKey",
        "status",
        "protocol",
        "responseLength",
        "integrationError",
    ):
        assert field in log_format


# ---------------------------------------------------------------------------- queues


@pytest.mark.parametrize("name", FUNCTIONS)
def test_sqs_event_reports_partial_failures_and_is_capped(
    resources: dict[str, Any], name: str
) -> None:
    queue_name, _, _ = SOURCES[name]
    sqs_events = events_of_type(resources, name, "SQS")
    assert len(sqs_events) == 1, name
    event = sqs_events[0]
    assert event["Queue"] == get_att(queue_name, "Arn")
    assert "ReportBatchItemFailures" in event["FunctionResponseTypes"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == ref("ProcessingMaxConcurrency")
    assert event["BatchSize"] == 10


@pytest.mark.parametrize("name", FUNCTIONS)
def test_work_queue_redrives_to_its_dead_letter_queue(
    template: dict[str, Any], resources: dict[str, Any], name: str
) -> None:
    queue_name, dlq_name, _ = SOURCES[name]
    queue = resources[queue_name]["Properties"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == get_att(dlq_name, "Arn")
    assert redrive["maxReceiveCount"] == ref("MaxReceives")

    dlq = resources[dlq_name]["Properties"]
    assert sub_string(dlq["QueueName"]).endswith("-dlq")
    assert not sub_string(queue["QueueName"]).endswith("-dlq")
    assert dlq["MessageRetentionPeriod"] == 1209600
    assert dlq["SqsManagedSseEnabled"] is True
    assert queue["SqsManagedSseEnabled"] is True

    # A message must stay invisible while a batch is processed (AWS: >= 6x the timeout).
    timeout = function_props(template, name)["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout

    # Only the source's own work queue may redrive into its DLQ (ARN built from its name).
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (source_arn,) = allow["sourceQueueArns"]
    assert sub_string(source_arn).endswith(":" + sub_string(queue["QueueName"]))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_dead_letter_queue_has_an_alarm(resources: dict[str, Any], name: str) -> None:
    _, dlq_name, _ = SOURCES[name]
    alarm = resources[dlq_name.replace("Queue", "Alarm")]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/SQS"
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": get_att(dlq_name, "QueueName")}]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == 0
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_a_log_group_with_retention(resources: dict[str, Any], name: str) -> None:
    group = resources[f"{name}LogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}
    assert group["RetentionInDays"] == ref("LogRetentionDays")


# ---------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("name", "key"),
    [("IdempotencyTable", "id"), ("LedgerTable", "pk"), ("ParkedWebhooksTable", "pk")],
)
def test_tables_keys_recovery_and_retention(resources: dict[str, Any], name: str, key: str) -> None:
    table = resources[name]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_idempotency_table_expires_records(resources: dict[str, Any]) -> None:
    # Powertools' DynamoDBPersistenceLayer writes its expiry to "expiration" by default.
    ttl = resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiration", "Enabled": True}


def test_parked_webhooks_expire(resources: dict[str, Any]) -> None:
    # The attribute partnero_bridge.ecwid.parking writes its expiry to.
    ttl = resources["ParkedWebhooksTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_parked_webhooks_are_not_paged(resources: dict[str, Any]) -> None:
    # Parking is expected (a store not configured yet), not a failure: no alarm watches it.
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            text = json.dumps(resource["Properties"])
            assert "ParkedWebhook" not in text
            assert "ParkedWebhooksTable" not in text


# ---------------------------------------------------------------------------- environment


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_environment_is_complete(template: dict[str, Any], name: str) -> None:
    variables = function_props(template, name)["Environment"]["Variables"]
    expected = {**COMMON_ENV, **FUNCTION_ENV[name]}
    missing = sorted(set(expected) - set(variables))
    assert not missing, f"{name} lacks {missing}"
    for key, value in expected.items():
        assert variables[key] == value, f"{name}.{key}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment_values_are_literals_or_plain_refs(template: dict[str, Any], name: str) -> None:
    # Local tooling resolves only !Ref in environments; anything else would drift.
    for key, value in function_props(template, name)["Environment"]["Variables"].items():
        if isinstance(value, dict):
            assert list(value) == ["Ref"], f"{name}.{key} uses {list(value)}"
        else:
            assert isinstance(value, str | int | float | bool), f"{name}.{key}"


# ---------------------------------------------------------------------------- secrets


def test_no_dynamic_secret_references(template: dict[str, Any]) -> None:
    assert "{{resolve:" not in json.dumps(template)
    assert "{{resolve:" not in TEMPLATE_PATH.read_text()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_secrets_reach_functions_only_as_arns(template: dict[str, Any], name: str) -> None:
    variables = function_props(template, name)["Environment"]["Variables"]
    for key, value in variables.items():
        text = json.dumps(value)
        if any(f'"{secret}"' in text for secret in SECRETS):
            # Ref of a secret is its ARN; nothing else (GetAtt, Sub, Join) may name it.
            assert key.endswith("_SECRET_ARN"), f"{name}.{key}"
            assert isinstance(value, dict)
            assert list(value) == ["Ref"], f"{name}.{key}"
            assert value["Ref"] in SECRETS


def test_secrets_hold_no_values(resources: dict[str, Any]) -> None:
    for name in SECRETS:
        secret = resources[name]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        props = secret["Properties"]
        assert props["Description"]
        if "SecretString" in props:
            # Placeholders only: every leaf value is empty.
            def leaves(node: Any) -> Iterator[Any]:
                if isinstance(node, dict):
                    for v in node.values():
                        yield from leaves(v)
                elif isinstance(node, list):
                    for v in node:
                        yield from leaves(v)
                else:
                    yield node

            assert all(leaf in ("", None) for leaf in leaves(json.loads(props["SecretString"])))
    generated = resources["SignupSecret"]["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "hmac_secret"


# ---------------------------------------------------------------------------- IAM


def test_no_iam_wildcards(template: dict[str, Any]) -> None:
    statements = list(iter_statements(template))
    assert statements, "expected explicit IAM statements in the template"
    for statement in statements:
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        actions = [str(a) for a in as_list(statement["Action"])]
        for action in actions:
            assert "*" not in action, f"wildcard action {action!r}"
        for resource in as_list(statement.get("Resource", [])):
            text = resource if isinstance(resource, str) else json.dumps(resource)
            if "*" in text:
                assert set(actions) <= ACTIONS_REQUIRING_STAR_RESOURCE, (
                    f"Resource {text} for {actions}"
                )


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_permissions_are_scoped_to_its_own_resources(
    resources: dict[str, Any], name: str
) -> None:
    queue_name, dlq_name, secret_name = SOURCES[name]
    granted: dict[str, list[Any]] = {}
    for statement in iter_statements(resources[name]["Properties"]["Policies"]):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))

    def same(actual: list[Any], expected: list[Any]) -> bool:
        return sorted(map(json.dumps, actual)) == sorted(map(json.dumps, expected))

    assert same(
        granted.pop("sqs:SendMessage"),
        [
            get_att(queue_name, "Arn"),
            get_att(dlq_name, "Arn"),
            *(get_att(q, "Arn") for q in EXTRA_SEND_QUEUES[name]),
        ],
    )
    assert same(granted.pop("sqs:ChangeMessageVisibility"), [get_att(queue_name, "Arn")])
    assert same(
        granted.pop("secretsmanager:GetSecretValue"),
        [ref("PartneroSecret"), ref(secret_name), *(ref(s) for s in EXTRA_SECRETS[name])],
    )
    idempotency = get_att("IdempotencyTable", "Arn")
    ledger = get_att("LedgerTable", "Arn")
    writes = [get_att(table, "Arn") for table in EXTRA_TABLE_WRITES[name]]
    assert same(granted.pop("dynamodb:GetItem"), [idempotency, ledger])
    assert same(granted.pop("dynamodb:PutItem"), [idempotency, ledger, *writes])
    assert same(granted.pop("dynamodb:UpdateItem"), [idempotency, ledger, *writes])
    assert same(granted.pop("dynamodb:DeleteItem"), [idempotency])
    assert same(granted.pop("dynamodb:Query"), [ledger])
    assert not granted, f"unexpected permissions {sorted(granted)}"


# ---------------------------------------------------------------------------- interface


def test_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["Stage"]["AllowedValues"] == ["dev", "prod"]
    assert params["Stage"]["Default"] == "dev"
    assert params["MaxReceives"]["Default"] == 5
    assert params["ProcessingMaxConcurrency"]["MinValue"] == 2
    assert params["RetryMaxSeconds"]["MaxValue"] == 43200
    assert params["SignupRequireSignature"]["Default"] == "false"
    assert params["AlarmTopicArn"]["Default"] == ""
    assert "HasAlarmTopic" in template["Conditions"]
    assert params["EcwidStoreIds"]["Default"] == ""
    # 48 hours: longer than Ecwid's ~24 h of redeliveries, shorter than the 4-day
    # idempotency TTL (the code refuses a window that is not).
    assert params["EcwidMaxEventAgeSeconds"]["Default"] == 48 * 3600
    assert params["EcwidMaxEventAgeSeconds"]["MaxValue"] < 4 * 24 * 3600
    assert params["SignupWaitSeconds"]["Default"] == 900
    assert params["RetriggerDays"]["Default"] == 30
    assert params["PartneroProgramCurrency"]["Default"] == ""
    assert params["PartneroConvertsCurrencies"]["Default"] == "false"


def test_parameter_defaults_are_valid_settings(template: dict[str, Any]) -> None:
    """Every function's environment, with parameter defaults, is accepted by the code."""
    from partnero_bridge.config import BridgeSettings

    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}

    def value_of(value: Any) -> str:
        if isinstance(value, dict):  # a parameter's default, or a resource's name or ARN
            return defaults.get(value["Ref"], "resource-reference")
        return str(value)

    for name in FUNCTIONS:
        variables = function_props(template, name)["Environment"]["Variables"]
        BridgeSettings.from_environ({key: value_of(v) for key, v in variables.items()})


def test_ecwid_secrets_are_split_by_use(resources: dict[str, Any]) -> None:
    webhook = resources["EcwidWebhookSecret"]["Properties"]
    assert sub_string(webhook["Name"]) == "${AWS::StackName}/ecwid-webhook"
    assert json.loads(webhook["SecretString"]) == {"client_secrets": []}
    api = resources["EcwidSecret"]["Properties"]
    assert sub_string(api["Name"]) == "${AWS::StackName}/ecwid"
    # Unchanged since the first release: a new placeholder would overwrite deployed tokens.
    assert api["SecretString"] == '{"client_secret": "", "store_tokens": {}}'


def test_stripe_api_key_has_its_own_secret(resources: dict[str, Any]) -> None:
    secret = resources["StripeApiSecret"]["Properties"]
    assert sub_string(secret["Name"]) == "${AWS::StackName}/stripe-api"
    assert json.loads(secret["SecretString"]) == {"api_key": ""}
    # Apart from the webhook signing secrets.
    assert json.loads(resources["StripeSecret"]["Properties"]["SecretString"]) == {
        "webhook_secrets": []
    }


def test_stripe_api_key_is_readable_by_the_stripe_function_only(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    readers = []
    for name, resource in resources.items():
        for statement in iter_statements(resource):
            if any("StripeApiSecret" in json.dumps(r) for r in as_list(statement["Resource"])):
                readers.append((name, sorted(as_list(statement["Action"]))))
    assert readers == [("StripeEventFunction", ["secretsmanager:GetSecretValue"])]
    # Passed by ARN only, and only to that function.
    for name in FUNCTIONS:
        variables = function_props(template, name)["Environment"]["Variables"]
        named = [key for key, value in variables.items() if "StripeApiSecret" in json.dumps(value)]
        assert named == (["STRIPE_API_SECRET_ARN"] if name == "StripeEventFunction" else []), name
    assert "StripeApiSecret" not in json.dumps(template["Globals"])


def test_stripe_api_url_parameter(template: dict[str, Any]) -> None:
    assert template["Parameters"]["StripeApiUrl"]["Default"] == "https://api.stripe.com"


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    expected = {
        "ApiUrl",
        "SignupUrl",
        "EcwidWebhookUrl",
        "StripeWebhookUrl",
        "IdempotencyTableName",
        "LedgerTableName",
        "ParkedWebhooksTableName",
        "EcwidOrderFunctionName",
        *(f"{secret}Arn" for secret in SECRETS),
    }
    for queue_name, dlq_name, _ in SOURCES.values():
        expected |= {f"{queue_name}Url", f"{dlq_name}Url"}
    assert expected <= set(outputs)
    for name, output in outputs.items():
        assert output.get("Description"), name


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric"),
    [
        ("SignupErrorsAlarm", "AWS/Lambda", "Errors"),
        ("EcwidOrderErrorsAlarm", "AWS/Lambda", "Errors"),
        ("StripeEventErrorsAlarm", "AWS/Lambda", "Errors"),
        ("SignupThrottlesAlarm", "AWS/Lambda", "Throttles"),
        ("EcwidOrderThrottlesAlarm", "AWS/Lambda", "Throttles"),
        ("StripeEventThrottlesAlarm", "AWS/Lambda", "Throttles"),
        ("HttpApi5xxAlarm", "AWS/ApiGateway", "5xx"),
    ],
)
def test_operational_alarms(
    resources: dict[str, Any], alarm: str, namespace: str, metric: str
) -> None:
    props = resources[alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert props["Threshold"] == 0
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert "AlarmActions" in props


def test_dashboard_shows_every_source_metric(resources: dict[str, Any]) -> None:
    body = sub_string(resources["Dashboard"]["Properties"]["DashboardBody"])
    for metric in ("Accepted", "Processed", "NotReferred", "Retried", "DeadLettered"):
        assert f'"{metric}"' in body
    for queue in (
        "SignupDeadLetterQueue",
        "EcwidOrderDeadLetterQueue",
        "StripeEventDeadLetterQueue",
    ):
        assert queue in body
    for metric in ("StaleWebhook", "FutureWebhook", "ParkedWebhook", "ParkedWebhookDropped"):
        assert f'"{metric}"' in body

"""Structural checks of template.yaml.

The template is the single source of routes, queues, tables and environment; the local stack
and the code read it. These tests pin the contracts the code relies on and the safety
properties (dead-letter queues, retained tables, one role per function, secrets by ARN only,
rules that keep a prod stack honest, alarms on what matters). What IAM grants once SAM has
transformed the template is tested in test_template_transformed.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(name: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attribute]}


# source -> its functions, queues and the metric dimension value its code emits
SOURCES = {
    "signup": {
        "prefix": "Signup",
        "code": "functions/signup/",
        "ingest": "SignupIngestFunction",
        "process": "SignupProcessFunction",
        "queue": "SignupQueue",
        "dlq": "SignupDeadLetterQueue",
        "concurrency": "SignupProcessingMaxConcurrency",
    },
    "ecwid": {
        "prefix": "EcwidOrder",
        "code": "functions/ecwid_order/",
        "ingest": "EcwidOrderIngestFunction",
        "process": "EcwidOrderProcessFunction",
        "queue": "EcwidOrderQueue",
        "dlq": "EcwidOrderDeadLetterQueue",
        "concurrency": "ProcessingMaxConcurrency",
    },
    "stripe": {
        "prefix": "StripeEvent",
        "code": "functions/stripe_event/",
        "ingest": "StripeEventIngestFunction",
        "process": "StripeEventProcessFunction",
        "queue": "StripeEventQueue",
        "dlq": "StripeEventDeadLetterQueue",
        "concurrency": "ProcessingMaxConcurrency",
    },
}
INGEST = tuple(str(s["ingest"]) for s in SOURCES.values())
PROCESS = tuple(str(s["process"]) for s in SOURCES.values())
# The nightly reconciliation: a scheduled planner and the worker of its chunk queue.
RECONCILE = ("ReconcileScheduleFunction", "ReconcileWorkerFunction")
FUNCTIONS = INGEST + PROCESS + RECONCILE

# (method, path) -> function that must serve it: only ingest functions answer the internet.
ROUTES = {
    ("POST", "/signup"): "SignupIngestFunction",
    ("OPTIONS", "/signup"): "SignupIngestFunction",
    ("POST", "/webhooks/ecwid"): "EcwidOrderIngestFunction",
    ("POST", "/webhooks/stripe"): "StripeEventIngestFunction",
}

SECRETS = (
    "PartneroSecret",
    "EcwidSecret",
    "EcwidWebhookSecret",
    "StripeSecret",
    "StripeApiSecret",
    "SignupSecret",
)

COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME": "partnero-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "PartneroBridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "BRIDGE_STAGE": ref("Stage"),
}


def _process_env(source: str) -> dict[str, Any]:
    """What every process function reads: its queues, idempotency, ledger, retries, Partnero."""
    queues = SOURCES[source]
    return {
        "BRIDGE_WORK_QUEUE_URL": ref(str(queues["queue"])),
        "BRIDGE_DEAD_LETTER_QUEUE_URL": ref(str(queues["dlq"])),
        "BRIDGE_IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
        "BRIDGE_LEDGER_TABLE": ref("LedgerTable"),
        "BRIDGE_RETRY_WINDOW_SECONDS": ref("RetryWindowSeconds"),
        "BRIDGE_MAX_RECEIVES": ref("MaxReceives"),
        "BRIDGE_RETRY_BASE_SECONDS": ref("RetryBaseSeconds"),
        "BRIDGE_RETRY_MAX_SECONDS": ref("RetryMaxSeconds"),
        "PARTNERO_API_URL": ref("PartneroApiUrl"),
        "PARTNERO_SECRET_ARN": ref("PartneroSecret"),
    }


_SALE_RULES = {
    "PARTNERO_PROGRAM_CURRENCY": ref("PartneroProgramCurrency"),
    "PARTNERO_CONVERTS_CURRENCIES": ref("PartneroConvertsCurrencies"),
    "BRIDGE_SIGNUP_WAIT_SECONDS": ref("SignupWaitSeconds"),
    # The payment's delivery history, written with its ledger record.
    "BRIDGE_HISTORY_RETENTION_DAYS": ref("HistoryRetentionDays"),
}

_SALE_SOURCES = {
    "ECWID_API_URL": ref("EcwidApiUrl"),
    "ECWID_API_SECRET_ARN": ref("EcwidSecret"),
    "ECWID_AMOUNT_BASIS": ref("EcwidAmountBasis"),
    "ECWID_PARTNER_FIELD": ref("EcwidPartnerField"),
    "ECWID_CUSTOMER_KEY": ref("EcwidCustomerKey"),
    "ECWID_CURRENCY": ref("EcwidCurrency"),
    "ECWID_PAID_STATUSES": ref("EcwidPaidStatuses"),
    "ECWID_PRODUCT_ID": ref("EcwidProductId"),
    "STRIPE_API_URL": ref("StripeApiUrl"),
    "STRIPE_API_SECRET_ARN": ref("StripeApiSecret"),
    "STRIPE_LIVEMODE": ref("StripeLivemode"),
    "STRIPE_COUNT_OUT_OF_BAND": ref("StripeCountOutOfBand"),
    "STRIPE_AMOUNT_BASIS": ref("StripeAmountBasis"),
}

# Exactly what each function gets besides COMMON_ENV: ingest functions never see the
# Partnero key, an API credential, the ledger or the idempotency table.
FUNCTION_ENV: dict[str, dict[str, Any]] = {
    "SignupIngestFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("SignupQueue"),
        "SIGNUP_ALLOWED_ORIGINS": {"Fn::Join": [",", ref("SignupAllowedOrigins")]},
        "SIGNUP_REQUIRE_SIGNATURE": ref("SignupRequireSignature"),
        "SIGNUP_SECRET_ARN": ref("SignupSecret"),
        "SIGNUP_RATE_LIMIT_PER_MINUTE": ref("SignupRateLimitPerMinute"),
        "SIGNUP_TRUSTED_PROXY_HEADER": ref("SignupTrustedProxyHeader"),
        "SIGNUP_SALES_CLAIMED_BY": ref("SignupSalesClaimedBy"),
        "BRIDGE_RATE_LIMIT_TABLE": ref("RateLimitTable"),
    },
    "SignupProcessFunction": {
        **_process_env("signup"),
        "BRIDGE_RETRIGGER_DAYS": ref("RetriggerDays"),
        "BRIDGE_ECWID_QUEUE_URL": ref("EcwidOrderQueue"),
        "BRIDGE_STRIPE_QUEUE_URL": ref("StripeEventQueue"),
        "SIGNUP_SALES_CLAIMED_BY": ref("SignupSalesClaimedBy"),
        "SIGNUP_PARTNER_BUDGET_PER_HOUR": ref("SignupPartnerBudgetPerHour"),
        "BRIDGE_RATE_LIMIT_TABLE": ref("RateLimitTable"),
    },
    "EcwidOrderIngestFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("EcwidOrderQueue"),
        "ECWID_WEBHOOK_SECRET_ARN": ref("EcwidWebhookSecret"),
        "ECWID_STORE_IDS": ref("EcwidStoreIds"),
        "ECWID_MAX_EVENT_AGE_SECONDS": ref("EcwidMaxEventAgeSeconds"),
        "BRIDGE_PARKED_TABLE": ref("ParkedWebhooksTable"),
    },
    "EcwidOrderProcessFunction": {
        **_process_env("ecwid"),
        **_SALE_RULES,
        "ECWID_API_URL": ref("EcwidApiUrl"),
        "ECWID_API_SECRET_ARN": ref("EcwidSecret"),
        "ECWID_AMOUNT_BASIS": ref("EcwidAmountBasis"),
        "ECWID_PARTNER_FIELD": ref("EcwidPartnerField"),
        "ECWID_CUSTOMER_KEY": ref("EcwidCustomerKey"),
        "ECWID_CURRENCY": ref("EcwidCurrency"),
        "ECWID_PAID_STATUSES": ref("EcwidPaidStatuses"),
        "ECWID_PRODUCT_ID": ref("EcwidProductId"),
    },
    "StripeEventIngestFunction": {
        "BRIDGE_WORK_QUEUE_URL": ref("StripeEventQueue"),
        "STRIPE_SECRET_ARN": ref("StripeSecret"),
        "STRIPE_LIVEMODE": ref("StripeLivemode"),
    },
    "StripeEventProcessFunction": {
        **_process_env("stripe"),
        **_SALE_RULES,
        "STRIPE_API_URL": ref("StripeApiUrl"),
        "STRIPE_API_SECRET_ARN": ref("StripeApiSecret"),
        "STRIPE_LIVEMODE": ref("StripeLivemode"),
        "STRIPE_COUNT_OUT_OF_BAND": ref("StripeCountOutOfBand"),
        "STRIPE_AMOUNT_BASIS": ref("StripeAmountBasis"),
    },
    # Plans chunks only: no API credential, no table.
    "ReconcileScheduleFunction": {
        "RECONCILE_QUEUE_URL": ref("ReconcileQueue"),
        "RECONCILE_DAYS": ref("ReconcileDays"),
        "RECONCILE_CHUNK_HOURS": ref("ReconcileChunkHours"),
        "RECONCILE_HEAL": ref("ReconcileHeal"),
        "ECWID_STORE_IDS": ref("EcwidStoreIds"),
    },
    # Decides as the process functions do; heals through their work queues. No
    # idempotency table and no dead-letter queue of theirs: it only sends re-checks.
    "ReconcileWorkerFunction": {
        "BRIDGE_LEDGER_TABLE": ref("LedgerTable"),
        "BRIDGE_ECWID_QUEUE_URL": ref("EcwidOrderQueue"),
        "BRIDGE_STRIPE_QUEUE_URL": ref("StripeEventQueue"),
        "PARTNERO_API_URL": ref("PartneroApiUrl"),
        "PARTNERO_SECRET_ARN": ref("PartneroSecret"),
        "PARTNERO_PROGRAM_CURRENCY": ref("PartneroProgramCurrency"),
        "PARTNERO_CONVERTS_CURRENCIES": ref("PartneroConvertsCurrencies"),
        "BRIDGE_SIGNUP_WAIT_SECONDS": ref("SignupWaitSeconds"),
        "ECWID_STORE_IDS": ref("EcwidStoreIds"),
        **_SALE_SOURCES,
        "RECONCILE_API_SHARE": ref("ReconcileApiShare"),
    },
}

# Actions for which AWS only accepts Resource "*" (X-Ray has no resource-level permissions).
ACTIONS_REQUIRING_STAR_RESOURCE = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


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
    """Every IAM policy statement anywhere in ``node``."""
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


def role_of(resources: dict[str, Any], function: str) -> str:
    role = resources[function]["Properties"]["Role"]
    assert isinstance(role, dict), f"{function}: Role must be a GetAtt of the stack's own role"
    assert list(role) == ["Fn::GetAtt"], role
    logical_id, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)


# ---------------------------------------------------------------------------- functions


@pytest.mark.parametrize("name", FUNCTIONS)
def test_runtime_is_python313_on_arm64(template: dict[str, Any], name: str) -> None:
    props = function_props(template, name)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Tracing"] == "Active"
    assert props["Layers"] == [ref("CommonLayer")]


@pytest.mark.parametrize("source", list(SOURCES))
def test_each_source_has_an_ingest_and_a_process_function_on_the_same_code(
    template: dict[str, Any], source: str
) -> None:
    spec = SOURCES[source]
    ingest = function_props(template, str(spec["ingest"]))
    process = function_props(template, str(spec["process"]))
    assert ingest["CodeUri"] == process["CodeUri"] == spec["code"]
    assert (ingest["Handler"], process["Handler"]) == ("ingest.handler", "process.handler")
    code = REPO_ROOT / str(spec["code"])
    assert (code / "ingest.py").is_file()
    assert (code / "process.py").is_file()
    # An ingest function answers within API Gateway's 30 s; a process function has room for
    # a full batch of slow calls.
    assert (ingest["Timeout"], process["Timeout"]) == (15, 120)


def test_no_function_uses_a_global_handler_or_timeout(template: dict[str, Any]) -> None:
    globals_fn = template["Globals"]["Function"]
    assert "Handler" not in globals_fn
    assert "Timeout" not in globals_fn


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


def test_routes_point_to_the_ingest_functions(resources: dict[str, Any]) -> None:
    found: dict[tuple[str, str], str] = {}
    for name in FUNCTIONS:
        for props in events_of_type(resources, name, "HttpApi"):
            assert props["ApiId"] == ref("HttpApi"), name
            key = (props["Method"].upper(), props["Path"])
            assert key not in found, f"route {key} defined twice"
            found[key] = name
    assert found == ROUTES


@pytest.mark.parametrize("name", FUNCTIONS)
def test_ingest_answers_http_only_and_process_reads_its_queue_only(
    resources: dict[str, Any], name: str
) -> None:
    kinds = {e["Type"] for e in resources[name]["Properties"].get("Events", {}).values()}
    # The scheduled function is started by its AWS::Scheduler::Schedule, not an event.
    expected = set() if name == "ReconcileScheduleFunction" else {"SQS"}
    assert kinds == ({"HttpApi"} if name in INGEST else expected)


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


@pytest.mark.parametrize("source", list(SOURCES))
def test_process_function_takes_batches_of_its_queue_and_is_capped(
    resources: dict[str, Any], source: str
) -> None:
    spec = SOURCES[source]
    (event,) = events_of_type(resources, str(spec["process"]), "SQS")
    assert event["Queue"] == get_att(str(spec["queue"]), "Arn")
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # As many records as fit the timeout when each waits out every client timeout
    # (tests/unit/test_retry_window.py checks the arithmetic).
    assert event["BatchSize"] == {"signup": 7, "ecwid": 1, "stripe": 1}[source]
    # Sign-ups have a cap of their own: a sign-up flood cannot take Partnero's rate limit
    # from sales.
    assert event["ScalingConfig"]["MaximumConcurrency"] == ref(str(spec["concurrency"]))


def test_concurrency_caps(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["ProcessingMaxConcurrency"]["Default"] == 5
    assert params["SignupProcessingMaxConcurrency"]["Default"] == 2
    for name in ("ProcessingMaxConcurrency", "SignupProcessingMaxConcurrency"):
        # The minimum that SQS event source ScalingConfig.MaximumConcurrency accepts.
        assert params[name]["MinValue"] == 2


@pytest.mark.parametrize("source", list(SOURCES))
def test_work_queue_redrives_to_its_dead_letter_queue(
    template: dict[str, Any], resources: dict[str, Any], source: str
) -> None:
    spec = SOURCES[source]
    queue = resources[str(spec["queue"])]["Properties"]
    dlq_name = str(spec["dlq"])
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
    timeout = function_props(template, str(spec["process"]))["Timeout"]
    assert queue["VisibilityTimeout"] == 720 >= 6 * timeout
    # Kept 14 days, longer than the longest retry window the template allows.
    assert queue["MessageRetentionPeriod"] == 1209600
    assert (
        queue["MessageRetentionPeriod"] > template["Parameters"]["RetryWindowSeconds"]["MaxValue"]
    )

    # Only the source's own work queue may redrive into its DLQ (ARN built from its name).
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (source_arn,) = allow["sourceQueueArns"]
    assert sub_string(source_arn).endswith(":" + sub_string(queue["QueueName"]))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_a_log_group_of_its_own_with_retention(
    resources: dict[str, Any], name: str
) -> None:
    group_id = f"{name}LogGroup"
    props = resources[name]["Properties"]
    assert props["LoggingConfig"] == {"LogGroup": ref(group_id)}
    group = resources[group_id]["Properties"]
    assert sub_string(group["LogGroupName"]).startswith("/aws/lambda/${AWS::StackName}/")
    assert group["RetentionInDays"] == ref("LogRetentionDays")


def test_log_group_names_are_distinct(resources: dict[str, Any]) -> None:
    names = [sub_string(resources[f"{n}LogGroup"]["Properties"]["LogGroupName"]) for n in FUNCTIONS]
    assert len(set(names)) == len(FUNCTIONS)


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


def test_rate_limit_table(resources: dict[str, Any]) -> None:
    # The layout partnero_bridge.ratelimit writes: key pk, expiry in expires_at.
    props = resources["RateLimitTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
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
def test_function_environment_is_exactly_what_its_code_reads(
    template: dict[str, Any], name: str
) -> None:
    variables = function_props(template, name)["Environment"]["Variables"]
    assert variables == {**COMMON_ENV, **FUNCTION_ENV[name]}


def test_global_environment_names_nothing_a_function_may_not_need(
    template: dict[str, Any],
) -> None:
    assert template["Globals"]["Function"]["Environment"]["Variables"] == COMMON_ENV


@pytest.mark.parametrize("name", INGEST)
def test_ingest_is_told_of_no_credential_ledger_or_idempotency_table(
    template: dict[str, Any], name: str
) -> None:
    text = json.dumps(function_props(template, name)["Environment"])
    for forbidden in (
        "PartneroSecret",
        'EcwidSecret"',
        "StripeApiSecret",
        "LedgerTable",
        "IdempotencyTable",
    ):
        assert forbidden not in text, f"{name} names {forbidden}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_environment_values_are_what_local_tooling_resolves(
    template: dict[str, Any], name: str
) -> None:
    # Local tooling resolves only !Ref, and !Join of a list parameter, in environments;
    # anything else would drift.
    parameters = template["Parameters"]
    for key, value in function_props(template, name)["Environment"]["Variables"].items():
        if isinstance(value, dict) and list(value) == ["Fn::Join"]:
            separator, joined = value["Fn::Join"]
            assert separator == ","
            assert parameters[joined["Ref"]]["Type"] == "CommaDelimitedList", f"{name}.{key}"
        elif isinstance(value, dict):
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


def test_stripe_api_key_is_readable_by_the_stripe_process_function_only(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    readers = []
    for name, resource in resources.items():
        for statement in iter_statements(resource):
            resources_named = as_list(statement.get("Resource", []))
            if any("StripeApiSecret" in json.dumps(r) for r in resources_named):
                readers.append((name, sorted(as_list(statement["Action"]))))
    assert readers == [
        ("StripeEventProcessRole", ["secretsmanager:GetSecretValue"]),
        ("ReconcileWorkerRole", ["secretsmanager:GetSecretValue"]),
    ]
    assert role_of(resources, "StripeEventProcessFunction") == "StripeEventProcessRole"
    # Passed by ARN only, and only to that function.
    for name in FUNCTIONS:
        variables = function_props(template, name)["Environment"]["Variables"]
        named = [key for key, value in variables.items() if "StripeApiSecret" in json.dumps(value)]
        readers_fn = ("StripeEventProcessFunction", "ReconcileWorkerFunction")
        expected = ["STRIPE_API_SECRET_ARN"] if name in readers_fn else []
        assert named == expected, name
    assert "StripeApiSecret" not in json.dumps(template["Globals"])


# ---------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_runs_in_a_role_of_its_own(resources: dict[str, Any], name: str) -> None:
    props = resources[name]["Properties"]
    # With Role set SAM generates no role, so it attaches no managed policy either.
    assert "Policies" not in props
    role = role_of(resources, name)
    assert role == name.replace("Function", "Role")
    assert resources[role]["Type"] == "AWS::IAM::Role"
    trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert "ManagedPolicyArns" not in resources[role]["Properties"]
    users = [n for n in FUNCTIONS if role_of(resources, n) == role]
    assert users == [name]


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


# ---------------------------------------------------------------------------- parameters


def test_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["Stage"]["AllowedValues"] == ["dev", "prod"]
    assert params["Stage"]["Default"] == "dev"
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


def test_retry_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    window = params["RetryWindowSeconds"]
    assert (window["Type"], window["Default"], window["MinValue"], window["MaxValue"]) == (
        "Number",
        259200,
        60,
        864000,
    )
    # A backstop for crashes: the window ends retries long before.
    assert (params["MaxReceives"]["Default"], params["MaxReceives"]["MaxValue"]) == (200, 1000)
    assert params["RetryBaseSeconds"]["Default"] == 30
    assert params["RetryMaxSeconds"]["Default"] == 3600


def test_signup_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["SignupAllowedOrigins"]["Type"] == "CommaDelimitedList"
    assert params["SignupAllowedOrigins"]["Default"] == ""
    assert (
        params["SignupRateLimitPerMinute"]["Default"],
        params["SignupRateLimitPerMinute"]["MinValue"],
    ) == (10, 0)
    assert params["SignupTrustedProxyHeader"]["Default"] == ""
    assert params["SignupSalesClaimedBy"]["AllowedValues"] == ["any", "signed"]
    assert params["SignupSalesClaimedBy"]["Default"] == "any"
    assert params["SignupPartnerBudgetPerHour"]["Default"] == 200


def test_alarm_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["RetryingAlarmSeconds"]["Default"] == 3600
    # Well inside the retry window: there is time to act before anything is dead-lettered.
    assert params["RetryingAlarmSeconds"]["Default"] < params["RetryWindowSeconds"]["Default"]
    assert params["ServerErrorAlarmThreshold"]["Default"] == 5
    assert params["ServerErrorAlarmThreshold"]["MinValue"] == 1


def _defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}


def _env_as_deployed(
    template: dict[str, Any], name: str, parameters: Mapping[str, str]
) -> dict[str, str]:
    def value_of(value: Any) -> str:
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, joined = value["Fn::Join"]
            members = [m.strip() for m in parameters[joined["Ref"]].split(",")]
            return str(separator).join(members)
        if isinstance(value, dict):  # a parameter's value, or a resource's name or ARN
            return parameters.get(value["Ref"], "resource-reference")
        return str(value)

    variables = function_props(template, name)["Environment"]["Variables"]
    return {key: value_of(v) for key, v in variables.items()}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_parameter_defaults_are_valid_settings(template: dict[str, Any], stage: str) -> None:
    """Every function's environment, with parameter defaults, is accepted by the code."""
    from partnero_bridge.config import BridgeSettings

    parameters = {**_defaults(template), "Stage": stage}
    for name in FUNCTIONS:
        settings = BridgeSettings.from_environ(_env_as_deployed(template, name, parameters))
        if name in PROCESS:
            assert settings.retry_window_seconds == 259200
            assert settings.max_receives == 200


def test_allowed_values_of_every_parameter_are_valid_settings(template: dict[str, Any]) -> None:
    from partnero_bridge.config import BridgeSettings

    defaults = {**_defaults(template), "SignupAllowedOrigins": "https://shop.example"}
    for parameter, spec in template["Parameters"].items():
        values = [spec.get("MinValue"), spec.get("MaxValue"), *spec.get("AllowedValues", [])]
        for value in (v for v in values if v is not None):
            for name in FUNCTIONS:
                parameters = {**defaults, parameter: str(value)}
                BridgeSettings.from_environ(_env_as_deployed(template, name, parameters))


# ---------------------------------------------------------------------------- rules


def _evaluate(node: Any, parameters: Mapping[str, Any]) -> Any:
    """CloudFormation's rule functions used by the template, evaluated for given values."""
    if isinstance(node, dict):
        ((name, arg),) = node.items()
        if name == "Ref":
            return parameters[arg]
        values = [_evaluate(a, parameters) for a in arg]
        if name == "Fn::Equals":
            return values[0] == values[1]
        if name == "Fn::Not":
            return not values[0]
        if name == "Fn::And":
            return all(values)
        if name == "Fn::Or":
            return any(values)
        if name == "Fn::Contains":
            return values[1] in values[0]
        raise AssertionError(f"rule function {name} not modelled here")
    if isinstance(node, list):
        return [_evaluate(v, parameters) for v in node]
    return node


def _refused(template: dict[str, Any], **values: Any) -> list[str]:
    """Names of the rules whose assertions fail for these parameter values."""
    parameters: dict[str, Any] = {
        name: spec.get("Default", "") for name, spec in template["Parameters"].items()
    }
    parameters["SignupAllowedOrigins"] = [""]
    parameters.update(values)
    refused = []
    for name, rule in template["Rules"].items():
        applies = _evaluate(rule.get("RuleCondition", True), parameters)
        assertions = [_evaluate(a["Assert"], parameters) for a in rule["Assertions"]]
        assert all(a.get("AssertDescription") for a in rule["Assertions"]), name
        if applies and not all(assertions):
            refused.append(name)
    return refused


TOPIC = "arn:aws:sns:eu-west-1:123456789012:bridge-alarms"


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        pytest.param({"Stage": "dev"}, [], id="dev-without-topic"),
        pytest.param({"Stage": "prod"}, ["ProdHasAlarmTopic"], id="prod-without-topic"),
        pytest.param({"Stage": "prod", "AlarmTopicArn": TOPIC}, [], id="prod-with-topic"),
        pytest.param(
            {"Stage": "prod", "AlarmTopicArn": TOPIC, "SignupAllowedOrigins": ["*"]},
            ["ProdSignupOriginsAreListed"],
            id="prod-any-origin",
        ),
        pytest.param(
            {
                "Stage": "prod",
                "AlarmTopicArn": TOPIC,
                "SignupAllowedOrigins": ["https://shop.example", "*"],
            },
            ["ProdSignupOriginsAreListed"],
            id="prod-any-origin-among-others",
        ),
        pytest.param(
            {
                "Stage": "prod",
                "AlarmTopicArn": TOPIC,
                "SignupAllowedOrigins": ["https://shop.example", "https://www.shop.example"],
            },
            [],
            id="prod-listed-origins",
        ),
        pytest.param({"Stage": "dev", "SignupAllowedOrigins": ["*"]}, [], id="dev-any-origin"),
    ],
)
def test_rules_keep_a_prod_stack_honest(
    template: dict[str, Any], values: dict[str, Any], refused: list[str]
) -> None:
    assert set(template["Rules"]) == {"ProdHasAlarmTopic", "ProdSignupOriginsAreListed"}
    assert _refused(template, **values) == refused


# ---------------------------------------------------------------------------- outputs


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
        "RateLimitTableName",
        "EcwidOrderIngestFunctionName",
        *(f"{secret}Arn" for secret in SECRETS),
    }
    for spec in SOURCES.values():
        expected |= {f"{spec['queue']}Url", f"{spec['dlq']}Url"}
    assert expected <= set(outputs)
    for name, output in outputs.items():
        assert output.get("Description"), name
    # `partnero-bridge parked replay` reads ECWID_STORE_IDS from the function that has it.
    assert outputs["EcwidOrderIngestFunctionName"]["Value"] == ref("EcwidOrderIngestFunction")
    assert "ECWID_STORE_IDS" in FUNCTION_ENV["EcwidOrderIngestFunction"]


# ---------------------------------------------------------------------------- alarms


def bridge_dimensions(source: str) -> list[dict[str, str]]:
    return [{"Name": "source", "Value": source}, {"Name": "service", "Value": "partnero-bridge"}]


def alarm_table() -> dict[str, tuple[str, str, list[dict[str, Any]], str, int, Any, str]]:
    """alarm -> (namespace, metric, dimensions, statistic, period, threshold, comparison)."""
    table: dict[str, tuple[str, str, list[dict[str, Any]], str, int, Any, str]] = {}
    for source, spec in SOURCES.items():
        prefix, dlq = str(spec["prefix"]), str(spec["dlq"])
        dlq_dimensions = [{"Name": "QueueName", "Value": get_att(dlq, "QueueName")}]
        table |= {
            f"{prefix}RetryingAgeAlarm": (
                "PartneroBridge",
                "OldestRetryingSeconds",
                bridge_dimensions(source),
                "Maximum",
                3600,
                ref("RetryingAlarmSeconds"),
                "GreaterThanThreshold",
            ),
            f"{prefix}DeadLetteredAlarm": (
                "PartneroBridge",
                "DeadLettered",
                bridge_dimensions(source),
                "Sum",
                300,
                0,
                "GreaterThanThreshold",
            ),
            f"{prefix}DeadLetterAlarm": (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                dlq_dimensions,
                "Maximum",
                60,
                0,
                "GreaterThanThreshold",
            ),
            # 5 days: well inside the DLQ's 14 days, even after a 3-day retry window.
            f"{prefix}DeadLetterAgeAlarm": (
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                dlq_dimensions,
                "Maximum",
                300,
                432000,
                "GreaterThanThreshold",
            ),
            f"{prefix}ServerErrorAlarm": (
                "PartneroBridge",
                "ServerError",
                bridge_dimensions(source),
                "Sum",
                300,
                ref("ServerErrorAlarmThreshold"),
                "GreaterThanOrEqualToThreshold",
            ),
        }
    table["PartnerSignupSpikeAlarm"] = (
        "PartneroBridge",
        "PartnerBudgetExceeded",
        bridge_dimensions("signup"),
        "Sum",
        300,
        0,
        "GreaterThanThreshold",
    )
    for source in ("stripe", "ecwid"):
        # One nightly run a day: a day's period keeps the alarm on until the next run.
        table[f"Reconcile{source.capitalize()}DriftAlarm"] = (
            "PartneroBridge",
            "DriftCount",
            bridge_dimensions(source),
            "Sum",
            86400,
            0,
            "GreaterThanThreshold",
        )
    table["ReconcileDeadLetterAlarm"] = (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": get_att("ReconcileDeadLetterQueue", "QueueName")}],
        "Maximum",
        300,
        0,
        "GreaterThanThreshold",
    )
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            table[f"{function.removesuffix('Function')}{metric}Alarm"] = (
                "AWS/Lambda",
                metric,
                [{"Name": "FunctionName", "Value": ref(function)}],
                "Sum",
                300,
                0,
                "GreaterThanThreshold",
            )
    return table


def test_the_alarms_are_exactly_these(resources: dict[str, Any]) -> None:
    alarms = {n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # The API Gateway 5xx alarm fired on any single 500: the bridge's ServerError replaces it.
    assert alarms == set(alarm_table())


@pytest.mark.parametrize("alarm", list(alarm_table()))
def test_alarm_watches_the_right_metric(resources: dict[str, Any], alarm: str) -> None:
    namespace, metric, dimensions, statistic, period, threshold, comparison = alarm_table()[alarm]
    props = resources[alarm]["Properties"]
    assert props["AlarmDescription"]
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert props["Dimensions"] == dimensions
    assert (props["Statistic"], props["Period"]) == (statistic, period)
    # The retrying age is sent only when a retry happens (at least hourly): one breach in
    # two hours keeps that alarm on between retries instead of flapping back to OK.
    evaluation = (2, 1) if alarm.endswith("RetryingAgeAlarm") else (1, None)
    assert (props["EvaluationPeriods"], props.get("DatapointsToAlarm")) == evaluation
    assert (props["Threshold"], props["ComparisonOperator"]) == (threshold, comparison)
    assert props["TreatMissingData"] == "notBreaching"
    notify = {"Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]}
    assert props["AlarmActions"] == notify
    assert props["OKActions"] == notify


def test_bridge_metrics_carry_exactly_the_dimensions_the_alarms_name(
    template: dict[str, Any],
) -> None:
    """Powertools adds ``service`` to every metric of the blob; an alarm must name the same
    dimension set, or it watches a metric nobody emits."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    metrics = Metrics(
        namespace=environment["POWERTOOLS_METRICS_NAMESPACE"],
        service=environment["POWERTOOLS_SERVICE_NAME"],
    )
    metrics.set_default_dimensions(source="stripe")
    metrics.add_metric(name="OldestRetryingSeconds", unit=MetricUnit.Seconds, value=7200)
    blob = metrics.serialize_metric_set()
    metrics.clear_metrics()
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    emitted = {name: blob[name] for name in directive["Dimensions"][0]}
    alarm = resources_alarm(template, "StripeEventRetryingAgeAlarm")
    assert directive["Namespace"] == alarm["Namespace"]
    assert emitted == {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def resources_alarm(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][name]["Properties"]
    return props


def test_dashboard_shows_every_function_and_metric(resources: dict[str, Any]) -> None:
    # Valid JSON as it is: the ${...} that Fn::Sub fills in are all inside strings.
    body = json.loads(sub_string(resources["Dashboard"]["Properties"]["DashboardBody"]))
    shown = [
        item
        for widget in body["widgets"]
        for row in widget["properties"]["metrics"]
        for item in row
        if isinstance(item, str)
    ]
    for metric in (
        "Accepted",
        "Processed",
        "NotReferred",
        "Retried",
        "DeadLettered",
        "OldestRetryingSeconds",
        "ServerError",
        "RateLimited",
        "RateLimitUnavailable",
        "PartnerBudgetExceeded",
        "StaleWebhook",
        "FutureWebhook",
        "ParkedWebhook",
        "ParkedWebhookDropped",
        "ApproximateAgeOfOldestMessage",
    ):
        assert metric in shown, metric
    for function in FUNCTIONS:
        assert f"${{{function}}}" in shown, function
    for spec in SOURCES.values():
        assert f"${{{spec['dlq']}.QueueName}}" in shown


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("", True),
        ("CloudFront-Viewer-Address", True),
        ("X-Forwarded-For", False),
        ("x-forwarded-for", False),
        ("Forwarded", False),
        ("X-Forwarded-For-Real", True),
        ("Bad Header", False),
    ],
)
def test_the_proxy_header_parameter_refuses_headers_the_client_writes(
    template: dict[str, Any], header: str, allowed: bool
) -> None:
    # Refused at deploy: the settings would refuse it too, and every sign-up would get 503.
    pattern = template["Parameters"]["SignupTrustedProxyHeader"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, header)) is allowed


def test_the_ledger_expires_only_reconciliation_working_items(resources: dict[str, Any]) -> None:
    """The ledger's TTL attribute is one no record of what Partnero holds ever carries."""
    from partnero_bridge.ledger import records
    from partnero_bridge.ledger.checkpoints import Checkpoint, ResultPage

    ttl = resources["LedgerTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    kept = [
        model
        for model in vars(records).values()
        if isinstance(model, type)
        and issubclass(model, records.LedgerRecord)
        and model is not records.LedgerRecord
    ]
    assert kept, "the ledger's record models"
    for model in kept:
        assert ttl["AttributeName"] not in model.model_fields, model.__name__
    for working in (Checkpoint, ResultPage):
        assert ttl["AttributeName"] in working.model_fields

"""The template as SAM deploys it: aws-sam-translator's transform, and the IAM statements
that apply to each function's role (inline, managed and policy resources).

Shared by the least-privilege test (what each role grants) and the IAM coverage test (that
the grants allow every AWS call the functions make).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

REGION = "eu-west-1"

# The AWS managed policies SAM attaches to the roles it generates for functions, as AWS
# publishes them. A managed policy not listed here fails the test: it cannot be checked.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaKinesisExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:ListStreams",
                "kinesis:SubscribeToShard",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaVPCAccessExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
}


def transform(template: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudFormation template SAM deploys for ``template`` (as `sam deploy` would,
    with the local code already uploaded: CodeUri and ContentUri become S3 URIs)."""
    import boto3
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    plain: dict[str, Any] = json.loads(json.dumps(template))
    for resource in plain["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://deployment-bucket/{props[key].strip('/')}"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    transformed: dict[str, Any] = translator.translate(
        plain,
        parameter_values=dict(parameters),
        get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws") or {},
    )
    return transformed


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def managed_policy_statements(arn: Any) -> list[dict[str, Any]]:
    text = arn if isinstance(arn, str) else json.dumps(arn)
    for name, statements in MANAGED_POLICIES.items():
        if text.endswith(f":policy/{name}"):
            return statements
    raise AssertionError(f"managed policy {text} is not known to this test: cannot check it")


def role_statements(resources: Mapping[str, Any], role: str) -> Iterator[dict[str, Any]]:
    """Every statement that applies to ``role``: inline, managed, and policy resources."""
    props = resources[role]["Properties"]
    for policy in props.get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])
    for arn in props.get("ManagedPolicyArns", []):
        yield from managed_policy_statements(arn)
    for resource in resources.values():
        kind, attached = resource["Type"], resource.get("Properties", {})
        if (
            kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
            and {"Ref": role} in attached.get("Roles", [])
        ) or (kind == "AWS::IAM::RolePolicy" and attached.get("RoleName") == {"Ref": role}):
            yield from as_list(attached["PolicyDocument"]["Statement"])


def role_of(function: Mapping[str, Any]) -> str:
    """The logical id of a transformed function's role (its Role is !GetAtt <Role>.Arn)."""
    role = function["Properties"]["Role"]
    assert isinstance(role, dict), role
    assert list(role) == ["Fn::GetAtt"], role
    logical_id, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)

"""Does each function's role allow the AWS calls its code makes? moto does not enforce IAM,
so this module records the calls and evaluates them against the roles itself.

- :class:`CallRecorder` sees every botocore API call of the process through botocore's
  event system (a ``before-parameter-build`` handler every new session gets), attributes
  it to the function being invoked (or to its event source mapping, which polls with the
  function's role), and proves it saw everything: a request that reaches moto without
  having passed the handler is counted as unseen.
- :func:`required_permissions` turns one call into the IAM actions and resource ARNs AWS
  authorises it as (``TransactWriteItems`` needs ``PutItem``/``UpdateItem``/... on each
  item's table; SQS batch calls need the single-message action).
- :class:`RolePolicy` evaluates those against a role's statements in the SAM-transformed
  template, with the template's names resolved to the emulated resources' ARNs.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from partnero_bridge_cli.local.aws import LocalResources
from partnero_bridge_cli.local.template import Resolver
from tests.support.sam_transform import as_list, role_of, role_statements

CODE = "code"
EVENT_SOURCE = "event source mapping"
# Names the recorders that saw a request's call (in botocore's per-request context).
_SEEN = "iam_coverage_seen_by"


class Permission(NamedTuple):
    """One IAM authorisation: ``("sqs:SendMessage", "arn:aws:sqs:us-east-1:1234:queue")``."""

    action: str
    resource: str


@dataclass(frozen=True)
class ApiCall:
    """One botocore API call: who made it (a function's logical id and whether its code or
    its event source mapping; None for the test's own calls) and what was asked."""

    function: str | None
    by: str | None
    service: str
    operation: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass
class CallRecorder:
    """Records every API call made while installed (see :meth:`install`)."""

    calls: list[ApiCall] = field(default_factory=list)
    # Requests that reached moto without passing the recorder's handler: a client from a
    # session older than the recorder. Any would make "every call is allowed" unproven.
    unseen: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _acting: list[tuple[str, str]] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Register the handler for every botocore session created from now on (and make
        boto3 create a new default session), and watch moto's request stub for requests the
        handler did not see. Undone with ``monkeypatch``."""
        import boto3
        import botocore.handlers
        from moto.core.botocore_stubber import BotocoreStubber

        handlers = [*botocore.handlers.BUILTIN_HANDLERS, ("before-parameter-build", self._seen)]
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

        stub = BotocoreStubber.__call__
        recorder = self

        def watched(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            if self.enabled and id(recorder) not in (request.context or {}).get(_SEEN, ()):
                recorder.unseen.append(f"{request.method} {request.url}")
            return stub(self, event_name, request, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", watched)

    @contextmanager
    def acting_as(self, function: str, by: str) -> Iterator[None]:
        """Attribute the calls made inside to ``function`` (``by`` CODE or EVENT_SOURCE).

        A plain stack, not a context variable: the in-process harness is sequential, and a
        thread the code might start must still count as the function's."""
        self._acting.append((function, by))
        try:
            yield
        finally:
            self._acting.pop()

    def _seen(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        try:
            context.setdefault(_SEEN, set()).add(id(self))
            function, by = self._acting[-1] if self._acting else (None, None)
            self.calls.append(
                ApiCall(
                    function,
                    by,
                    str(model.service_model.service_name),
                    str(model.name),
                    copy.deepcopy(dict(params)),
                )
            )
        # A recording failure must not change what the code under test sees: reported.
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- calls -> IAM


class UnmappedCall(Exception):
    """A call this module cannot translate into IAM actions: extend required_permissions."""


class ResourceArns:
    """ARNs of the emulated stack's resources, by the names calls use for them."""

    def __init__(self, resources: LocalResources) -> None:
        self._by_name: dict[str, str] = {}
        for (logical_id, attribute), arn in resources.attributes.items():
            if attribute != "Arn":
                continue
            # Queues are called by URL, tables by name; both are their Ref.
            self._by_name[resources.refs[logical_id]] = arn
            self._by_name[arn] = arn
        for value in resources.refs.values():
            if ":secretsmanager:" in value:
                self._by_name[value] = value
                # A secret may be called by name: its ARN ends in the name, "-" and 6 chars.
                self._by_name[value.split(":secret:", 1)[1][:-7]] = value

    def __call__(self, name: str) -> str:
        # Anything else is no resource of the stack: no statement can name it.
        return self._by_name.get(name, f"<not a resource of the stack: {name}>")


_SQS_ACTION = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_TRANSACT_WRITE_ACTION = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_NOT_MAPPED = {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}


def required_permissions(call: ApiCall, arn: Callable[[str], str]) -> list[Permission]:
    """What AWS checks for ``call``, per the service authorization reference.

    SQS batch actions are authorised as their single-message action; a DynamoDB
    transaction as the per-item actions on each item's table (``ConditionCheck`` as
    ``dynamodb:ConditionCheckItem``); ``BatchWriteItem``/``BatchGetItem`` as themselves on
    each table; an ``IndexName`` targets ``<table ARN>/index/<name>``.
    Raises :class:`UnmappedCall` for anything else this module does not know.
    """
    service, operation, params = call.service, call.operation, call.params
    if service == "sqs" and "QueueUrl" in params:
        action = _SQS_ACTION.get(operation, operation)
        return [Permission(f"sqs:{action}", arn(params["QueueUrl"]))]
    if service == "dynamodb" and operation not in _NOT_MAPPED:
        if operation == "TransactWriteItems":
            return [
                Permission(f"dynamodb:{_TRANSACT_WRITE_ACTION[kind]}", arn(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        if operation == "TransactGetItems":
            return [
                Permission("dynamodb:GetItem", arn(item["Get"]["TableName"]))
                for item in params["TransactItems"]
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [Permission(f"dynamodb:{operation}", arn(t)) for t in params["RequestItems"]]
        if "TableName" in params:
            table = arn(params["TableName"])
            if params.get("IndexName"):
                table = f"{table}/index/{params['IndexName']}"
            return [Permission(f"dynamodb:{operation}", table)]
    if service == "secretsmanager" and "SecretId" in params:
        return [Permission(f"secretsmanager:{operation}", arn(params["SecretId"]))]
    raise UnmappedCall(f"{call.name}: no IAM translation for this call here")


# ---------------------------------------------------------------- roles


def _pattern(glob: str, case_sensitive: bool) -> re.Pattern[str]:
    # IAM wildcards: "*" any run of characters, "?" one character; nothing else is special.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


def label(value: Any) -> str:
    """A statement resource as the template names it: "SignupQueue.Arn", "PartneroSecret"."""
    if isinstance(value, dict) and list(value) == ["Ref"]:
        return str(value["Ref"])
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        attribute = value["Fn::GetAtt"]
        return ".".join(attribute) if isinstance(attribute, list) else str(attribute)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class Grant(NamedTuple):
    """One action on one resource of an Allow statement (patterns as resolved)."""

    sid: str
    action: str
    resource: str
    label: str

    def allows(self, permission: Permission) -> bool:
        return bool(
            _pattern(self.action, case_sensitive=False).fullmatch(permission.action)
            and _pattern(self.resource, case_sensitive=True).fullmatch(permission.resource)
        )


@dataclass(frozen=True)
class RolePolicy:
    """The Allow and Deny grants of one role (no conditions: a statement with one, or with
    NotAction/NotResource, cannot be decided here and is refused when read)."""

    allow: tuple[Grant, ...]
    deny: tuple[Grant, ...]

    def allows(self, permission: Permission) -> bool:
        if any(grant.allows(permission) for grant in self.deny):
            return False
        return any(grant.allows(permission) for grant in self.allow)


def resolver_of(resources: LocalResources, parameters: Mapping[str, str]) -> Callable[[Any], str]:
    """Template values -> the emulated stack's names and ARNs. What the emulated account
    does not hold (log groups) stays a placeholder no call can match."""
    resolver: Resolver = resources.resolver(parameters)

    def resolve(value: Any) -> str:
        try:
            return str(resolver.resolve(value))
        except KeyError:
            return f"<not emulated: {label(value)}>"

    return resolve


def role_policies(
    transformed: Mapping[str, Any], resolve: Callable[[Any], str]
) -> dict[str, RolePolicy]:
    """Each Lambda function of a transformed template (logical id) -> its role's grants."""
    resources = transformed["Resources"]
    policies: dict[str, RolePolicy] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        allow: list[Grant] = []
        deny: list[Grant] = []
        for statement in role_statements(resources, role_of(resource)):
            unsupported = {"NotAction", "NotResource", "Condition", "NotPrincipal"} & set(statement)
            assert not unsupported, f"{name}: cannot evaluate {sorted(unsupported)} here"
            grants = deny if statement["Effect"] == "Deny" else allow
            for action in as_list(statement["Action"]):
                for target in as_list(statement["Resource"]):
                    sid = str(statement.get("Sid", "-"))
                    grants.append(Grant(sid, str(action), resolve(target), label(target)))
        policies[name] = RolePolicy(tuple(allow), tuple(deny))
    return policies

"""Zero-latency, in-process stand-ins for AWS, Partnero and Ecwid that count every call.

Used by ``bench.py`` to measure the bridge's own CPU per event and the remote calls it
makes on the happy path. The fakes are deliberately small:

- DynamoDB keeps items in dicts and evaluates the condition and update expressions the
  bridge and Powertools idempotency use (attribute_exists/attribute_not_exists, = <> < <=
  > >=, AND/OR/NOT, parentheses; SET with if_not_exists and +/-, REMOVE, ADD). An
  expression outside that subset raises, so a new form fails loudly instead of passing.
- SQS stores sent messages so the benchmark can hand them to processing as SQS records.
- Secrets Manager answers GetSecretValue from a dict (Powertools' cache sits in front).
- Partnero and Ecwid are ``httpx.MockTransport`` handlers with fixed answers.

Every fake adds the CPU time it spends to ``CallLog.fake_cpu`` so the benchmark can tell
the bridge's time from the fakes'.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any

import httpx
from botocore.exceptions import ClientError

Item = dict[str, dict[str, Any]]


class CallLog:
    """Counts calls per (service, label) and the CPU time spent inside fakes."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fake_cpu = 0.0

    def count(self, service: str, label: str) -> None:
        self.calls[(service, label)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        return Counter(self.calls)


def _timed[F: Callable[..., Any]](method: F) -> F:
    """Charge the wrapped call's CPU time to the fakes, not to the bridge."""

    @wraps(method)
    def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.log.fake_cpu += time.process_time() - started

    return inner  # type: ignore[return-value]


def _client_error(code: str, operation: str, **extra: Any) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": f"{code} (bench fake)"}, **extra}
    return ClientError(response, operation)


# -- DynamoDB expressions ------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|=|<|>)|(?P<punct>[(),+-])|(?P<word>[#:]?[A-Za-z_][A-Za-z0-9_]*))"
)
Values = Mapping[str, dict[str, Any]]
Names = Mapping[str, str]
Operand = Callable[[Item, Names, Values], "dict[str, Any] | None"]
Condition = Callable[[Item, Names, Values], bool]


def _tokens(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise NotImplementedError(f"bench fake: cannot parse {expression[position:]!r}")
        tokens.append(match.group(match.lastgroup or "word"))
        position = match.end()
    return tokens


def _name(token: str, names: Names) -> str:
    return names[token] if token.startswith("#") else token


def _plain(value: dict[str, Any] | None) -> Any:
    if value is None:
        return None
    ((kind, raw),) = value.items()
    if kind == "N":
        return Decimal(raw)
    if kind in ("SS", "NS"):
        return frozenset(raw)
    return raw


def _compare(op: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    if left is None or right is None:
        return False  # DynamoDB: a comparison with a missing attribute is false
    if next(iter(left)) != next(iter(right)):
        return op == "<>"
    a, b = _plain(left), _plain(right)
    if op == "=":
        return bool(a == b)
    if op == "<>":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


class _Parser:
    def __init__(self, expression: str) -> None:
        self.tokens = _tokens(expression)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise NotImplementedError(f"bench fake: expected {expected!r}, got {token!r}")
        self.position += 1
        return token

    # condition := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | atom
    def condition(self) -> Condition:
        parts = [self.conjunction()]
        while (self.peek() or "").upper() == "OR":
            self.take()
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda item, names, values: any(p(item, names, values) for p in parts)

    def conjunction(self) -> Condition:
        parts = [self.negation()]
        while (self.peek() or "").upper() == "AND":
            self.take()
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        return lambda item, names, values: all(p(item, names, values) for p in parts)

    def negation(self) -> Condition:
        if (self.peek() or "").upper() == "NOT":
            self.take()
            inner = self.negation()
            return lambda item, names, values: not inner(item, names, values)
        return self.atom()

    def atom(self) -> Condition:
        word = self.peek()
        if word == "(":
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        if word in ("attribute_exists", "attribute_not_exists"):
            self.take()
            self.take("(")
            path = self.take()
            self.take(")")
            wanted = word == "attribute_exists"
            return lambda item, names, values: (_name(path, names) in item) is wanted
        left = self.operand()
        op = self.take()
        if op not in ("=", "<>", "<", "<=", ">", ">="):
            raise NotImplementedError(f"bench fake: comparison {op!r}")
        right = self.operand()
        return lambda item, names, values: _compare(
            op, left(item, names, values), right(item, names, values)
        )

    def operand(self) -> Operand:
        word = self.take()
        if word == "if_not_exists":
            self.take("(")
            path = self.take()
            self.take(",")
            fallback = self.operand()
            self.take(")")
            return lambda item, names, values: (
                item.get(_name(path, names)) or fallback(item, names, values)
            )
        if word.startswith(":"):
            return lambda item, names, values: values[word]
        if word[0] in "(),+-<>=":
            raise NotImplementedError(f"bench fake: operand {word!r}")
        return lambda item, names, values: item.get(_name(word, names))

    def value(self) -> Operand:
        """An update's right-hand side: operand, or operand + / - operand."""
        left = self.operand()
        if self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            right = self.operand()

            def arithmetic(item: Item, names: Names, values: Values) -> dict[str, Any]:
                a, b = left(item, names, values), right(item, names, values)
                if a is None or b is None:
                    raise _client_error("ValidationException", "UpdateItem")
                return {"N": str(Decimal(a["N"]) + sign * Decimal(b["N"]))}

            return arithmetic
        return left


@lru_cache(maxsize=256)
def _condition(expression: str) -> Condition:
    parser = _Parser(expression)
    condition = parser.condition()
    if parser.peek() is not None:
        raise NotImplementedError(f"bench fake: trailing {parser.peek()!r} in {expression!r}")
    return condition


Action = Callable[[Item, Names, Values], None]
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += (char == "(") - (char == ")")
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@lru_cache(maxsize=256)
def _update(expression: str) -> tuple[Action, ...]:
    pieces = _CLAUSE.split(expression)
    if pieces[0].strip():
        raise NotImplementedError(f"bench fake: update expression {expression!r}")
    actions: list[Action] = []
    for keyword, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for action in _split_top_level(body):
            actions.append(_action(keyword.upper(), action))
    return tuple(actions)


def _action(keyword: str, text: str) -> Action:
    parser = _Parser(text)
    path = parser.take()
    if keyword == "REMOVE":

        def remove(item: Item, names: Names, values: Values) -> None:
            item.pop(_name(path, names), None)

        action: Action = remove
    elif keyword == "SET":
        parser.take("=")
        value = parser.value()

        def assign(item: Item, names: Names, values: Values) -> None:
            computed = value(item, names, values)
            if computed is None:
                raise _client_error("ValidationException", "UpdateItem")
            item[_name(path, names)] = computed

        action = assign
    elif keyword == "ADD":
        operand = parser.operand()

        def add(item: Item, names: Names, values: Values) -> None:
            name = _name(path, names)
            delta = operand(item, names, values)
            assert delta is not None
            current = item.get(name)
            if current is None:
                item[name] = dict(delta)
            elif "N" in delta:
                item[name] = {"N": str(Decimal(current["N"]) + Decimal(delta["N"]))}
            else:
                ((kind, members),) = delta.items()
                item[name] = {kind: sorted(set(current[kind]) | set(members))}

        action = add
    else:
        raise NotImplementedError(f"bench fake: {keyword} actions")
    if parser.peek() is not None:
        raise NotImplementedError(f"bench fake: trailing {parser.peek()!r} in {text!r}")
    return action


# -- AWS fakes -----------------------------------------------------------------------------

_LEDGER_PREFIX = re.compile(r"^[a-z_-]+#(?:[a-z]+:)?")


class FakeDynamoDB:
    """A dict per table, keyed by the table's key attributes."""

    def __init__(
        self, log: CallLog, key_schema: Mapping[str, Sequence[str]], roles: Mapping[str, str]
    ) -> None:
        self.log = log
        self._schema = {table: tuple(names) for table, names in key_schema.items()}
        self._roles = dict(roles)
        self.tables: dict[str, dict[tuple[Any, ...], Item]] = {}

    def _key(self, table: str, source: Mapping[str, dict[str, Any]]) -> tuple[Any, ...]:
        return tuple(_plain(source[name]) for name in self._schema.get(table, ("pk",)))

    def _label(self, table: str, operation: str, key: Mapping[str, dict[str, Any]]) -> str:
        role = self._roles.get(table, table)
        pk = key.get("pk", {}).get("S")
        if role == "ledger" and isinstance(pk, str):
            prefix = _LEDGER_PREFIX.match(pk)
            return f"{role}:{operation}({prefix.group(0) if prefix else '?'})"
        return f"{role}:{operation}"

    @staticmethod
    def _check(
        condition: str | None,
        item: Item,
        names: Names | None,
        values: Values | None,
    ) -> bool:
        if not condition:
            return True
        return _condition(condition)(item, names or {}, values or {})

    @_timed
    def get_item(self, TableName: str, Key: Item, **_: Any) -> dict[str, Any]:
        self.log.count("dynamodb", self._label(TableName, "get_item", Key))
        item = self.tables.get(TableName, {}).get(self._key(TableName, Key))
        return {"Item": {k: dict(v) for k, v in item.items()}} if item is not None else {}

    @_timed
    def put_item(
        self,
        TableName: str,
        Item: Item,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: Names | None = None,
        ExpressionAttributeValues: Values | None = None,
        ReturnValuesOnConditionCheckFailure: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.log.count("dynamodb", self._label(TableName, "put_item", Item))
        table = self.tables.setdefault(TableName, {})
        key = self._key(TableName, Item)
        old = table.get(key, {})
        if not self._check(
            ConditionExpression, old, ExpressionAttributeNames, ExpressionAttributeValues
        ):
            extra = {"Item": old} if ReturnValuesOnConditionCheckFailure == "ALL_OLD" else {}
            raise _client_error("ConditionalCheckFailedException", "PutItem", **extra)
        table[key] = {k: dict(v) for k, v in Item.items()}
        return {}

    @_timed
    def update_item(
        self,
        TableName: str,
        Key: Item,
        UpdateExpression: str,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: Names | None = None,
        ExpressionAttributeValues: Values | None = None,
        ReturnValues: str = "NONE",
        **_: Any,
    ) -> dict[str, Any]:
        self.log.count("dynamodb", self._label(TableName, "update_item", Key))
        old = self._apply_update(
            TableName,
            Key,
            UpdateExpression,
            ConditionExpression,
            ExpressionAttributeNames or {},
            ExpressionAttributeValues or {},
            "UpdateItem",
        )
        if ReturnValues == "ALL_OLD" and old:
            return {"Attributes": old}
        if ReturnValues == "ALL_NEW":
            return {"Attributes": self.tables[TableName][self._key(TableName, Key)]}
        return {}

    def _apply_update(
        self,
        table_name: str,
        key: Item,
        update: str,
        condition: str | None,
        names: Names,
        values: Values,
        operation: str,
    ) -> Item:
        table = self.tables.setdefault(table_name, {})
        item_key = self._key(table_name, key)
        old = table.get(item_key, {})
        if not self._check(condition, old, names, values):
            raise _client_error("ConditionalCheckFailedException", operation)
        new = {k: dict(v) for k, v in old.items()}
        new.update({k: dict(v) for k, v in key.items()})
        for action in _update(update):
            action(new, names, values)
        table[item_key] = new
        return old

    @_timed
    def delete_item(self, TableName: str, Key: Item, **_: Any) -> dict[str, Any]:
        self.log.count("dynamodb", self._label(TableName, "delete_item", Key))
        self.tables.get(TableName, {}).pop(self._key(TableName, Key), None)
        return {}

    @_timed
    def transact_write_items(self, TransactItems: list[dict[str, Any]], **_: Any) -> Any:
        roles = sorted(
            {
                self._roles.get(next(iter(entry.values()))["TableName"], "?")
                for entry in TransactItems
            }
        )
        self.log.count(
            "dynamodb", f"{'+'.join(roles)}:transact_write_items[{len(TransactItems)} items]"
        )
        reasons, failed = [], False
        for entry in TransactItems:
            ((kind, spec),) = entry.items()
            table = spec["TableName"]
            source = spec["Item"] if kind == "Put" else spec["Key"]
            current = self.tables.get(table, {}).get(self._key(table, source), {})
            ok = self._check(
                spec.get("ConditionExpression"),
                current,
                spec.get("ExpressionAttributeNames"),
                spec.get("ExpressionAttributeValues"),
            )
            reasons.append({"Code": "None" if ok else "ConditionalCheckFailed"})
            failed |= not ok
        if failed:
            raise _client_error(
                "TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons
            )
        for entry in TransactItems:
            ((kind, spec),) = entry.items()
            table = spec["TableName"]
            if kind == "Put":
                key = self._key(table, spec["Item"])
                self.tables.setdefault(table, {})[key] = {
                    k: dict(v) for k, v in spec["Item"].items()
                }
            elif kind == "Update":
                self._apply_update(
                    table,
                    spec["Key"],
                    spec["UpdateExpression"],
                    None,
                    spec.get("ExpressionAttributeNames", {}),
                    spec.get("ExpressionAttributeValues", {}),
                    "TransactWriteItems",
                )
            elif kind == "Delete":
                self.tables.get(table, {}).pop(self._key(table, spec["Key"]), None)
        return {}


class FakeSQS:
    """Keeps what was sent per queue URL; the benchmark turns it into SQS records."""

    def __init__(self, log: CallLog, roles: Mapping[str, str]) -> None:
        self.log = log
        self._roles = dict(roles)
        self.queues: dict[str, list[dict[str, Any]]] = {}

    def _label(self, queue_url: str, operation: str) -> str:
        return f"{self._roles.get(queue_url, 'queue')}:{operation}"

    @_timed
    def send_message(
        self,
        QueueUrl: str,
        MessageBody: str,
        MessageAttributes: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.log.count("sqs", self._label(QueueUrl, "send_message"))
        message_id = str(uuid.uuid4())
        digest = hashlib.md5(MessageBody.encode()).hexdigest()  # noqa: S324 - SQS's checksum
        now_ms = str(int(time.time() * 1000))
        self.queues.setdefault(QueueUrl, []).append(
            {
                "MessageId": message_id,
                "ReceiptHandle": f"bench-{message_id}",
                "MD5OfBody": digest,
                "Body": MessageBody,
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "AIDABENCH",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "MessageAttributes": dict(MessageAttributes or {}),
            }
        )
        return {"MessageId": message_id, "MD5OfMessageBody": digest}

    @_timed
    def change_message_visibility(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        self.log.count("sqs", self._label(QueueUrl, "change_message_visibility"))
        return {}

    @_timed
    def delete_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        self.log.count("sqs", self._label(QueueUrl, "delete_message"))
        return {}

    def take(self, queue_url: str) -> list[dict[str, Any]]:
        """Everything sent to a queue so far (the harness's read, not counted)."""
        return self.queues.pop(queue_url, [])


class FakeSecretsManager:
    def __init__(self, log: CallLog, secrets: Mapping[str, Mapping[str, Any]]) -> None:
        self.log = log
        self._values = {arn: json.dumps(value) for arn, value in secrets.items()}

    @_timed
    def get_secret_value(self, SecretId: str, **_: Any) -> dict[str, Any]:
        self.log.count("secretsmanager", "get_secret_value")
        if SecretId not in self._values:
            raise _client_error("ResourceNotFoundException", "GetSecretValue")
        return {"ARN": SecretId, "Name": SecretId, "SecretString": self._values[SecretId]}


# -- HTTP fakes ----------------------------------------------------------------------------

_JSON = {"content-type": "application/json"}


class FakePartnero:
    """Partnero's happy path: creates succeed, nothing is found by key."""

    _CREATED = json.dumps({"data": {"id": "bench"}, "status": 1}).encode()
    _NOT_FOUND = json.dumps({"message": "Not found."}).encode()
    _DELETED = json.dumps({"data": {"deleted": True}}).encode()

    def __init__(self, log: CallLog) -> None:
        self.log = log

    @_timed
    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = request.url.path.rstrip("/").split("/v1/", 1)[-1]
        collection, _, key = route.partition("/")
        self.log.count("partnero", f"{request.method} {collection}{' by key' if key else ''}")
        if request.method == "POST":
            return httpx.Response(201, content=self._CREATED, headers=_JSON)
        if request.method == "DELETE":
            return httpx.Response(200, content=self._DELETED, headers=_JSON)
        return httpx.Response(404, content=self._NOT_FOUND, headers=_JSON)


class FakeEcwid:
    """Ecwid's REST API for orders put in beforehand, and a store profile."""

    def __init__(self, log: CallLog, currency: str = "USD") -> None:
        self.log = log
        self.orders: dict[tuple[str, str], bytes] = {}
        self._profile = json.dumps({"formatsAndUnits": {"currency": currency}}).encode()

    def add_order(self, store: str, order_id: str, body: bytes) -> None:
        self.orders[(store, order_id)] = body

    @_timed
    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.rstrip("/").split("/")
        if len(parts) >= 3 and parts[-2] == "orders":
            self.log.count("ecwid", "GET order")
            body = self.orders.get((parts[-3], parts[-1]))
            if body is None:
                return httpx.Response(404, content=b'{"errorMessage":"not found"}', headers=_JSON)
            return httpx.Response(200, content=body, headers=_JSON)
        if parts[-1] == "profile":
            self.log.count("ecwid", "GET profile")
            return httpx.Response(200, content=self._profile, headers=_JSON)
        self.log.count("ecwid", f"{request.method} other")
        return httpx.Response(404, content=b"{}", headers=_JSON)


class FakeStripe:
    """Stripe's API as the project's fake serves it (events loaded beforehand), in-process."""

    def __init__(self, log: CallLog, api_key: str) -> None:
        from partnero_bridge_cli.local.stripe_api import FakeStripeApi

        self.log = log
        self.api = FakeStripeApi(api_keys=(api_key,))
        self._inner = httpx.WSGITransport(app=self.api.wsgi_app)

    @_timed
    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/v1/").split("/")
        resource = "/".join(parts[:2]) if parts[0] == "checkout" else parts[0]
        by_id = len(parts) > (2 if parts[0] == "checkout" else 1)
        self.log.count("stripe", f"GET {resource}{' by id' if by_id else ''}")
        response = self._inner.handle_request(request)
        response.read()
        return response

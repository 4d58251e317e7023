"""The warm bench's worker: one source's ingest and process handlers in this process.

AWS is moto in this process (``mock_aws``) with the template's tables, queues and secrets;
Partnero, Ecwid and Stripe (the project's fake Stripe API) answer in-process, through the
HTTP transports each function's Runtime is built with (``install_runtime``). Every AWS call
is counted through botocore's event hooks, registered for every session; the CPU spent in
the fakes (moto answering inside botocore's ``before-send``, the HTTP fakes) is timed by the
same hooks and taken out of the bridge's. botocore's own work (parameters, signing, parsing)
stays the bridge's, as on Lambda. Run by ``bench.warm``: ``python -m bench.worker CONFIG OUT``.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import socket
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import EVENTS, PATHS, ROOT, SECRETS_ENV, SOURCES, lambda_env, parameters

Fake = Callable[[Any], Any]


@dataclass
class Call:
    path: str
    phase: str
    service: str
    operation: str
    params: Any = None
    answer: Any = None


@dataclass
class Meter:
    """Calls recorded per path and phase, and the CPU spent in fakes (seconds)."""

    path: str = ""
    phase: str = ""  # "": nothing is recorded (the harness's own calls)
    calls: list[Call] = field(default_factory=list)
    fake_cpu: float = 0.0
    profile: cProfile.Profile | None = None
    _started: float = 0.0
    _open: Call | None = None

    def install(self) -> None:
        """Hooks for every botocore session made from now on (as moto adds its own)."""
        from botocore import handlers

        handlers.BUILTIN_HANDLERS.extend(
            [
                ("before-parameter-build", self._before),
                ("after-call", self._after),
                ("before-send", self.fake_starts, handlers.REGISTER_FIRST),
                ("before-send", self.fake_ends, handlers.REGISTER_LAST),
            ]
        )

    def record(self, service: str, operation: str, params: Any = None) -> Call | None:
        call = Call(self.path, self.phase, service, operation, params) if self.phase else None
        self.calls += [call] if call else []
        return call

    def _before(self, params: Any, model: Any, **_: Any) -> None:
        self._open = self.record(model.service_model.service_name, model.name, params)

    def _after(self, parsed: Any, **_: Any) -> None:
        if self._open is not None:
            self._open.answer, self._open = parsed, None

    def fake_starts(self, **_: Any) -> None:
        if self.profile is not None:
            self.profile.disable()  # the fakes are not the bridge: not profiled
        self._started = time.process_time()

    def fake_ends(self, **_: Any) -> None:
        self.fake_cpu += time.process_time() - self._started
        if self.profile is not None:
            self.profile.enable()


def http_label(request: Any) -> str:
    """``GET orders by id`` for /api/v3/1003/orders/B1, ``POST customers`` for /v1/customers."""
    parts = [p for p in request.url.path.split("/") if not re.fullmatch(r"|api|v\d+|\d+", p)]
    words = parts[:2] if parts[:1] == ["checkout"] else parts[:1]
    return f"{request.method} {'/'.join(words)}{' by id' if len(parts) > len(words) else ''}"


def partnero(request: Any) -> Any:
    """Partnero's happy path: creates succeed, nothing is found by key."""
    answers = {"POST": (201, {"data": {"id": "bench"}, "status": 1}), "DELETE": (200, {})}
    status, body = answers.get(request.method, (404, {"message": "Not found."}))
    return httpx.Response(status, json=body)


class Ecwid(dict[str, bytes]):
    """Ecwid's REST API: the orders put in beforehand (by id), and a store profile."""

    def __call__(self, request: Any) -> Any:
        if request.url.path.endswith("/profile"):
            return httpx.Response(200, json={"formatsAndUnits": {"currency": "USD"}})
        body = self.get(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(200 if body else 404, content=body or b"{}")


class FakeTransport(httpx.BaseTransport):
    """What a runtime's Partnero, Ecwid or Stripe client sends, answered in-process by a
    fake, counted and timed (``Runtime(transports=...)``: nothing leaves this process)."""

    def __init__(self, meter: Meter, service: str, fake: Fake) -> None:
        self.meter, self.service, self.fake = meter, service, fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.meter.record(self.service, http_label(request))
        self.meter.fake_starts()
        try:
            response: httpx.Response = self.fake(request)
            response.read()
            return response
        finally:
            self.meter.fake_ends()


@dataclass
class Payload:
    raw: bytes
    headers: dict[str, str]
    extra: bytes = b""


def signup_payloads(count: int, tag: str, _fakes: Any) -> list[Payload]:
    from partnero_bridge.signup.signature import SIGNATURE_HEADER, sign

    base, secret = (
        json.loads((EVENTS / "signup/referred.json").read_text()),
        SECRETS_ENV["SIGNUP_HMAC_SECRET"],
    )
    raws = [
        json.dumps({**base, "email": f"bench.{tag}.{i}@example.com"}).encode() for i in range(count)
    ]
    # Signed, as a shop's backend sends it.
    return [
        Payload(r, {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, r)})
        for r in raws
    ]


def ecwid_payloads(count: int, tag: str, fakes: dict[str, Any]) -> list[Payload]:
    from tests.support.ecwid import signed

    order = json.loads((EVENTS / "ecwid/orders/paid-with-partner.json").read_text())
    hook = json.loads((EVENTS / "ecwid/webhooks/order-created.json").read_text())
    payloads = []
    for index in range(count):
        oid, internal = f"B{tag.upper()}{index}", 700_000_000 + index
        ids = {"id": oid, "vendorOrderNumber": oid, "publicUid": oid, "orderNumber": internal}
        fakes["ecwid"][oid] = json.dumps({**order, **ids, "internalId": internal}).encode()
        # Fresh: ingest refuses webhooks older than ECWID_MAX_EVENT_AGE_SECONDS.
        fresh = {
            "eventId": str(uuid.uuid4()),
            "eventCreated": int(time.time()),
            "entityId": internal,
        }
        body = {**hook, **fresh, "data": {**hook["data"], "orderId": oid}}
        payloads.append(
            Payload(*signed(body, SECRETS_ENV["ECWID_CLIENT_SECRET"]), fakes["ecwid"][oid])
        )
    return payloads


def stripe_payloads(count: int, tag: str, fakes: dict[str, Any]) -> list[Payload]:
    from tests.support.stripe import load_with_state, signed

    # A live payment (the deployed default is StripeLivemode=true) and the objects Stripe
    # holds for it, each id made fresh per event.
    text = json.dumps(load_with_state("invoice.paid.subscription_create"))
    text = text.replace('"livemode": false', '"livemode": true')
    ids = re.compile(r'"((?:evt|in|inpay|pi|ch|cus|txn|il)_[A-Za-z0-9]+)"')
    payloads = []
    for index in range(count):
        event, state = json.loads(ids.sub(rf'"\1B{tag}{index}"', text))
        fakes["stripe"].load_event(event, state)
        payloads.append(Payload(*signed(event, SECRETS_ENV["STRIPE_WEBHOOK_SECRETS"])))
    return payloads


def floor_work(source: str, path: str) -> Callable[[Payload], Any]:
    """Signature check + JSON parse + model validation of the payload: the least any code
    must do with it (sign-up: the model; Ecwid: + the order for process; Stripe: EventHead)."""
    from partnero_bridge.ecwid import signature as ecwid_sig
    from partnero_bridge.ecwid.models import EcwidOrder, EcwidWebhook
    from partnero_bridge.signup.models import SignupRequest
    from partnero_bridge.stripe import signature as stripe_sig
    from partnero_bridge.stripe.ingest import EventHead

    def ecwid(p: Payload) -> None:
        hook = EcwidWebhook.model_validate(json.loads(p.raw))
        secret = SECRETS_ENV["ECWID_CLIENT_SECRET"]
        ecwid_sig.verify(
            p.headers[ecwid_sig.SIGNATURE_HEADER], secret, hook.eventCreated, hook.eventId
        )
        if path == "process":
            EcwidOrder.model_validate_json(p.extra)

    def stripe(p: Payload) -> None:
        secrets = [SECRETS_ENV["STRIPE_WEBHOOK_SECRETS"]]
        stripe_sig.verify(p.headers[stripe_sig.SIGNATURE_HEADER], p.raw, secrets)
        EventHead.model_validate(json.loads(p.raw))

    works = {"signup": lambda p: SignupRequest.model_validate(json.loads(p.raw)), "ecwid": ecwid}
    return works.get(source, stripe)


def component(filename: str) -> str:
    """``powertools logging``, ``botocore``, ``stdlib json``... for a profiled file."""
    path = filename.replace("\\", "/")
    if "/aws_lambda_powertools/" in path:
        rest = path.split("/aws_lambda_powertools/", 1)[1].split("/")
        return f"powertools {(rest[1] if rest[0] == 'utilities' else rest[0]).removesuffix('.py')}"
    if "/site-packages/" in path:
        top = path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
        return {"pydantic_core": "pydantic", "httpcore": "httpx", "h11": "httpx"}.get(top, top)
    if "/partnero_bridge/" in path:
        return "partnero_bridge"
    stdlib = re.search(r"/python3\.\d+/([^/]+)", path)
    if stdlib or path.startswith("<"):
        return f"stdlib {stdlib.group(1).removesuffix('.py') if stdlib else 'frozen'}"
    return "(harness)"


def shares(profile: cProfile.Profile) -> dict[str, float]:
    """Self time share per component (builtins apart: the profiler inflates small calls)."""
    totals: Counter[str] = Counter()
    for function, row in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        totals["builtins" if function[0] == "~" else component(function[0])] += row[2]
    return {name: value / (sum(totals.values()) or 1) for name, value in totals.most_common()}


@contextmanager
def stdout_to(path: str) -> Iterator[None]:
    """Logs and metrics go to stdout: kept in a file to count them (what CloudWatch Logs
    ingests), outside the function's CPU."""
    sys.stdout.flush()
    saved, sink = os.dup(1), os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(sink, 1)
    os.close(sink)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def problem(path: str, answer: Any) -> str:
    status = answer.get("statusCode") if isinstance(answer, dict) else None
    if path == "ingest" and not (isinstance(status, int) and 200 <= status < 300):
        return f"ingest answered {status}: {str(answer.get('body'))[:200]}"
    ok = path == "ingest" or answer == {"batchItemFailures": []}
    return "" if ok else f"processing reported {answer}"


def trace_header() -> str:
    ids = f"{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]}"
    return f"Root=1-{ids};Sampled=1"


class Worker:
    def __init__(self, config: dict[str, Any], meter: Meter, stack: Any) -> None:
        import boto3

        from partnero_bridge_cli.local.worker import LocalContext

        self.config, self.meter, self.logs = config, meter, tempfile.mkdtemp(prefix="bench-")
        specs = [stack.functions[name] for name in SOURCES[config["source"]][:2]]
        self.handlers = {p: __import__(p).handler for p in PATHS}
        self.contexts = {
            p: lambda s=s: LocalContext(s.logical_id, s.memory_mb, s.timeout)
            for p, s in zip(PATHS, specs, strict=True)
        }
        self.dynamodb = boto3.client("dynamodb")

    def fetch(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """An item as it is now (the harness's read: the meter records nothing)."""
        item: dict[str, Any] | None = self.dynamodb.get_item(TableName=table, Key=key).get("Item")
        return item

    def invoke(self, path: str, events: list[Any], phase: str) -> list[tuple[float, float, str]]:
        """(CPU, fake CPU, problem) of each invocation."""
        self.meter.path, self.meter.phase, figures = path, phase, []
        with stdout_to(f"{self.logs}/{path}-{phase}.log"):
            for event in events:
                context, os.environ["_X_AMZN_TRACE_ID"] = self.contexts[path](), trace_header()
                fake_before, started = self.meter.fake_cpu, time.process_time()
                answer = self.handlers[path](event, context)
                spent = time.process_time() - started
                figures.append((spent, self.meter.fake_cpu - fake_before, problem(path, answer)))
        self.meter.phase = ""
        return figures

    def measure(self, path: str, events: list[Any], payloads: list[Payload]) -> dict[str, Any]:
        from bench.cost import aws_units, log_figures

        warm, count, source = self.config["warmup"], self.config["events"], self.config["source"]
        figures = self.invoke(path, events[:warm], "warmup")
        measured = self.invoke(path, events[warm : warm + count], "measured")
        profile = self.meter.profile = cProfile.Profile()
        profile.enable()
        figures += measured + self.invoke(path, events[warm + count :], "profile")
        profile.disable()
        self.meter.profile = None
        if self.config["profile_dir"]:
            profile.dump_stats(Path(self.config["profile_dir"]) / f"{source}-{path}.pstats")
        mine = [c for c in self.meter.calls if c.path == path]
        calls = [c for c in mine if c.phase == "measured"]
        dlq = os.environ["BRIDGE_DEAD_LETTER_QUEUE_URL"]
        dead = [c for c in calls if c.operation == "SendMessage" and c.params["QueueUrl"] == dlq]
        counted = Counter(f"{c.service.lower()} {c.operation}" for c in calls)
        return {
            "cpu": [f[0] for f in measured],
            "fake_cpu": [f[1] for f in measured],
            "floor": floor_cpu(floor_work(source, path), payloads, warm, count),
            "calls": {name: n / count for name, n in counted.items()},
            "units": aws_units(calls, count, self.fetch),
            "secrets": sorted(
                {c.params["SecretId"] for c in mine if c.service == "secretsmanager"}
            ),
            "logs": log_figures(Path(f"{self.logs}/{path}-measured.log"), count),
            "errors": sorted(
                {f[2] for f in figures if f[2]} | ({"dead-lettered"} if dead else set())
            ),
            "profile": shares(profile),
        }


def floor_cpu(work: Callable[[Payload], Any], payloads: list[Payload], warm: int, n: int) -> float:
    for item in payloads[:warm]:
        work(item)
    started = time.process_time()
    for item in payloads[warm : warm + n]:
        work(item)
    return (time.process_time() - started) / n


def queued_records(sqs: Any, url: str, expected: int) -> list[dict[str, Any]]:
    """What ingest queued, as the SQS records Lambda hands the process function."""
    from partnero_bridge_cli.local.pollers import _record

    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    records: list[dict[str, Any]] = []
    while len(records) < expected:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=3600,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )  # fmt: skip
        if not answer.get("Messages"):
            raise RuntimeError(f"{len(records)} messages queued for {expected} requests")
        records += [_record(m, arn["QueueArn"]) for m in answer["Messages"]]
    return records


def drive(config: dict[str, Any], meter: Meter, stack: Any) -> dict[str, Any]:
    """Ingest every payload, then process every message it queued, each function with a
    runtime of its own whose HTTP clients answer in-process (the runtime's public way)."""
    import boto3

    from partnero_bridge.ledger import keys
    from partnero_bridge.ledger.records import LedgerMeta
    from partnero_bridge.runtime import Runtime, install_runtime
    from partnero_bridge_cli.local.gateway import build_event
    from partnero_bridge_cli.local.stripe_api import FakeStripeApi

    source, stripe = config["source"], FakeStripeApi(api_keys=(SECRETS_ENV["STRIPE_API_KEY"],))
    fakes: dict[str, Any] = {"partnero": partnero, "ecwid": Ecwid(), "stripe": stripe}
    total = config["warmup"] + config["events"] + config["profile_events"]
    make = {"signup": signup_payloads, "ecwid": ecwid_payloads, "stripe": stripe_payloads}[source]
    payloads = make(total, uuid.uuid4().hex[:6], fakes)
    fakes["stripe"] = httpx.WSGITransport(app=stripe.wsgi_app).handle_request
    transports = {name: FakeTransport(meter, name, fake) for name, fake in fakes.items()}
    for path in PATHS:  # each handler module declares its function's settings
        model = __import__(path).SETTINGS
        install_runtime(model, Runtime(model.from_environ(), transports=transports))
    settings = model.from_environ()
    # A stack in service for a while: its ledger predates the sales measured here.
    meta = LedgerMeta(pk=keys.META, since=0).to_item()
    boto3.client("dynamodb").put_item(TableName=settings.ledger_table, Item=meta)
    route, worker = stack.functions[SOURCES[source][0]].routes[0], Worker(config, meter, stack)
    args = (route, "POST", route.path)
    api = [build_event(*args, [*p.headers.items()], p.raw, "203.0.113.9", {}) for p in payloads]
    result = {"ingest": worker.measure("ingest", api, payloads)}
    records = queued_records(boto3.client("sqs"), settings.work_queue_url, len(payloads))
    batches = [{"Records": [record]} for record in records]
    result["process"] = worker.measure("process", batches, payloads)
    return {**result, "secret_cache_seconds": settings.secret_cache_seconds}


def run(config: dict[str, Any], result_path: str) -> None:
    """moto with the template's resources; this process's environment becomes the source's
    two functions' as deployed (tracing on, X-Ray datagrams to a local sink)."""
    # The Lambda runtime's botocore has no awscrt (this venv has it, for the SAM CLI).
    os.environ.update({"BOTO_DISABLE_CRT": "true", "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    from moto import mock_aws

    from partnero_bridge_cli.local.aws import create_resources
    from partnero_bridge_cli.local.template import read_stack

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    warnings.filterwarnings("ignore", message="Dimension 'source' has already been added")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    meter, stack, functions = Meter(), read_stack(ROOT), SOURCES[config["source"]][:2]
    meter.install()
    with mock_aws():
        params = parameters(stack)
        resolver = create_resources(stack, params, None, SECRETS_ENV).resolver(params)  # type: ignore[arg-type]
        for name in functions:
            os.environ.update(lambda_env(stack.functions[name], resolver))
        os.environ.update(config["env"])
        os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{sink.getsockname()[1]}"
        sys.path.insert(0, str(stack.functions[functions[0]].code_dir))
        result = drive(config, meter, stack)
    datagrams = 0
    with suppress(BlockingIOError):
        while sink.recv(65536):
            datagrams += 1
    Path(result_path).write_text(json.dumps({**result, "xray_datagrams": datagrams}))


if __name__ == "__main__":
    run(json.loads(sys.argv[1]), sys.argv[2])

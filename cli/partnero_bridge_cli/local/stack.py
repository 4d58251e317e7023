"""The local stack: everything ``make run`` starts, wired from template.yaml.

- a moto server with the template's queues, tables and secrets (secrets seeded from
  environment variables, never passed to the functions as values);
- each function (per source an ingest and a process function) in worker processes with
  its template handler, timeout and environment, resolved locally;
- an HTTP gateway with the template's routes (to the ingest functions), and pollers for the
  SQS triggers (to the process functions);
- the Partnero sandbox, unless PARTNERO_API_URL points somewhere else;
- the fake Ecwid API, unless ECWID_API_URL does; the fake Stripe API, unless STRIPE_API_URL does;
- the delivery feed (what became of each delivery, read from the functions' logs), served at
  ``GET /_local/deliveries`` on the gateway and shown on the sandbox page; the terminal
  gets one line per outcome (``--json-logs``: the functions' JSON lines as they are);
- ``GET /_local/stack`` on the gateway: where its AWS emulation is, so the CLI's commands
  find the running stack without an ``export`` line.

Every port is checked before anything starts: a busy one is named in one line with the
variable that moves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from partnero_bridge_cli.local.aws import (
    DUMMY_CREDENTIALS,
    SECRET_VARIABLES,
    MotoServer,
    client,
    create_resources,
    ecwid_store_tokens,
)
from partnero_bridge_cli.local.console import console_line
from partnero_bridge_cli.local.deliveries import FEED_PATH, DeliveryFeed
from partnero_bridge_cli.local.functions import Invocation, LocalFunction
from partnero_bridge_cli.local.gateway import Gateway
from partnero_bridge_cli.local.pollers import QueuePoller
from partnero_bridge_cli.local.template import (
    REGION,
    FunctionSpec,
    Resolver,
    StackModel,
    read_stack,
)

SANDBOX_API_KEY = "sandbox-key"
SANDBOX_PARTNERS = ("demo-partner",)
# The built-in fake Ecwid's demo store, used when ECWID_API_URL is not set.
DEMO_ECWID_STORE = "1003"
DEMO_ECWID_TOKEN = "secret_local_demo_token"  # noqa: S105 - a local fake's demo value
DEMO_ECWID_CLIENT_SECRET = "local-demo-client-secret"  # noqa: S105 - likewise
# Used when STRIPE_WEBHOOK_SECRETS is not set, so `partnero-bridge send` can sign events.
DEMO_STRIPE_SECRET = "whsec_local_demo_secret"  # noqa: S105 - likewise
# Used when SIGNUP_HMAC_SECRET is not set, so `partnero-bridge send signup` can sign: a
# server's unsigned sign-up without a browser Origin is refused.
DEMO_SIGNUP_SECRET = "local-demo-signup-secret"  # noqa: S105 - likewise
# The fake Stripe API's test-mode restricted key, used when STRIPE_API_URL is not set.
DEMO_STRIPE_API_KEY = "rk_test_local_demo"
# Passed from the user's environment to the functions (when the template does not set
# them already), so local runs can tune what a deployment would set in template.yaml.
# The template's schedules: listed (GET) and run on demand (POST ?name=<Schedule>).
SCHEDULES_PATH = "/_local/schedules"
# Where the stack's AWS emulation is and its ports, for the CLI in another terminal.
STACK_PATH = "/_local/stack"
_PASSTHROUGH_PREFIXES = ("BRIDGE_", "PARTNERO_", "SIGNUP_", "ECWID_", "STRIPE_", "POWERTOOLS_")
# Local-only: the stack's own ports and switches, not function settings.
_LOCAL_ONLY = {
    "BRIDGE_PORT",
    "BRIDGE_AWS_PORT",
    "BRIDGE_SANDBOX_PORT",
    "BRIDGE_ECWID_PORT",
    "BRIDGE_STRIPE_API_PORT",
    "BRIDGE_SHOP_PORT",
    "BRIDGE_CONCURRENCY",
}


class StackRefused(Exception):
    """The stack cannot start as configured (one line for the user, said before anything
    starts)."""


# Each port the stack listens on: its StackConfig field, the variable that moves it, its
# default, and the variable that replaces what listens there (then nothing does).
PORTS: tuple[tuple[str, str, int, str | None], ...] = (
    ("port", "BRIDGE_PORT", 3000, None),
    ("aws_port", "BRIDGE_AWS_PORT", 4566, None),
    ("sandbox_port", "BRIDGE_SANDBOX_PORT", 4010, "PARTNERO_API_URL"),
    ("ecwid_port", "BRIDGE_ECWID_PORT", 4020, "ECWID_API_URL"),
    ("stripe_api_port", "BRIDGE_STRIPE_API_PORT", 4030, "STRIPE_API_URL"),
    ("shop_port", "BRIDGE_SHOP_PORT", 8000, None),
)


def _whole_number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = (env.get(name) or str(default)).strip()
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise StackRefused(f"{name}={text!r} is not a whole number from {low} to {high}")
    return int(text)


@dataclass
class StackConfig:
    root: Path
    port: int = 3000
    aws_port: int = 4566
    sandbox_port: int = 4010
    ecwid_port: int = 4020
    stripe_api_port: int = 4030
    shop_port: int = 8000
    concurrency: int = 2
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # The functions' JSON log lines as they are, instead of one line per outcome.
    json_logs: bool = False

    @classmethod
    def from_env(cls, root: Path, env: Mapping[str, str], json_logs: bool = False) -> StackConfig:
        """The configuration ``env`` gives; StackRefused when a port or BRIDGE_CONCURRENCY
        is not a number in range."""
        ports = {name: port_of(env, variable, default) for name, variable, default, _ in PORTS}
        return cls(
            root=root,
            **ports,
            concurrency=_whole_number(env, "BRIDGE_CONCURRENCY", 2, 1, 64),
            env=dict(env),
            json_logs=json_logs,
        )

    def listening(self) -> dict[str, int]:
        """The ports this stack will listen on, by the variable that moves each (0: any
        free port)."""
        return {
            variable: int(getattr(self, name))
            for name, variable, _, replaced_by in PORTS
            if not (replaced_by and self.env.get(replaced_by))
        }


def port_of(env: Mapping[str, str], variable: str, default: int) -> int:
    """The port ``variable`` sets (``default`` when unset), as ``make run`` reads it;
    StackRefused (one line naming the variable) when it is not a whole number 0-65535."""
    return _whole_number(env, variable, default, 0, 65535)


def gateway_url(env: Mapping[str, str]) -> str:
    """The local stack's gateway: BRIDGE_URL, else 127.0.0.1 on BRIDGE_PORT (3000).
    StackRefused when BRIDGE_PORT is not a port."""
    if env.get("BRIDGE_URL"):
        return env["BRIDGE_URL"].rstrip("/")
    return f"http://127.0.0.1:{port_of(env, 'BRIDGE_PORT', 3000)}"


def _can_listen(port: int) -> bool:
    with socket.socket() as sock:
        # As the stack's servers bind: a port left in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class NotTheStack(Exception):
    """No local stack answers at the gateway's address (one line for the user)."""


def ask_local_stack(url: str, timeout: float = 3) -> dict[str, Any]:
    """The running stack's ``GET /_local/stack`` answer at gateway ``url`` (its AWS
    endpoint, region and ports). NotTheStack, said in one line, when nothing answers there
    or another program does (its status and content type, never its page)."""
    import httpx

    try:
        answer = httpx.get(f"{url}{STACK_PATH}", timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL):
        raise NotTheStack(
            f"the local stack is not running (nothing answers at {url}): start it with "
            "`make run` (BRIDGE_PORT if it runs on another port)"
        ) from None
    try:
        about = answer.json()
        if isinstance(about, dict) and "aws_endpoint" in about and "region" in about:
            return about
    except ValueError:
        pass
    kind = answer.headers.get("content-type", "no content type").split(";")[0]
    raise NotTheStack(
        f"what answers at {url} is not the local stack ({STACK_PATH}: {answer.status_code}, "
        f"{kind}): set BRIDGE_PORT (or BRIDGE_URL) to where the local stack runs, or start "
        "it on a free port: `BRIDGE_PORT=3001 make run`"
    )


def _running_stack(url: str) -> bool:
    try:
        ask_local_stack(url, timeout=2)
    except NotTheStack:
        return False
    return True


def port_problem(config: StackConfig) -> str | None:
    """The one line saying why the stack cannot listen where configured, or None: a port
    in use (by a local stack already running, or by another program) or given twice."""
    seen: dict[int, str] = {}
    for variable, port in config.listening().items():
        if port and port in seen:
            return f"{seen[port]} and {variable} are both {port}: give each its own port"
        seen[port] = variable
    for variable, port in config.listening().items():
        if port == 0 or _can_listen(port):
            continue
        if variable == "BRIDGE_PORT" and _running_stack(f"http://127.0.0.1:{port}"):
            return (
                f"the local stack is already running at http://127.0.0.1:{port}: use it, "
                "stop it (Ctrl-C in its terminal), or set the BRIDGE_*_PORT variables "
                "(docs/local-stack.md) to run another"
            )
        return (
            f"port {port} is in use ({variable}): stop what uses it, or set {variable} to a "
            f"free port, e.g. `{variable}={port + 1} make run`"
        )
    return None


def _fed_by(value: Any) -> str | None:
    """The name a function environment value refers to: ``!Ref X``, or ``!Join [",", !Ref X]``
    (a CommaDelimitedList parameter, whose text is the same comma-separated list)."""
    if isinstance(value, Mapping) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        if separator != ",":
            return None
        value = parts
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


def parameter_overrides(stack: StackModel, env: Mapping[str, str]) -> dict[str, str]:
    """Template parameters, overridden by the environment variable each one feeds.

    ``BRIDGE_MAX_RECEIVES: !Ref MaxReceives`` in a function's environment means that
    BRIDGE_MAX_RECEIVES in the user's environment sets MaxReceives, everywhere it is used
    (every function that reads it and the queue's redrive policy alike).
    """
    parameters = dict(stack.parameters)
    for function in stack.functions.values():
        for name, value in function.environment.items():
            ref = _fed_by(value)
            if ref in parameters and name in env:
                parameters[ref] = env[name]
    return parameters


def workers_of(spec: FunctionSpec, concurrency: int) -> int:
    """Warm workers to start for a function: ``concurrency`` for one that serves routes,
    one per SQS event source otherwise (its poller invokes one batch at a time)."""
    if spec.routes:
        return concurrency
    return max(1, len(spec.triggers))


def local_ecwid_store_ids(env: Mapping[str, str]) -> str:
    """ECWID_STORE_IDS, or by default the stores that have a token (locally they are
    configured together; deployed, EcwidStoreIds is set on its own): those of
    ECWID_STORE_TOKENS, else the fake Ecwid's demo store when it is the one used."""
    if "ECWID_STORE_IDS" in env:
        return env["ECWID_STORE_IDS"]
    if "ECWID_STORE_TOKENS" not in env and not env.get("ECWID_API_URL"):
        return DEMO_ECWID_STORE
    return ",".join(ecwid_store_tokens(env))


def function_environment(
    spec: FunctionSpec,
    resolver: Resolver,
    user_env: Mapping[str, str],
    aws_endpoint: str,
    layer_dir: Path,
) -> dict[str, str]:
    """A function's environment as Lambda would give it, pointed at the local AWS."""
    env = {
        name: value
        for name, value in user_env.items()
        if name.startswith(_PASSTHROUGH_PREFIXES)
        and name not in SECRET_VARIABLES
        and name not in _LOCAL_ONLY
    }
    env.update({name: str(resolver.resolve(value)) for name, value in spec.environment.items()})
    env.update(DUMMY_CREDENTIALS)
    env.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "PYTHONPATH": os.pathsep.join([str(spec.code_dir), str(layer_dir)]),
            "PYTHONUNBUFFERED": "1",
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
        }
    )
    return env


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.env = dict(config.env)
        self.stack = read_stack(config.root)
        self.sandbox: Any = None
        self.ecwid: Any = None
        self.stripe_api: Any = None
        self.shop: Any = None
        self.moto = MotoServer(config.aws_port)
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[QueuePoller] = []
        self.gateway: Gateway | None = None
        self._print_lock = threading.Lock()
        self.resources: Any = None
        self.parameters: dict[str, str] = {}
        self.feed = DeliveryFeed()

    # -- output -------------------------------------------------------------------------
    def log(self, line: str) -> None:
        with self._print_lock:
            print(line, flush=True)

    def _function_log(self, name: str) -> Any:
        def write(line: str) -> None:
            entry = self.feed.observe(line)
            if self.config.json_logs:
                self.log(f"[{name}] {line}")
                return
            shown = console_line(name, line, entry)
            if shown is not None:
                self.log(shown)

        return write

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if not self.env.get("PARTNERO_API_URL"):
            from partnero_bridge_cli.local.sandbox import PartneroSandbox

            self.env.setdefault("PARTNERO_API_KEY", SANDBOX_API_KEY)
            self.sandbox = PartneroSandbox(
                api_key=self.env["PARTNERO_API_KEY"],
                partners=SANDBOX_PARTNERS,
                port=self.config.sandbox_port,
            )
            self.sandbox.show_deliveries(self.feed.snapshot)
            self.sandbox.start()
            self.env["PARTNERO_API_URL"] = self.sandbox.url

        if not self.env.get("ECWID_API_URL"):
            self._start_fake_ecwid()
        if not self.env.get("STRIPE_API_URL"):
            self._start_fake_stripe_api()
        # The example shop's page calls /signup from its own origin: allow it by default.
        shop_origins = (
            f"http://127.0.0.1:{self.config.shop_port},http://localhost:{self.config.shop_port}"
        )
        self.env.setdefault("SIGNUP_ALLOWED_ORIGINS", shop_origins)
        # The stores with a token are the configured ones, unless said otherwise.
        self.env["ECWID_STORE_IDS"] = local_ecwid_store_ids(self.env)
        # Locally, Stripe test-mode events are the ones that count.
        self.env.setdefault("STRIPE_LIVEMODE", "false")
        self.env.setdefault("STRIPE_WEBHOOK_SECRETS", DEMO_STRIPE_SECRET)
        self.env.setdefault("SIGNUP_HMAC_SECRET", DEMO_SIGNUP_SECRET)

        self.moto.start()
        self.parameters = parameter_overrides(self.stack, self.env)
        self.resources = create_resources(self.stack, self.parameters, self.moto.url, self.env)
        resolver = self.resources.resolver(self.parameters)

        for spec in self.stack.functions.values():
            function_env = function_environment(
                spec, resolver, self.env, self.moto.url, self.config.root / "layers" / "common"
            )
            self.functions[spec.logical_id] = LocalFunction(
                spec,
                function_env,
                workers_of(spec, self.config.concurrency),
                self._function_log(spec.logical_id),
            )
        starters = [threading.Thread(target=f.start) for f in self.functions.values()]
        for thread in starters:
            thread.start()
        for thread in starters:
            thread.join()

        sqs = client("sqs", self.moto.url)
        for spec in self.stack.functions.values():
            for trigger in spec.triggers:
                poller = QueuePoller(
                    sqs,
                    self.resources.refs[trigger.queue],
                    self.resources.attributes[(trigger.queue, "Arn")],
                    spec.logical_id,
                    trigger.batch_size,
                    self.invoke,
                    self.log,
                )
                self.pollers.append(poller)
                poller.start()

        self.gateway = Gateway(
            self.config.port,
            self.stack.routes(),
            self.invoke,
            {
                FEED_PATH: self.feed.answer,
                STACK_PATH: self.about,
                SCHEDULES_PATH: self.schedules,
                f"POST {SCHEDULES_PATH}": self.run_schedule,
            },
        )
        self.gateway.start()

        from partnero_bridge_cli.local.shop import ExampleShop

        self.shop = ExampleShop(
            self.config.root / "examples" / "shop", self.gateway.url, self.config.shop_port
        )
        self.shop.start()

    def _start_fake_ecwid(self) -> None:
        from partnero_bridge_cli.local.ecwid import FakeEcwid

        self.env.setdefault("ECWID_CLIENT_SECRET", DEMO_ECWID_CLIENT_SECRET)
        self.env.setdefault("ECWID_STORE_TOKENS", json.dumps({DEMO_ECWID_STORE: DEMO_ECWID_TOKEN}))
        stores = json.loads(self.env["ECWID_STORE_TOKENS"])
        self.ecwid = FakeEcwid(stores=stores, port=self.config.ecwid_port)
        self.ecwid.start()
        self.env["ECWID_API_URL"] = self.ecwid.url

    def _start_fake_stripe_api(self) -> None:
        from partnero_bridge_cli.local.stripe_api import FakeStripeApi

        self.env.setdefault("STRIPE_API_KEY", DEMO_STRIPE_API_KEY)
        self.stripe_api = FakeStripeApi(
            api_keys=[self.env["STRIPE_API_KEY"]], port=self.config.stripe_api_port
        )
        self.stripe_api.start()
        self.env["STRIPE_API_URL"] = self.stripe_api.url

    def invoke(self, function: str, event: dict[str, Any]) -> Invocation:
        return self.functions[function].invoke(event)

    def about(self, _query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """GET /_local/stack: the AWS emulation's endpoint and region, and the ports (by
        variable) the CLI's commands reach the stack's parts on."""
        fakes = {
            "BRIDGE_SANDBOX_PORT": self.sandbox,
            "BRIDGE_ECWID_PORT": self.ecwid,
            "BRIDGE_STRIPE_API_PORT": self.stripe_api,
        }
        ports = {"BRIDGE_AWS_PORT": self.moto.port}
        ports.update({name: urlsplit(f.url).port for name, f in fakes.items() if f is not None})
        return 200, {"aws_endpoint": self.moto.url, "region": REGION, "ports": ports}

    def schedules(self, _query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """GET /_local/schedules: the template's schedules (they never fire by themselves)."""
        resolver = self.resources.resolver(self.parameters)
        return 200, {
            "schedules": {
                name: {
                    "function": spec.function,
                    "expression": str(resolver.resolve(spec.expression)),
                }
                for name, spec in self.stack.schedules.items()
            }
        }

    def run_schedule(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """POST /_local/schedules[?name=<Schedule>]: invoke a schedule's function now, with
        the schedule's Input, as EventBridge Scheduler would; answers what it returned.
        ``name`` may be left out when the template has one schedule."""
        name = query.get("name") or (
            next(iter(self.stack.schedules)) if len(self.stack.schedules) == 1 else ""
        )
        spec = self.stack.schedules.get(name)
        if spec is None:
            return 404, {"message": "no such schedule", "schedules": sorted(self.stack.schedules)}
        self.log(f"[{spec.logical_id}] run on demand: {spec.function}")
        done = self.invoke(spec.function, spec.input)
        if done.error is not None:
            return 502, {"schedule": name, "function": spec.function, "error": done.error}
        return 200, {"schedule": name, "function": spec.function, "result": done.payload}

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        if self.shop is not None:
            self.shop.stop()
        if self.gateway is not None:
            self.gateway.stop()
        for function in self.functions.values():
            function.stop()
        with contextlib.suppress(Exception):  # moto may not have started
            self.moto.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.ecwid is not None:
            self.ecwid.stop()
        if self.stripe_api is not None:
            self.stripe_api.stop()

    # -- what the user sees -------------------------------------------------------------
    def banner(self) -> str:
        assert self.gateway is not None
        base = self.gateway.url
        lines = ["", "partnero-bridge local stack is running", "", "Endpoints:"]
        lines += [
            f"  {r.method:7} {base}{r.path}" for r in self.stack.routes() if r.method != "OPTIONS"
        ]
        if self.sandbox is not None:
            lines += [
                "",
                f"Partnero sandbox: {self.sandbox.url} (partner keys: "
                f"{', '.join(SANDBOX_PARTNERS)}; API key "
                # Never echo a key the user set: it may be a real one.
                + (
                    f"'{SANDBOX_API_KEY}')"
                    if self.env["PARTNERO_API_KEY"] == SANDBOX_API_KEY
                    else "from PARTNERO_API_KEY)"
                ),
                f"  watch every delivery and what the bridge sends: {self.sandbox.root_url}/",
            ]
        else:
            lines += ["", f"Partnero: {self.env['PARTNERO_API_URL']}"]
        lines += [f"Every delivery and its outcome (JSON): {base}{FEED_PATH}"]
        for name in self.stack.schedules:
            lines += [f"Run {name} now: curl -X POST '{base}{SCHEDULES_PATH}?name={name}'"]
        if self.ecwid is not None:
            lines += [
                f"Fake Ecwid API: {self.ecwid.url} (stores: "
                f"{', '.join(json.loads(self.env['ECWID_STORE_TOKENS']))}; put orders with "
                f"PUT {self.ecwid.root_url}/_ecwid/stores/<store>/orders/<id>)"
            ]
        if self.stripe_api is not None:
            lines += [
                f"Fake Stripe API: {self.stripe_api.url} (Stripe-Version "
                f"{self.stripe_api.pinned_version}; key "
                + (
                    f"'{DEMO_STRIPE_API_KEY}'"
                    if self.env["STRIPE_API_KEY"] == DEMO_STRIPE_API_KEY
                    else "from STRIPE_API_KEY"
                )
                + f"; `send stripe/...` loads the event into it; state at "
                f"{self.stripe_api.admin_url}/state)"
            ]
        else:
            lines += [f"Stripe API: {self.env['STRIPE_API_URL']}"]
        lines += [
            f"Ecwid stores configured (ECWID_STORE_IDS): {self.env['ECWID_STORE_IDS'] or 'none'}; "
            "webhooks of other stores are parked (partnero-bridge parked list)"
        ]
        exports = " ".join(
            f"{k}={v}"
            for k, v in {
                "AWS_ENDPOINT_URL": self.moto.url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "AWS_DEFAULT_REGION": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
            }.items()
        )
        if self.shop is not None:
            lines += ["", f"Example shop sign-up page: {self.shop.url}/?ref=demo-partner"]
        lines += [
            "",
            f"AWS (moto) at {self.moto.url}: partnero-bridge commands (dlq, parked, explain, "
            "...) find it by themselves; for the AWS CLI, run:",
            f"  export {exports}",
            "",
            "Try it, in another terminal (a signed sign-up, as a shop's backend sends it):",
            "  .venv/bin/partnero-bridge send signup",
            "",
            "Below, the functions' log lines (JSON)"
            if self.config.json_logs
            else "Below, one line per delivery's outcome (every log line, as JSON: "
            "partnero-bridge run --json-logs).",
            "Ready. Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


# Variables naming an AWS profile: boto3 fails on one that does not exist, even with the
# explicit keys the local stack's clients carry.
_PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def set_aside_profile(env: MutableMapping[str, str]) -> str | None:
    """Remove a profile of the user's from ``env`` (this process's AWS clients reach only
    the emulation, with its dummy keys); the one line saying so, or None when none was set."""
    named = [name for name in _PROFILE_VARIABLES if env.pop(name, None)]
    if not named:
        return None
    return (
        f"{', '.join(named)} not used: the local stack runs on its own emulated AWS account (moto)"
    )


def run(root: Path, json_logs: bool = False) -> int:
    """``partnero-bridge run``: the stack in the foreground until SIGINT or SIGTERM. Exit
    status 1, with one line on stderr, when it cannot start (a port in use...)."""
    import signal

    aside = set_aside_profile(os.environ)
    if aside:
        print(f"partnero-bridge run: {aside}", file=sys.stderr)
    try:
        config = StackConfig.from_env(root, os.environ, json_logs)
        problem = port_problem(config)
    except StackRefused as exc:
        problem = str(exc)
    if problem is not None:
        print(f"partnero-bridge run: {problem}", file=sys.stderr)
        return 1
    stack = LocalStack(config)
    stopping = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        stack.start()
    except OSError as exc:  # a port taken since it was checked
        print(f"partnero-bridge run: could not start: {exc}", file=sys.stderr)
        return 1
    stack.log(stack.banner())
    try:
        stopping.wait()
    finally:
        stack.log("stopping the local stack ...")
        stack.stop()
        stack.log("stopped")
    return 0

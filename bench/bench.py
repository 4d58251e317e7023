"""`make bench`: cold start, per-event overhead, remote calls, package size, local throughput.

Prints plain-text tables, then one line per target (``PASS``/``MISS target: measured
(limit)``). Targets are reported, not asserted: the exit status is 0 even on a MISS unless
``--strict`` is given. Sections:

1. cold start: each function's handler module (``ingest`` or ``process`` of each source)
   imported in a fresh interpreter with the function's template environment and tracing on
   (as deployed), next to ``python -c pass`` and ``import boto3``; ``-X importtime`` of the
   slowest handler points at the causes;
2. warm overhead: CPU per event of the ingest function (API event) and the process
   function (SQS batch of one) of each source, run in one process, with AWS, Partnero and
   Ecwid replaced by in-process fakes (``bench/fakes.py``), next to a floor (signature +
   JSON + model validation of the same payload);
3. remote calls per event on the happy path, counted by those fakes;
4. deployment size of ``sam build``'s layer and functions, unzipped and zipped;
5. throughput of the local stack (``partnero-bridge run``) for signed Stripe webhooks;
6. ``reconcile`` of 10,000 seeded Stripe payments against the local fakes (target: under
   5 minutes), with the remote calls per payment (``bench/reconcile_bench.py``).

Run from the repository's venv: ``.venv/bin/python bench/bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import copy
import cProfile
import importlib
import importlib.metadata
import io
import json
import os
import pkgutil
import platform
import pstats
import py_compile
import re
import shutil
import site
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "layers" / "common"
EVENTS = ROOT / "events"
for _extra in (ROOT, ROOT / "cli", LAYER_DIR):
    if str(_extra) not in sys.path:
        sys.path.append(str(_extra))

BENCH_STACK = "partnero-bridge-bench"
MB = 1024 * 1024
# What the Lambda python3.13 runtime ships besides the standard library.
RUNTIME_PACKAGES = frozenset(
    {"boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six", "jmespath"}
)
# source -> (ingest function, process function, label); the warm bench runs both of a
# source's handlers in one process, with the two functions' environments together.
SOURCES = {
    "signup": ("SignupIngestFunction", "SignupProcessFunction", "sign-up"),
    "ecwid": ("EcwidOrderIngestFunction", "EcwidOrderProcessFunction", "Ecwid PAID order"),
    "stripe": ("StripeEventIngestFunction", "StripeEventProcessFunction", "Stripe invoice.paid"),
}
# Values the fake Secrets Manager holds (the bench's own, nothing real).
FAKE_SECRETS = {
    "PartneroSecret": {"api_key": "bench-partnero-key"},
    "SignupSecret": {"hmac_secret": "bench-signup-hmac"},
    "EcwidWebhookSecret": {"client_secrets": ["bench-ecwid-client-secret"]},
    "EcwidSecret": {"store_tokens": {"1003": "secret_bench_store_token"}},
    "StripeSecret": {"webhook_secrets": ["whsec_bench_endpoint_secret"]},
    "StripeApiSecret": {"api_key": "rk_live_bench_reader"},
}


class BenchError(Exception):
    """A section could not be measured; it is reported and the run goes on."""


# -- output ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    ok: bool | None  # None: not measured
    measured: str
    limit: str

    def line(self) -> str:
        status = "SKIP" if self.ok is None else "PASS" if self.ok else "MISS"
        return f"{status} {self.name}: {self.measured} ({self.limit})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        cells = [
            str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
            for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def size(count: int) -> str:
    return f"{count / MB:.2f} MB" if count >= MB / 10 else f"{count / 1024:.1f} KB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def per_event(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


# -- the stack as deployed, without AWS ----------------------------------------------------


@dataclass
class Deployment:
    """template.yaml resolved against made-up resource names (nothing is created)."""

    stack: Any
    refs: dict[str, str]
    attributes: dict[tuple[str, str], str]
    envs: dict[str, dict[str, str]] = field(default_factory=dict)


def deployment() -> Deployment:
    from partnero_bridge_cli.local.template import ACCOUNT_ID, REGION, Resolver, read_stack

    stack = read_stack(ROOT)
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    for queue in stack.queues:
        name = f"{BENCH_STACK}-{queue}"
        refs[queue] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        attributes[(queue, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    for table_id in stack.tables:
        refs[table_id] = f"{BENCH_STACK}-{table_id}"
    for secret in stack.secrets:
        refs[secret] = (
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{BENCH_STACK}/{secret}-AbCdEf"
        )
    # The bench's Ecwid store is configured (others would be parked, not processed).
    resolver = Resolver({**stack.parameters, "EcwidStoreIds": "1003"}, refs, attributes)
    result = Deployment(stack, refs, attributes)
    passthrough = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    for spec in stack.functions.values():
        env = {k: os.environ[k] for k in passthrough if k in os.environ}
        env.update({name: str(resolver.resolve(v)) for name, v in spec.environment.items()})
        env.update(
            {
                # What Lambda sets; LAMBDA_TASK_ROOT also turns Powertools tracing on,
                # as deployed (template: Tracing: Active, no POWERTOOLS_TRACE_DISABLED).
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_SESSION_TOKEN": "bench",
                # Nothing may reach real AWS: an unexpected client fails fast here.
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                "AWS_EC2_METADATA_DISABLED": "true",
                "PYTHONPATH": os.pathsep.join([str(spec.code_dir), str(LAYER_DIR)]),
            }
        )
        result.envs[spec.logical_id] = env
    return result


# -- 1. cold start -------------------------------------------------------------------------

IMPORT_SNIPPET = "import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


def _top_levels(distribution: str) -> set[str]:
    dist = importlib.metadata.distribution(distribution)
    listed = dist.read_text("top_level.txt")
    if listed:
        return set(listed.split())
    names = set()
    for path in dist.files or []:
        first = path.parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "bin", "__pycache__"):
            continue
        names.add(first.split(".")[0])
    return names


def layer_packages() -> set[str]:
    """Top-level import names the layer ships (from its pinned requirements)."""
    names = {"partnero_bridge"}
    for line in (LAYER_DIR / "requirements.txt").read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement:
            names |= _top_levels(re.split(r"[=<>~!\[ ]", requirement, maxsplit=1)[0])
    return names


def hidden_packages(allowed: set[str]) -> set[str]:
    """Installed in this venv, but neither in the layer nor in the Lambda runtime."""
    found: set[str] = set()
    for directory in site.getsitepackages():
        found |= {module.name for module in pkgutil.iter_modules([directory])}
    # Packaging machinery (editable-install finders, setuptools' hack) is not an import
    # the handler makes.
    found = {n for n in found if not n.startswith(("__editable__", "_distutils_hack"))}
    return found - allowed - RUNTIME_PACKAGES - set(sys.stdlib_module_names)


def _hide_snippet(hidden: set[str]) -> str:
    """Code that makes hidden packages unimportable, as they are on Lambda."""
    return (
        "import sys\n"
        "class _LambdaLike:\n"
        f"    hidden = {sorted(hidden)!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in self.hidden:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _LambdaLike())\n"
    )


def _run_python(code: str, env: dict[str, str], cwd: Path, *flags: str) -> tuple[str, str]:
    done = subprocess.run(  # noqa: S603 - this venv's interpreter, our own code
        [sys.executable, *flags, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"python -c failed: {last}")
    return done.stdout, done.stderr


def timed_import(module: str, env: dict[str, str], cwd: Path, prefix: str = "") -> float:
    out, _ = _run_python(prefix + IMPORT_SNIPPET.format(module=module), env, cwd)
    return float(out.strip().splitlines()[-1])


def bare_start(env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=cwd, env=env, check=True)
    return time.perf_counter() - started


@dataclass
class ImportEntry:
    name: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: ImportEntry | None = None


def parse_importtime(stderr: str) -> list[ImportEntry]:
    entries: list[ImportEntry] = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            depth = max(0, (len(match.group(3)) - 1) // 2)
            entries.append(
                ImportEntry(match.group(4), int(match.group(1)), int(match.group(2)), depth)
            )
    # -X importtime prints children before their parent: walk backwards to link them.
    stack: list[ImportEntry] = []
    for entry in reversed(entries):
        while stack and stack[-1].depth >= entry.depth:
            stack.pop()
        entry.parent = stack[-1] if stack else None
        stack.append(entry)
    return entries


def _under(entry: ImportEntry, name: str) -> bool:
    node: ImportEntry | None = entry
    while node is not None:
        if node.name == name:
            return True
        node = node.parent
    return False


def _chain(entry: ImportEntry) -> str:
    names, node = [], entry.parent
    while node is not None:
        names.append(node.name)
        node = node.parent
    return " > ".join(reversed(names))


def top_most(entries: list[ImportEntry], match: Callable[[str], bool]) -> list[ImportEntry]:
    """Entries that match while their importer does not (the roots of matching subtrees)."""
    return [e for e in entries if match(e.name) and not (e.parent and match(e.parent.name))]


def handler_module(spec: Any) -> str:
    """The module a function's Handler names (``ingest`` for ``ingest.handler``)."""
    return str(spec.handler).rpartition(".")[0]


def shipped_copy(target: Path, specs: Sequence[Any]) -> tuple[Path, dict[str, Path]]:
    """The layer and function code as Lambda gets them (see layers/common/Makefile):
    third-party packages as bytecode only, partnero_bridge and the functions' code as source.

    The layer's packages are copied from this venv (same versions as the pinned layer, this
    machine's wheels), partnero_bridge and each function's code directory from the repository.
    """
    layer = target / "opt" / "python"
    names = ["partnero_bridge"]
    for line in (LAYER_DIR / "requirements.txt").read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement:
            names.append(re.split(r"[=<>~!\[ ]", requirement, maxsplit=1)[0])
    for name in names[1:]:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            if file.parts[0] in ("..", "bin") or "__pycache__" in file.parts:
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and source.suffix != ".pyc":
                (layer / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, layer / file)
    # As the layer build does: compile third-party code in place (sourceless), drop sources.
    compileall.compile_dir(
        str(layer),
        quiet=1,
        legacy=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    for source in layer.rglob("*.py"):
        source.unlink()
    shutil.copytree(
        LAYER_DIR / "partnero_bridge",
        layer / "partnero_bridge",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    tasks: dict[str, Path] = {}
    for spec in specs:
        # Each function gets its whole CodeUri (a source's ingest and process share it).
        task = target / "task" / spec.logical_id
        shutil.copytree(spec.code_dir, task, ignore=shutil.ignore_patterns("__pycache__"))
        tasks[spec.logical_id] = task
    return layer, tasks


def section_cold_start(args: argparse.Namespace, dep: Deployment, targets: list[Target]) -> None:
    heading("1. Cold start: handler import in a fresh interpreter")
    specs = list(dep.stack.functions.values())
    first = specs[0]
    allowed = layer_packages()
    hidden = hidden_packages(allowed)
    lambda_like = _hide_snippet(hidden)
    base_env, base_cwd = dep.envs[first.logical_id], first.code_dir

    with tempfile.TemporaryDirectory(prefix="bench-shipped-") as tmp:
        layer, tasks = shipped_copy(Path(tmp), specs)
        shipped_env = {}
        for spec in specs:
            task = tasks[spec.logical_id]
            shipped_env[spec.logical_id] = {
                **dep.envs[spec.logical_id],
                "LAMBDA_TASK_ROOT": str(task),
                "PYTHONPATH": os.pathsep.join([str(task), str(layer)]),
                # Like read-only /var/task and /opt: nothing compiled is kept between runs.
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        modes = ("venv", "lambda", "shipped")
        bare: list[float] = []
        boto: dict[str, list[float]] = {m: [] for m in modes[:2]}
        handler = {s.logical_id: {m: list[float]() for m in modes} for s in specs}
        for _ in range(args.cold_runs):  # interleaved, so drift hits every figure alike
            bare.append(bare_start(base_env, base_cwd))
            boto["venv"].append(timed_import("boto3", base_env, base_cwd))
            boto["lambda"].append(timed_import("boto3", base_env, base_cwd, lambda_like))
            for spec in specs:
                env, fn_id, module = (
                    dep.envs[spec.logical_id],
                    spec.logical_id,
                    handler_module(spec),
                )
                handler[fn_id]["venv"].append(timed_import(module, env, spec.code_dir))
                handler[fn_id]["lambda"].append(
                    timed_import(module, env, spec.code_dir, lambda_like)
                )
                handler[fn_id]["shipped"].append(
                    timed_import(module, shipped_env[fn_id], tasks[fn_id], lambda_like)
                )

    median_bare = statistics.median(bare)
    boto_venv = statistics.median(boto["venv"])
    boto_lambda = statistics.median(boto["lambda"])
    rows = [
        ["python -c pass (wall, whole process)", ms(median_bare), "", "", "", "", ""],
        ["import boto3", ms(boto_venv), "1.00x", ms(boto_lambda), "1.00x", "(runtime)", ""],
    ]
    for spec in specs:
        venv, lam, shipped = (
            statistics.median(handler[spec.logical_id][m]) for m in ("venv", "lambda", "shipped")
        )
        rows.append(
            [
                f"import {handler_module(spec)} ({spec.code_dir.name})",
                ms(venv),
                f"{venv / boto_venv:.2f}x",
                ms(lam),
                f"{lam / boto_lambda:.2f}x",
                ms(shipped),
                f"{shipped / boto_lambda:.2f}x",
            ]
        )
    print(
        f"median of {args.cold_runs} fresh interpreters; function environment from template.yaml"
        ", tracing on (LAMBDA_TASK_ROOT set, as deployed)"
    )
    print(
        table(
            ["what", "venv", "/ boto3", "Lambda-like", "/ boto3", "as shipped", "/ boto3"],
            rows,
        )
    )
    print(
        "venv: this venv as is. Lambda-like: the packages that neither the layer nor the Lambda\n"
        f"runtime ship ({len(hidden)} in this venv) made unimportable, as on Lambda. As shipped:\n"
        "Lambda-like, with the layer as its build makes it (third-party code as bytecode only,\n"
        "partnero_bridge and the handlers as source) and bytecode caching off, because /opt\n"
        "and /var/task are read-only on Lambda (boto3 and botocore come compiled with the\n"
        "runtime)."
    )

    slowest = max(specs, key=lambda s: statistics.median(handler[s.logical_id]["venv"]))
    module = handler_module(slowest)
    _, stderr = _run_python(
        f"import {module}", dep.envs[slowest.logical_id], slowest.code_dir, "-X", "importtime"
    )
    app_entry = next((e for e in parse_importtime(stderr) if e.name == module), None)
    if app_entry is None:
        raise BenchError(f"-X importtime printed no line for {module}")
    # Only what importing the handler caused (site's start-up imports are listed too).
    entries = [e for e in parse_importtime(stderr) if _under(e, module)]
    top = sorted((e for e in entries if e.name != module), key=lambda e: -e.cumulative_us)[:10]
    print(
        f"\n-X importtime of the slowest handler ({slowest.code_dir.name}/{module}.py, venv; "
        f"{app_entry.cumulative_us / 1000:.0f} ms under importtime), top 10 by cumulative:"
    )
    print(
        table(
            ["module (indent = import depth)", "cumulative", "self"],
            [
                [
                    "  " * e.depth + e.name,
                    f"{e.cumulative_us / 1000:.1f} ms",
                    f"{e.self_us / 1000:.1f} ms",
                ]
                for e in top
            ],
        )
    )
    by_package: Counter[str] = Counter()
    for entry in entries:
        root = entry.name.partition(".")[0]
        by_package["stdlib" if root in sys.stdlib_module_names else root] += entry.self_us
    print(
        "self time by top-level package (adds up to the whole import): "
        + ", ".join(f"{n} {v / 1000:.0f} ms" for n, v in by_package.most_common(8))
    )
    venv_only: Counter[str] = Counter()
    for entry in top_most(entries, lambda name: name.partition(".")[0] in hidden):
        venv_only[entry.name.partition(".")[0]] += entry.cumulative_us
    if venv_only:
        print(
            f"venv-only packages (absent on Lambda) take {sum(venv_only.values()) / 1000:.0f} ms "
            "of it: " + ", ".join(f"{n} {v / 1000:.0f} ms" for n, v in venv_only.most_common(6))
        )
    for root in ("botocore", "aws_xray_sdk"):
        subtrees = top_most(entries, lambda name, r=root: name.partition(".")[0] == r)
        heavy = sorted(subtrees, key=lambda e: -e.cumulative_us)[:2]
        if heavy:
            print(
                f"{root} at handler import: "
                + "; ".join(
                    f"{e.name} {e.cumulative_us / 1000:.0f} ms via {_chain(e)}" for e in heavy
                )
            )

    for spec in specs:
        venv = statistics.median(handler[spec.logical_id]["venv"])
        # An ingest function answers a sender who waits; a process function imports its
        # processing (idempotency, and with it boto3) at once, since every batch needs it.
        limit, ratio = (0.300, 2) if spec.routes else (0.500, 3)
        targets.append(
            Target(
                f"cold start {spec.code_dir.name} {handler_module(spec)}: handler import",
                venv < limit,
                ms(venv),
                f"< {ms(limit)}",
            )
        )
        targets.append(
            Target(
                f"cold start {spec.code_dir.name} {handler_module(spec)}: import / boto3",
                venv < ratio * boto_venv,
                f"{venv / boto_venv:.2f}x ({ms(venv)} / {ms(boto_venv)})",
                f"< {ratio}x",
            )
        )


# -- 2 and 3. warm overhead and remote calls ----------------------------------------------


def source_env(dep: Deployment, source: str) -> dict[str, str]:
    """A source's ingest and process environments together (one process runs both)."""
    ingest, process, _label = SOURCES[source]
    return {**dep.envs[ingest], **dep.envs[process]}


def worker_config(dep: Deployment, source: str, args: argparse.Namespace) -> dict[str, Any]:
    stack = dep.stack
    ingest, process, _label = SOURCES[source]
    key_schema = {
        dep.refs[t]: [k["AttributeName"] for k in table_spec.properties.get("KeySchema", [])]
        for t, table_spec in stack.tables.items()
    }
    table_roles = {
        dep.refs["IdempotencyTable"]: "idempotency",
        dep.refs["LedgerTable"]: "ledger",
    }
    env = source_env(dep, source)
    work_url = env["BRIDGE_WORK_QUEUE_URL"]
    work_queue = next(q for q in stack.queues if dep.refs[q] == work_url)
    return {
        "functions": {
            path: {
                "name": name,
                "memory_mb": stack.functions[name].memory_mb,
                "timeout": stack.functions[name].timeout,
            }
            for path, name in (("ingest", ingest), ("process", process))
        },
        "source": source,
        "warmup": args.warmup,
        "events": args.events,
        "profile_events": args.profile_events,
        "rounds": args.rounds,
        "key_schema": key_schema,
        "table_roles": table_roles,
        "queue_roles": {
            work_url: "work",
            env["BRIDGE_DEAD_LETTER_QUEUE_URL"]: "dlq",
        },
        "work_queue_url": work_url,
        "work_queue_arn": dep.attributes[(work_queue, "Arn")],
        "secrets": {dep.refs[name]: value for name, value in FAKE_SECRETS.items()},
        "profile_dir": str(Path(args.profile_dir).resolve()) if args.profile_dir else "",
    }


def run_worker_process(
    dep: Deployment, source: str, args: argparse.Namespace, **extra_env: str
) -> Any:
    spec = dep.stack.functions[SOURCES[source][0]]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = Path(tmp) / "config.json"
        result = Path(tmp) / "result.json"
        config.write_text(json.dumps(worker_config(dep, source, args)))
        done = subprocess.run(  # noqa: S603 - this venv's interpreter, this script
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(config)],
            cwd=spec.code_dir,
            env={**source_env(dep, source), **extra_env, "BENCH_RESULT": str(result)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0 or not result.exists():
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise BenchError(f"{source} worker failed (exit {done.returncode}):\n{tail}")
        return json.loads(result.read_text())


PATHS = ("ingest", "process")


def section_warm(
    args: argparse.Namespace, dep: Deployment, targets: list[Target]
) -> dict[str, Any]:
    heading("2. Warm overhead: CPU per event, AWS/Partnero/Ecwid as in-process fakes")
    results: dict[str, Any] = {}
    untraced: dict[str, Any] = {}
    for source in SOURCES:
        started = time.perf_counter()
        results[source] = run_worker_process(dep, source, args)
        # The same again with tracing off, to show what Tracing: Active costs per event.
        untraced[source] = run_worker_process(dep, source, args, POWERTOOLS_TRACE_DISABLED="1")
        print(f"  {source}: measured in {time.perf_counter() - started:.1f} s", flush=True)
    rows = []
    problems = []
    for source, (_, _, label) in SOURCES.items():
        for path in PATHS:
            r = results[source][path]
            overhead = r["cpu"] - r["fake_cpu"]
            plain = untraced[source][path]
            rows.append(
                [
                    f"{label} {path}",
                    str(r["events"]),
                    us(r["cpu"]),
                    us(r["fake_cpu"]),
                    us(overhead),
                    us(plain["cpu"] - plain["fake_cpu"]),
                    us(r["floor"]),
                    f"{overhead / r['floor']:.1f}x",
                ]
            )
            problems += [f"{label} {path}: {p}" for p in r["errors"]]
            targets.append(
                Target(
                    f"warm overhead {label} {path}",
                    overhead < 3 * r["floor"],
                    f"{us(overhead)} us = {overhead / r['floor']:.1f}x floor {us(r['floor'])} us",
                    "< 3x floor",
                )
            )
    print(
        table(
            [
                "path (fresh ids per event)",
                "events",
                "handler CPU us",
                "in fakes us",
                "bridge us",
                "(untraced)",
                "floor us",
                "bridge/floor",
            ],
            rows,
        )
    )
    print(
        "CPU = time.process_time() per event after a warm-up (the median of "
        f"{args.rounds} rounds);\nstdout (logs, metrics) goes to /dev/null. bridge = handler CPU"
        " minus the fakes' own CPU,\nwith tracing on as deployed (sampled; segments go to a"
        " local UDP sink); untraced = the same\nwith POWERTOOLS_TRACE_DISABLED=1. Floor ="
        " signature check + JSON parse + model validation of\nthe same payload (sign-up:"
        " json.loads + SignupRequest; Ecwid: signature + EcwidWebhook, + EcwidOrder\nfor"
        " process; Stripe: signature + EventHead). botocore is not in the loop (fakes), so real"
        "\nAWS calls would add their own serialisation and signing."
    )
    sampled = [k for k, r in results.items() if r.get("xray_datagrams", 0) == 0]
    if sampled:
        print(f"note: no X-Ray datagram seen for {', '.join(sampled)} (tracing may be off)")
    for problem in problems:
        print(f"ERROR {problem}")

    print(
        f"\nwhere the bridge's CPU goes: cProfile self time over {args.profile_events} more events"
        " per path;\nbuiltins and os.environ reads are charged to their caller; the profiler"
        " inflates small\ncalls, so compare the shares, not the times:"
    )
    shares: dict[str, dict[str, float]] = {}
    columns = []
    for source in SOURCES:
        for path in PATHS:
            column = f"{source} {path}"
            columns.append(column)
            for component, share in results[source][path]["profile"].items():
                shares.setdefault(component, {})[column] = share
    ranked = sorted(shares, key=lambda c: -max(shares[c].values()))[: args.profile_rows]
    print(
        table(
            ["component", *columns],
            [[c, *(f"{shares[c].get(col, 0) * 100:.0f}%" for col in columns)] for c in ranked],
        )
    )
    if problems:
        raise BenchError("the happy path failed (see ERROR lines): figures are not valid")
    return results


def section_remote_calls(results: dict[str, Any], targets: list[Target]) -> None:
    heading("3. Remote calls per event on the happy path (counted by the fakes)")
    rows = []
    for source, (_, _, label) in SOURCES.items():
        for path in PATHS:
            counts = results[source][path]["counts"]
            rows.append(
                [
                    f"{label} {path}",
                    per_event(counts.get("dynamodb", 0)),
                    per_event(counts.get("sqs", 0)),
                    per_event(counts.get("partnero", 0)),
                    per_event(counts.get("ecwid", 0)),
                    per_event(counts.get("stripe", 0)),
                    per_event(counts.get("secretsmanager", 0)),
                    per_event(results[source][path]["secret_reads"]),
                ]
            )
    print(
        table(
            [
                "path",
                "DynamoDB",
                "SQS",
                "Partnero",
                "Ecwid",
                "Stripe",
                "Secrets Mgr",
                "(secret reads, cached)",
            ],
            rows,
        )
    )
    print("per event, averaged over the measured events (secrets: after the first read).")
    print("\nwhich calls (per event):")
    for source, (_, _, label) in SOURCES.items():
        for path in PATHS:
            labels = results[source][path]["labels"]
            if labels:
                text = ", ".join(f"{name} x{per_event(n)}" for name, n in sorted(labels.items()))
                print(f"  {label} {path}: {text}")

    def budget(name: str, source: str, limits: dict[str, float]) -> None:
        process = results[source]["process"]
        counts, labels = process["counts"], process["labels"]
        measured = {
            "Ecwid order GET": labels.get("ecwid GET order", 0.0),
            "Ecwid profile GET": labels.get("ecwid GET profile", 0.0),
            "Partnero": counts.get("partnero", 0.0),
            "DynamoDB": counts.get("dynamodb", 0.0),
            "Stripe GET": counts.get("stripe", 0.0),
        }
        ok = all(measured[key] <= limit + 1e-9 for key, limit in limits.items())
        targets.append(
            Target(
                f"remote calls {name} (process)",
                ok,
                ", ".join(f"{per_event(measured[key])} {key}" for key in limits),
                "<= " + ", ".join(f"{per_event(limit)} {key}" for key, limit in limits.items()),
            )
        )

    budget(
        "Ecwid PAID order",
        "ecwid",
        {"Ecwid order GET": 1, "Ecwid profile GET": 0, "Partnero": 1, "DynamoDB": 4},
    )
    budget("Stripe invoice.paid", "stripe", {"Stripe GET": 2, "Partnero": 1, "DynamoDB": 4})
    budget("sign-up", "signup", {"Partnero": 1, "DynamoDB": 3})


# -- the worker: one function, in-process, with fakes ------------------------------------


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Logs and metrics go to stdout; shipping them is outside the function's CPU."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _trace_header() -> str:
    now = int(time.time())
    return f"Root=1-{now:08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"


@dataclass
class Payload:
    raw: bytes
    headers: dict[str, str]
    extra: Any = None


class Scenario:
    """Fresh, valid requests for one source, and the floor work on the same payload."""

    path = ""

    def make(self, index: int) -> Payload:
        raise NotImplementedError

    def floor_ingest(self, payload: Payload) -> None:
        raise NotImplementedError

    def floor_process(self, payload: Payload) -> None:
        self.floor_ingest(payload)


class SignupScenario(Scenario):
    path = "/signup"

    def __init__(self, tag: str) -> None:
        from partnero_bridge.signup.models import SignupRequest

        self.model = SignupRequest
        self.tag = tag
        self.base = json.loads((EVENTS / "signup" / "referred.json").read_text())

    def make(self, index: int) -> Payload:
        from partnero_bridge.signup import signature

        body = {**self.base, "email": f"bench.{self.tag}.{index}@example.com"}
        raw = json.dumps(body).encode()
        # Signed, as a shop's backend sends it: an unsigned call without a browser Origin
        # is refused.
        secret = FAKE_SECRETS["SignupSecret"]["hmac_secret"]
        headers = {"content-type": "application/json", "user-agent": "bench"}
        headers[signature.SIGNATURE_HEADER] = signature.sign(secret, raw)
        return Payload(raw, headers)

    def floor_ingest(self, payload: Payload) -> None:
        self.model.model_validate(json.loads(payload.raw))


class EcwidScenario(Scenario):
    path = "/webhooks/ecwid"

    def __init__(self, tag: str, client_secret: str, fake_ecwid: Any) -> None:
        from partnero_bridge.ecwid import signature
        from partnero_bridge.ecwid.models import EcwidOrder, EcwidWebhook

        self.signature, self.webhook_model, self.order_model = (
            signature,
            EcwidWebhook,
            EcwidOrder,
        )
        self.tag = tag.upper()
        self.secret = client_secret
        self.fake = fake_ecwid
        self.order = json.loads(
            (EVENTS / "ecwid" / "orders" / "paid-with-partner.json").read_text()
        )
        self.template = json.loads(
            (EVENTS / "ecwid" / "webhooks" / "order-created.json").read_text()
        )

    def make(self, index: int) -> Payload:
        from tests.support.ecwid import signed

        order_id = f"B{self.tag}{index}"
        internal = 700_000_000 + index
        order = {
            **self.order,
            "id": order_id,
            "internalId": internal,
            "orderNumber": internal,
            "vendorOrderNumber": order_id,
            "publicUid": order_id,
        }
        order_raw = json.dumps(order).encode()
        self.fake.add_order("1003", order_id, order_raw)
        body = {
            **self.template,
            "eventId": str(uuid.uuid4()),
            # Fresh: ingest refuses webhooks older than ECWID_MAX_EVENT_AGE_SECONDS.
            "eventCreated": int(time.time()),
            "entityId": internal,
            "data": {**self.template["data"], "orderId": order_id},
        }
        raw, headers = signed(body, self.secret)
        return Payload(raw, headers, order_raw)

    def floor_ingest(self, payload: Payload) -> None:
        webhook = self.webhook_model.model_validate(json.loads(payload.raw))
        if not self.signature.verify(
            payload.headers[self.signature.SIGNATURE_HEADER],
            self.secret,
            webhook.eventCreated,
            webhook.eventId,
        ):
            raise BenchError("floor: Ecwid signature does not verify")

    def floor_process(self, payload: Payload) -> None:
        self.floor_ingest(payload)
        self.order_model.model_validate_json(payload.extra)


class StripeScenario(Scenario):
    path = "/webhooks/stripe"

    def __init__(self, tag: str, secret: str, fake: Any = None) -> None:
        from partnero_bridge.stripe import signature
        from partnero_bridge.stripe.ingest import EventHead

        self.signature, self.model = signature, EventHead
        self.tag = tag
        self.secret = secret
        self.fake = fake
        self.event = json.loads(
            (EVENTS / "stripe" / "invoice.paid.subscription_create.json").read_text()
        )
        self.event["livemode"] = True  # the deployed default is StripeLivemode=true

    def make(self, index: int) -> Payload:
        from tests.support.stripe import signed

        suffix = f"Bench{self.tag}{index}"
        event = copy.deepcopy(self.event)
        event["id"] = f"evt_{suffix}"
        invoice = event["data"]["object"]
        invoice["id"] = f"in_{suffix}"
        invoice["livemode"] = True  # as the event: a live payment
        invoice["customer"] = f"cus_{suffix}"
        for payment in (invoice.get("payments") or {}).get("data", []):
            payment["livemode"] = True
            payment["id"] = f"inpay_{suffix}"
            payment["invoice"] = invoice["id"]
            payment["payment"]["payment_intent"] = f"pi_{suffix}"
        if self.fake is not None:
            # What Stripe holds for this payment: the invoice, its payment and its intent.
            self.fake.api.load_event(event, self.state(invoice, suffix))
        raw, headers = signed(event, self.secret)
        return Payload(raw, headers)

    @staticmethod
    def state(invoice: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
        """The objects Stripe holds for a paid invoice that its event does not carry."""
        common = {"currency": invoice["currency"], "livemode": True, "created": invoice["created"]}
        amount = invoice["amount_paid"]
        return [
            {
                "id": f"inpay_{suffix}",
                "object": "invoice_payment",
                "invoice": invoice["id"],
                "amount_paid": amount,
                "amount_requested": amount,
                "status": "paid",
                "is_default": True,
                "payment": {"type": "payment_intent", "payment_intent": f"pi_{suffix}"},
                **common,
            },
            {
                "id": f"pi_{suffix}",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": amount,
                "amount_received": amount,
                "latest_charge": f"ch_{suffix}",
                "customer": invoice["customer"],
                **common,
            },
            {
                "id": f"ch_{suffix}",
                "object": "charge",
                "status": "succeeded",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "captured": True,
                "refunded": False,
                "disputed": False,
                "payment_intent": f"pi_{suffix}",
                **common,
            },
        ]

    def floor_ingest(self, payload: Payload) -> None:
        if not self.signature.verify(
            payload.headers[self.signature.SIGNATURE_HEADER], payload.raw, [self.secret]
        ):
            raise BenchError("floor: Stripe signature does not verify")
        self.model.model_validate(json.loads(payload.raw))


_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
_COMPONENTS = (
    ("/aws_xray_sdk/", "aws_xray_sdk (tracing)"),
    ("/pydantic_core/", "pydantic"),
    ("/pydantic/", "pydantic"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpx"),
    ("/h11/", "httpx"),
    ("/wrapt/", "wrapt"),
    ("/jmespath/", "jmespath"),
    ("/botocore/", "botocore"),
    ("/boto3/", "boto3"),
    ("/partnero_bridge_cli/", "(harness)"),
    ("/partnero_bridge/", "partnero_bridge"),
    ("/bench/fakes.py", "(bench fakes)"),
    ("/bench/bench.py", "(harness)"),
)


def component(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/aws_lambda_powertools/" in path:
        rest = path.split("/aws_lambda_powertools/", 1)[1].split("/")
        if rest[0] == "utilities" and len(rest) > 2:
            return f"powertools {rest[1]}"
        return f"powertools {rest[0].removesuffix('.py')}"
    for marker, label in _COMPONENTS:
        if marker in path:
            return label
    if path.startswith(_STDLIB):
        return f"stdlib {Path(path).relative_to(_STDLIB).parts[0].removesuffix('.py')}"
    return "other"


def profile_shares(profile: cProfile.Profile) -> dict[str, float]:
    """Self time per component; builtins and frozen stdlib helpers (os.environ, abc) are
    charged to whoever called them, so their cost shows where it comes from."""
    stats: Any = pstats.Stats(profile).stats
    owners: dict[Any, dict[str, float]] = {}

    def is_helper(function: Any) -> bool:
        return bool(function[0] == "~" or function[0].startswith("<frozen"))

    def owner(function: Any) -> dict[str, float]:
        if not is_helper(function):
            return {component(function[0]): 1.0}
        if function in owners:
            return owners[function]
        owners[function] = {"other": 1.0}  # a cycle among helpers ends here
        callers = stats.get(function, (0, 0, 0, 0, {}))[4]
        weights = {c: v[2] for c, v in callers.items()}
        if not sum(weights.values()):
            weights = {c: v[1] for c, v in callers.items()}
        total = sum(weights.values())
        shares: Counter[str] = Counter()
        for caller, weight in weights.items():
            for name, share in owner(caller).items():
                shares[name] += share * weight / total
        owners[function] = dict(shares) or {"other": 1.0}
        return owners[function]

    totals: Counter[str] = Counter()
    for function, (_cc, _nc, tottime, _ct, _callers) in stats.items():
        for name, share in owner(function).items():
            totals[name] += tottime * share
    total = sum(totals.values()) or 1.0
    return {name: value / total for name, value in totals.most_common()}


def run_worker(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    result_path = os.environ["BENCH_RESULT"]
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    warnings.filterwarnings("ignore", message="Dimension 'source' has already been added")
    # X-Ray: tracing is on as deployed; its UDP datagrams go to a sink that nobody reads
    # during the loops (the kernel drops what does not fit), never to a real daemon.
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{sink.getsockname()[1]}"
    os.environ["_X_AMZN_TRACE_ID"] = _trace_header()

    import httpx
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    # A source's two handlers, from its code directory (the worker's cwd and PYTHONPATH).
    handlers = {path: importlib.import_module(path).handler for path in PATHS}
    from fakes import (
        CallLog,
        FakeDynamoDB,
        FakeEcwid,
        FakePartnero,
        FakeSecretsManager,
        FakeSQS,
        FakeStripe,
    )

    from partnero_bridge.config import SecretReader
    from partnero_bridge.partnero import PartneroClient
    from partnero_bridge.runtime import get_runtime
    from partnero_bridge_cli.local.gateway import build_event
    from partnero_bridge_cli.local.pollers import _record
    from partnero_bridge_cli.local.template import HttpRoute
    from partnero_bridge_cli.local.worker import LocalContext

    secret_reads = Counter[str]()

    class CountingSecretReader(SecretReader):
        def read(self, arn: str) -> dict[str, Any]:
            secret_reads[arn] += 1
            return super().read(arn)

    runtime = get_runtime()
    settings = runtime.settings
    log = CallLog()
    runtime.__dict__["sqs"] = sqs = FakeSQS(log, config["queue_roles"])
    dynamodb = FakeDynamoDB(log, config["key_schema"], config["table_roles"])
    # A stack in service for a while: its ledger predates the sales measured here.
    from partnero_bridge.ledger import keys as ledger_keys
    from partnero_bridge.ledger.records import LedgerMeta

    ledger_table = next(t for t, role in config["table_roles"].items() if role == "ledger")
    dynamodb.tables.setdefault(ledger_table, {})[(ledger_keys.META,)] = LedgerMeta(
        pk=ledger_keys.META, since=0
    ).to_item()
    runtime.__dict__["dynamodb"] = dynamodb
    reader = CountingSecretReader(max_age=settings.secret_cache_seconds)
    # The real reader and Powertools' cache in front of a fake Secrets Manager.
    reader._provider = SecretsProvider(
        boto3_client=FakeSecretsManager(log, config["secrets"])  # type: ignore[arg-type]
    )
    runtime.__dict__["secrets"] = reader
    arn = settings.partnero_secret_arn
    runtime.__dict__["partnero"] = PartneroClient(
        base_url=settings.partnero_api_url,
        api_key=lambda: reader.field(arn, "api_key"),
        timeout_seconds=settings.partnero_timeout_seconds,
        on_unauthorized=lambda: reader.invalidate(arn),
        transport=httpx.MockTransport(FakePartnero(log)),
    )

    tag = uuid.uuid4().hex[:6]
    source = config["source"]
    scenario: Scenario
    if source == "signup":
        scenario = SignupScenario(tag)
    elif source == "ecwid":
        from partnero_bridge.ecwid import process as ecwid_process
        from partnero_bridge.ecwid.client import EcwidClient

        fake_ecwid = FakeEcwid(log)
        key = (settings.ecwid_api_url, settings.ecwid_timeout_seconds)
        ecwid_process._clients.clear()
        ecwid_process._clients[key] = EcwidClient(*key, transport=httpx.MockTransport(fake_ecwid))
        secret = config["secrets"][settings.ecwid_webhook_secret_arn]
        scenario = EcwidScenario(tag, secret["client_secrets"][0], fake_ecwid)
    else:
        from partnero_bridge.stripe.client import StripeClient

        secret = config["secrets"][settings.stripe_secret_arn]
        api_key = config["secrets"][settings.stripe_api_secret_arn]["api_key"]
        fake_stripe = FakeStripe(log, api_key)
        runtime.__dict__["stripe"] = StripeClient(
            settings.stripe_api_url,
            lambda: api_key,
            settings.stripe_timeout_seconds,
            transport=httpx.MockTransport(fake_stripe),
        )
        scenario = StripeScenario(tag, secret["webhook_secrets"][0], fake_stripe)

    warm, count, profiled = config["warmup"], config["events"], config["profile_events"]
    functions = config["functions"]
    route = HttpRoute("POST", scenario.path, functions["ingest"]["name"])
    payloads = [scenario.make(i) for i in range(warm + count + profiled)]
    api_events = [
        build_event(route, "POST", route.path, list(p.headers.items()), p.raw, "203.0.113.9", {})
        for p in payloads
    ]

    def invoke(path: str, events: Sequence[dict[str, Any]]) -> tuple[float, float, list[Any]]:
        function, handler = functions[path], handlers[path]
        contexts = [
            LocalContext(function["name"], function["memory_mb"], function["timeout"])
            for _ in events
        ]
        traces = [_trace_header() for _ in events]
        answers = []
        fake_before = log.fake_cpu
        started = time.process_time()
        for event, context, trace in zip(events, contexts, traces, strict=True):
            os.environ["_X_AMZN_TRACE_ID"] = trace
            answers.append(handler(event, context))
        return time.process_time() - started, log.fake_cpu - fake_before, answers

    rounds = max(1, min(config["rounds"], count))

    def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
        size = -(-len(items) // rounds)
        return [items[i : i + size] for i in range(0, len(items), size)]

    def floor(work: Callable[[Payload], None], items: Sequence[Payload]) -> float:
        for item in items[:warm]:
            work(item)
        per_event = []
        for chunk in chunks(items[warm : warm + count]):
            started = time.process_time()
            for item in chunk:
                work(item)
            per_event.append((time.process_time() - started) / len(chunk))
        return statistics.median(per_event)

    def measure(
        path: str,
        events: Sequence[dict[str, Any]],
        check: Callable[[Any], str | None],
        floor_work: Callable[[Payload], None],
    ) -> dict[str, Any]:
        errors: list[str] = []
        with stdout_to_devnull():
            _, _, answers = invoke(path, events[:warm])
            before_calls, before_reads = log.snapshot(), sum(secret_reads.values())
            measured_answers, per_round = [], []
            for chunk in chunks(events[warm : warm + count]):
                cpu, fake_cpu, chunk_answers = invoke(path, chunk)
                measured_answers += chunk_answers
                n = len(chunk)
                per_round.append(((cpu - fake_cpu) / n, cpu / n, fake_cpu / n))
            # The round with the median bridge CPU: one GC pause or a noisy neighbour
            # does not move the figure.
            _, cpu, fake_cpu = sorted(per_round)[len(per_round) // 2]
            calls = log.snapshot() - before_calls
            reads = sum(secret_reads.values()) - before_reads
            profile = cProfile.Profile()
            profile.enable()
            _, _, profiled_answers = invoke(path, events[warm + count :])
            profile.disable()
        if config["profile_dir"]:
            Path(config["profile_dir"]).mkdir(parents=True, exist_ok=True)
            profile.dump_stats(Path(config["profile_dir"]) / f"{source}-{path}.pstats")
        for answer in [*answers, *measured_answers, *profiled_answers]:
            problem = check(answer)
            if problem and problem not in errors:
                errors.append(problem)
        services: Counter[str] = Counter()
        labels: dict[str, float] = {}
        for (service, label), n in calls.items():
            services[service] += n
            labels[f"{service} {label}"] = n / count
        if labels.get("sqs dlq:send_message"):
            errors.append("messages were dead-lettered")
        return {
            "events": count,
            "cpu": cpu,
            "fake_cpu": fake_cpu,
            "floor": floor(floor_work, payloads),
            "counts": {service: n / count for service, n in services.items()},
            "labels": labels,
            "secret_reads": reads / count,
            "errors": errors,
            "profile": profile_shares(profile),
        }

    def ingest_ok(answer: Any) -> str | None:
        status = answer.get("statusCode") if isinstance(answer, dict) else None
        if isinstance(status, int) and 200 <= status < 300:
            return None
        return f"ingest answered {status}: {str(answer.get('body'))[:200]}"

    def process_ok(answer: Any) -> str | None:
        if answer == {"batchItemFailures": []}:
            return None
        return f"processing reported {answer}"

    result: dict[str, Any] = {
        "ingest": measure("ingest", api_events, ingest_ok, scenario.floor_ingest)
    }
    messages = sqs.take(config["work_queue_url"])
    if len(messages) != len(payloads):
        raise BenchError(f"{len(messages)} messages queued for {len(payloads)} requests")
    sqs_events = [{"Records": [_record(m, config["work_queue_arn"])]} for m in messages]
    result["process"] = measure("process", sqs_events, process_ok, scenario.floor_process)

    datagrams = 0
    with contextlib.suppress(BlockingIOError):
        while sink.recv(65536):
            datagrams += 1
    result["xray_datagrams"] = datagrams
    Path(result_path).write_text(json.dumps(result))
    return 0


# -- 4. deployment size --------------------------------------------------------------------


def _sizes(directory: Path) -> tuple[int, int, int]:
    """(files, bytes unzipped, bytes zipped with deflate) of a directory's content."""
    files = [p for p in sorted(directory.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(directory).as_posix())
    return len(files), sum(p.stat().st_size for p in files), len(buffer.getvalue())


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def section_size(args: argparse.Namespace, targets: list[Target]) -> None:
    heading("4. Deployment size (sam build, no container)")
    sam = Path(sys.executable).with_name("sam")
    sam_path = str(sam) if sam.exists() else shutil.which("sam")
    if sam_path is None:
        print("skipped: sam is not installed (make install puts it in .venv)")
        targets.append(Target("layer size", None, "not measured (no sam)", "< 10 MB unzipped"))
        return
    found = subprocess.run(  # noqa: S603 - the repository's own script
        ["sh", str(ROOT / "scripts" / "find-python.sh")],  # noqa: S607 - POSIX sh
        capture_output=True,
        text=True,
        check=False,
    )
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if found.returncode == 0 and found.stdout.strip():
        env["PATH"] = f"{Path(found.stdout.strip()).parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
        build = Path(tmp) / "build"
        started = time.perf_counter()
        try:
            done = subprocess.run(  # noqa: S603 - the venv's sam
                [sam_path, "build", "--build-dir", str(build), "--cache-dir", f"{tmp}/cache"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.build_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"skipped: sam build took over {args.build_timeout} s")
            targets.append(Target("layer size", None, "not measured", "< 10 MB unzipped"))
            return
        if done.returncode != 0:
            tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            print("skipped: sam build failed (no network to fetch the layer's wheels?):")
            print("\n".join(f"  {line.replace(tmp, '<tmp>')}" for line in tail[-6:]))
            targets.append(Target("layer size", None, "not measured", "< 10 MB unzipped"))
            return
        print(f"sam build succeeded in {time.perf_counter() - started:.0f} s")
        rows = []
        layer_bytes = 0
        artifacts = sorted(p for p in build.iterdir() if p.is_dir())
        for artifact in artifacts:
            files, unzipped, zipped = _sizes(artifact)
            if artifact.name == "CommonLayer":
                layer_bytes = unzipped
            rows.append(
                [
                    artifact.name,
                    str(files),
                    size(unzipped),
                    size(zipped),
                ]
            )
        print(table(["artifact", "files", "unzipped", "zipped (deflate)"], rows))
        print("MB = 1,048,576 bytes, as Lambda's size limits count them.")
        layer = build / "CommonLayer" / "python"
        if layer.is_dir():
            packages = sorted(layer.iterdir(), key=lambda p: -_tree_size(p))
            print("\nlargest top-level entries of the layer (python/):")
            print(
                table(
                    ["entry", "unzipped", "share"],
                    [
                        [
                            p.name,
                            f"{_tree_size(p) / MB:.2f} MB",
                            f"{_tree_size(p) / layer_bytes:.0%}",
                        ]
                        for p in packages[:10]
                    ],
                )
            )
            files = sorted(
                (p for p in layer.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size
            )
            print(
                "largest files: "
                + ", ".join(
                    f"{p.relative_to(layer).as_posix()} {p.stat().st_size / MB:.2f} MB"
                    for p in files[:5]
                )
            )
            info = sum(_tree_size(p) for p in layer.glob("*.dist-info"))
            pyc = sum(1 for _ in layer.rglob("*.pyc"))
            print(f"*.dist-info total {info / MB:.2f} MB; .pyc files in the layer: {pyc}")
        targets.append(
            Target(
                "layer size",
                layer_bytes < 10 * MB,
                f"{layer_bytes / MB:.2f} MB unzipped",
                "< 10 MB",
            )
        )


# -- 5. local stack throughput -------------------------------------------------------------


def _stripe_bodies(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    from partnero_bridge.stripe.signature import SIGNATURE_HEADER, sign

    template = json.loads(
        (EVENTS / "stripe" / "checkout.session.completed.payment.json").read_text()
    )
    tag = uuid.uuid4().hex[:8]
    bodies = []
    for index in range(count):
        event = copy.deepcopy(template)
        event["id"] = f"evt_bench{tag}{index}"
        session = event["data"]["object"]
        session["id"] = f"cs_test_bench{tag}{index}"
        session["payment_intent"] = f"pi_bench{tag}{index}"
        raw = json.dumps(event, separators=(",", ":")).encode()
        headers = {SIGNATURE_HEADER: sign(secret, raw), "content-type": "application/json"}
        bodies.append((raw, headers))
    return bodies


def section_throughput(args: argparse.Namespace) -> None:
    heading("5. Local stack throughput (partnero-bridge run, built-in fakes)")
    import httpx

    from partnero_bridge_cli.local.stack import DEMO_STRIPE_SECRET
    from tests.support.local_stack import RunningStack

    started = time.perf_counter()
    try:
        stack = RunningStack({"BRIDGE_CONCURRENCY": str(args.stack_concurrency)})
    except AssertionError as exc:
        print(f"skipped: the local stack did not start ({str(exc).splitlines()[0]})")
        return
    print(f"stack ready in {time.perf_counter() - started:.1f} s", flush=True)
    ports = [stack.port, stack.aws_port, stack.sandbox_port, stack.ecwid_port, stack.shop_port]
    rows: list[list[str]] = []
    problems: list[str] = []
    try:
        warmup = _stripe_bodies(args.clients * 2, DEMO_STRIPE_SECRET)
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            for raw, headers in warmup:
                client.post("/webhooks/stripe", content=raw, headers=headers)
        for clients, count in ((1, args.sequential), (args.clients, args.requests)):
            if count <= 0:
                continue
            bodies = _stripe_bodies(count, DEMO_STRIPE_SECRET)
            latencies, statuses, wall = _drive(stack.url, bodies, clients)
            ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
            cut = (
                statistics.quantiles(latencies, n=100, method="inclusive")
                if len(latencies) >= 2
                else [0.0] * 99
            )
            rows.append(
                [
                    str(len(latencies)),
                    str(clients),
                    str(ok),
                    str(len(latencies) - ok),
                    f"{len(latencies) / wall:.0f}",
                    f"{statistics.median(latencies) * 1000:.1f} ms",
                    f"{cut[98] * 1000:.1f} ms",
                    f"{max(latencies) * 1000:.1f} ms",
                ]
            )
            if ok != len(latencies):
                problems.append(
                    f"{clients} client(s): "
                    + ", ".join(f"{s or 'error'} x{n}" for s, n in sorted(statuses.items()))
                )
    finally:
        code = stack.stop()
    leftovers = _left_running(stack.process.pid)
    busy = [p for p in ports if not stack.port_is_free(p)]
    print(table(["requests", "clients", "2xx", "other", "answers/s", "p50", "p99", "max"], rows))
    for problem in problems:
        print(f"ERROR answers other than 2xx, {problem}")
    print(
        "signed Stripe checkout.session.completed events (one-off payments) with unique ids,\n"
        f"sent by client threads in this process after a warm-up; {args.stack_concurrency} worker"
        " processes per ingest function\n(one per process function, whose poller invokes one"
        " batch at a time). A local figure: a Python\nThreadingHTTPServer gateway invokes"
        " worker processes over HTTP, which\nqueue to a moto server, while the queue pollers"
        " process the same events on the same cores.\nIt says nothing about API Gateway +"
        " Lambda."
    )
    state = "stopped cleanly" if code == 0 else f"stopped with exit code {code}"
    print(
        f"stack {state}; processes left in its group: {leftovers or 'none'}; "
        f"ports still in use: {busy or 'none'}"
    )
    if leftovers or busy or problems:
        raise BenchError("the local stack left processes or ports behind, or refused requests")


def _drive(
    url: str, bodies: Sequence[tuple[bytes, dict[str, str]]], clients: int
) -> tuple[list[float], Counter[int], float]:
    """POST every body with ``clients`` threads; latencies, statuses and wall time."""
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def send() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                raw, headers = bodies[index]
                sent = time.perf_counter()
                try:
                    status = client.post("/webhooks/stripe", content=raw, headers=headers)
                    code = status.status_code
                except httpx.HTTPError:
                    code = 0
                elapsed = time.perf_counter() - sent
                with lock:
                    latencies.append(elapsed)
                    statuses[code] += 1

    threads = [threading.Thread(target=send) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - began


def _left_running(pgid: int) -> int:
    """How many processes are left in the stack's process group (it started a session)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return 0
    except PermissionError:
        return 1
    listing = subprocess.run(  # noqa: S603 - fixed arguments
        ["ps", "-o", "pid=", "-g", str(pgid)],  # noqa: S607 - procps
        capture_output=True,
        text=True,
        check=False,
    )
    return len(listing.stdout.split()) or 1


# -- main --------------------------------------------------------------------------------

SECTIONS = ("cold", "warm", "size", "stack", "reconcile")


def section_reconcile(args: argparse.Namespace, targets: list[Target]) -> None:
    """``reconcile`` of a seeded Stripe window against the local fakes (reconcile_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reconcile_bench import TARGET_SECONDS, describe, measure

    heading(f"Reconcile: {args.reconcile_payments} Stripe payments against the local fakes")
    figures = measure(args.reconcile_payments)
    for line in describe(figures):
        print(line)
    limit = TARGET_SECONDS * args.reconcile_payments / 10_000
    targets.append(
        Target(
            f"reconcile {args.reconcile_payments} payments",
            figures.seconds < limit,
            f"{figures.seconds:.0f} s, {sum(figures.calls.values()) / max(figures.payments, 1):.2f}"
            " remote calls a payment",
            f"< {limit:.0f} s",
        )
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and events")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (else 0)"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {SECTIONS}")
    parser.add_argument("--cold-runs", type=int, help="fresh interpreters per figure (7)")
    parser.add_argument("--events", type=int, help="measured events per path (300)")
    parser.add_argument("--warmup", type=int, help="warm-up events per path (30)")
    parser.add_argument("--profile-events", type=int, help="profiled events per path (100)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the events are split in")
    parser.add_argument("--profile-rows", type=int, default=12, help="components shown (12)")
    parser.add_argument("--profile-dir", help="also save each path's cProfile stats here")
    parser.add_argument("--requests", type=int, help="webhooks sent to the local stack (1000)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (8)")
    parser.add_argument("--sequential", type=int, help="requests from one client first (50)")
    parser.add_argument(
        "--stack-concurrency", type=int, default=2, help="workers per ingest function"
    )
    parser.add_argument("--reconcile-payments", type=int, help="Stripe payments reconciled (10000)")
    parser.add_argument("--build-timeout", type=int, default=300)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = (
        {
            "cold_runs": 3,
            "events": 100,
            "warmup": 20,
            "profile_events": 50,
            "requests": 300,
            "sequential": 20,
            "reconcile_payments": 2000,
        }
        if args.quick
        else {
            "cold_runs": 7,
            "events": 300,
            "warmup": 30,
            "profile_events": 100,
            "requests": 1000,
            "sequential": 50,
            "reconcile_payments": 10_000,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    began = time.perf_counter()
    print(
        f"partnero-bridge benchmarks: Python {platform.python_version()} on {platform.machine()}"
        f", {os.cpu_count()} CPUs; Lambda runs arm64, so treat times as relative."
    )
    targets: list[Target] = []
    dep = deployment()

    failed: list[str] = []

    def attempt(name: str, run: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return run()
        except Exception as exc:  # report it, and still run the other sections
            failed.append(name)
            print(f"ERROR section {name} not measured: {type(exc).__name__}: {exc}")
            if not isinstance(exc, BenchError):
                traceback.print_exc()
        finally:
            print(f"({name}: {time.perf_counter() - started:.0f} s)", flush=True)
        return None

    if "cold" in sections:
        attempt("cold start", lambda: section_cold_start(args, dep, targets))
    if "warm" in sections:
        results = attempt("warm overhead", lambda: section_warm(args, dep, targets))
        if results:
            attempt("remote calls", lambda: section_remote_calls(results, targets))
    if "size" in sections:
        attempt("deployment size", lambda: section_size(args, targets))
    if "stack" in sections:
        attempt("local throughput", lambda: section_throughput(args))
    if "reconcile" in sections:
        attempt("reconcile", lambda: section_reconcile(args, targets))

    heading("Targets")
    for target in targets:
        print(target.line())
    missed = sum(1 for t in targets if t.ok is False)
    print(f"\n{missed} of {len(targets)} targets missed; total {time.perf_counter() - began:.0f} s")
    if failed:
        print(f"sections that could not be measured: {', '.join(failed)}")
        return 2
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

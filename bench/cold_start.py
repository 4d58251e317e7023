"""1. Cold start: each handler module imported in a fresh interpreter with its function's
template environment, tracing on (as deployed), next to ``python -c pass`` and ``import
boto3``; ``-X importtime`` of the slowest handler points at the causes."""

from __future__ import annotations

import compileall
import importlib.metadata as metadata
import os
import pkgutil
import py_compile
import re
import shutil
import site
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import LAYER_DIR, Deployment, Target, heading, ms, run_python, table

# What the Lambda python3.13 runtime ships besides the standard library.
RUNTIME = {"boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six", "jmespath"}
TIMED = "import time; t=time.perf_counter(); import {}; print(time.perf_counter()-t)"
IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")
MODES = ("venv", "lambda", "shipped")


def layer_requirements() -> list[str]:
    lines = (LAYER_DIR / "requirements.txt").read_text().splitlines()
    names = (re.split(r"[=<>~!\[ #]", line.strip(), maxsplit=1)[0] for line in lines)
    return [name for name in names if name]


def hidden_packages() -> set[str]:
    """Installed in this venv, but neither in the layer nor in the Lambda runtime."""
    allowed = {"partnero_bridge"}
    for name in layer_requirements():
        files = metadata.distribution(name).files or []
        allowed |= {f.parts[0].split(".")[0] for f in files if f.parts[0] not in ("..", "bin")}
    found = {m.name for d in site.getsitepackages() for m in pkgutil.iter_modules([d])}
    # Packaging machinery (editable-install finders) is not an import the handler makes.
    found = {n for n in found if not n.startswith(("__editable__", "_distutils_hack"))}
    return found - allowed - RUNTIME - set(sys.stdlib_module_names)


def hide_snippet(hidden: set[str]) -> str:
    """Code that makes hidden packages unimportable, as they are on Lambda."""
    return (
        "import sys\nclass _LambdaLike:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {sorted(hidden)!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _LambdaLike())\n"
    )


def handler_module(spec: Any) -> str:
    """The module a function's Handler names (``ingest`` for ``ingest.handler``)."""
    return str(spec.handler).rpartition(".")[0]


def shipped_copy(target: Path, specs: list[Any]) -> tuple[Path, dict[str, Path]]:
    """The layer and function code as Lambda gets them (see layers/common/Makefile):
    third-party packages (this venv's) as bytecode only, partnero_bridge and the functions'
    code as source."""
    layer = target / "opt" / "python"
    for name in layer_requirements():
        dist = metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if file.parts[0] not in ("..", "bin") and source.suffix != ".pyc" and source.is_file():
                (layer / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, layer / file)
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    compileall.compile_dir(str(layer), quiet=1, legacy=True, invalidation_mode=mode)
    for source in layer.rglob("*.py"):
        source.unlink()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(LAYER_DIR / "partnero_bridge", layer / "partnero_bridge", ignore=ignore)
    tasks = {s.logical_id: target / "task" / s.logical_id for s in specs}
    for spec in specs:  # each function gets its whole CodeUri
        shutil.copytree(spec.code_dir, tasks[spec.logical_id], ignore=ignore)
    return layer, tasks


def timed(module: str, env: dict[str, str], cwd: Path, prefix: str = "") -> float:
    return float(run_python(["-c", prefix + TIMED.format(module)], env, cwd).stdout.split()[-1])


def measure(runs: int, dep: Deployment, hidden: set[str]) -> dict[str, float]:
    """Median import times, runs interleaved so that drift hits every figure alike."""
    specs, lambda_like = list(dep.stack.functions.values()), hide_snippet(hidden)
    env, cwd = dep.envs[specs[0].logical_id], specs[0].code_dir
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-shipped-") as tmp:
        layer, tasks = shipped_copy(Path(tmp), specs)
        for _ in range(runs):
            started = time.perf_counter()
            run_python(["-c", "pass"], env, cwd)
            figures = {
                "bare": time.perf_counter() - started,
                "boto3 venv": timed("boto3", env, cwd),
                "boto3 lambda": timed("boto3", env, cwd, lambda_like),
            }
            for spec in specs:
                own, task, name = dep.envs[spec.logical_id], tasks[spec.logical_id], spec.logical_id
                # Like read-only /var/task and /opt: nothing compiled is kept between runs.
                shipped = {**own, "LAMBDA_TASK_ROOT": str(task), "PYTHONDONTWRITEBYTECODE": "1"}
                shipped["PYTHONPATH"] = os.pathsep.join([str(task), str(layer)])
                ways = [(own, spec.code_dir, ""), (own, spec.code_dir, lambda_like)]
                for mode, way in zip(MODES, [*ways, (shipped, task, lambda_like)], strict=True):
                    figures[f"{name} {mode}"] = timed(handler_module(spec), *way)
            for key, value in figures.items():
                times.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in times.items()}


def section(args: Any, dep: Deployment, targets: list[Target]) -> None:
    heading("1. Cold start: handler import in a fresh interpreter")
    hidden = hidden_packages()
    med, specs = measure(args.cold_runs, dep, hidden), list(dep.stack.functions.values())
    boto = (med["boto3 venv"], med["boto3 lambda"], med["boto3 lambda"])
    rows = [
        ["python -c pass (wall, whole process)", ms(med["bare"]), "", "", "", "", ""],
        ["import boto3", ms(boto[0]), "1.00x", ms(boto[1]), "1.00x", "(runtime)", ""],
    ]
    for spec in specs:
        figures = [med[f"{spec.logical_id} {m}"] for m in MODES]
        cells = [c for f, b in zip(figures, boto, strict=True) for c in (ms(f), f"{f / b:.2f}x")]
        rows.append([f"import {handler_module(spec)} ({spec.code_dir.name})", *cells])
    print(f"median of {args.cold_runs} fresh interpreters; function environments from the template")
    print(
        table(["what", "venv", "/ boto3", "Lambda-like", "/ boto3", "as shipped", "/ boto3"], rows)
    )
    print(
        "venv: this venv as is. Lambda-like: the packages that neither the layer nor the Lambda\n"
        f"runtime ship ({len(hidden)} in this venv) made unimportable. As shipped: Lambda-like,"
        " with the\nlayer as its build makes it (third-party code as bytecode only) and bytecode"
        " caching off,\nas /opt and /var/task are read-only on Lambda."
    )
    slowest = max(specs, key=lambda s: med[f"{s.logical_id} venv"])
    explain(slowest, dep.envs[slowest.logical_id])
    for spec in specs:
        venv, name = (
            med[f"{spec.logical_id} venv"],
            f"cold start {spec.code_dir.name} {handler_module(spec)}",
        )
        # An ingest function answers a sender who waits; a process function imports its
        # processing (idempotency, and with it boto3) at once, since every batch needs it.
        limit, ratio = (0.300, 2) if spec.routes else (0.500, 3)
        targets.append(Target(f"{name}: handler import", venv < limit, ms(venv), f"< {ms(limit)}"))
        measured = f"{venv / boto[0]:.2f}x ({ms(venv)} / {ms(boto[0])})"
        targets.append(
            Target(f"{name}: import / boto3", venv < ratio * boto[0], measured, f"< {ratio}x")
        )


def explain(spec: Any, env: dict[str, str]) -> None:
    """``-X importtime`` of a handler: the 10 heaviest imports, and self time by package."""
    module = handler_module(spec)
    stderr = run_python(["-X", "importtime", "-c", f"import {module}"], env, spec.code_dir).stderr
    lines = [m for m in map(IMPORTTIME.match, stderr.splitlines()) if m]
    # Children are printed before their importer: what importing the handler caused is the
    # run of lines that ends with the handler's own (site's start-up imports come first).
    end = next(i for i, m in enumerate(lines) if m.group(4) == module and len(m.group(3)) <= 1)
    start = max((i + 1 for i, m in enumerate(lines[:end]) if len(m.group(3)) <= 1), default=0)
    entries = lines[start : end + 1]
    top = sorted(entries[:-1], key=lambda m: -int(m.group(2)))[:10]
    total = int(entries[-1].group(2)) / 1000
    print(f"\n-X importtime of {spec.code_dir.name}/{module}.py ({total:.0f} ms), top 10:")
    rows = [
        [m.group(3)[1:] + m.group(4), *(f"{int(m[g]) / 1000:.1f} ms" for g in (2, 1))] for m in top
    ]
    print(table(["module (indent = import depth)", "cumulative", "self"], rows))
    by_package: Counter[str] = Counter()
    for m in entries:
        root = m.group(4).partition(".")[0]
        by_package["stdlib" if root in sys.stdlib_module_names else root] += int(m.group(1))
    print(
        "self time by package: "
        + ", ".join(f"{n} {v / 1000:.0f} ms" for n, v in by_package.most_common(8))
    )

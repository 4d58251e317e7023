"""2 and 3. Warm overhead (the bridge's CPU per event) and remote calls per event, from
``bench.worker`` run once per source with tracing on (as deployed) and once with it off.

pyperf's statistics (median, median absolute deviation) summarise the CPU figures, and
``--pyperf-json`` saves them for ``python -m pyperf compare_to``. pyperf's Runner is not
used: it spawns 20 calibrated processes per benchmark and repeats one callable, while each
event here must be new (idempotency keys on it) and a worker needs a moto stack of its own;
6 paths x 20 processes would take many minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyperf

from bench.common import (
    PATHS,
    ROOT,
    SOURCES,
    BenchError,
    Target,
    heading,
    per_event,
    run_python,
    table,
    us,
)

CHUNK = 10  # events per pyperf value: a value is the mean bridge CPU of 10 events
NOTE = """CPU = time.process_time() per invocation after a warm-up; handler and fakes: means.
bridge = handler CPU minus the fakes' (moto answering, timed by botocore's before-send hooks,
and the HTTP fakes): botocore's and httpx's own work is the bridge's, as on Lambda; pyperf
median +- MAD of means of {} events. Tracing on as deployed (X-Ray datagrams to a local
sink); untraced = POWERTOOLS_TRACE_DISABLED=1. Floor = signature check + JSON parse + model
validation of the same payload. Logs and metrics (stdout) go to a file."""


def run_worker(source: str, args: Any, **env: str) -> dict[str, Any]:
    profile_dir = str(Path(args.profile_dir).resolve()) if args.profile_dir else ""
    counts = {"warmup": args.warmup, "events": args.events, "profile_events": args.profile_events}
    config = {"source": source, **counts, "env": env, "profile_dir": profile_dir}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        run_python(["-m", "bench.worker", json.dumps(config), str(out)], clean, ROOT, 900)
        return dict(json.loads(out.read_text()))


def benchmark(name: str, path: dict[str, Any]) -> pyperf.Benchmark:
    bridge = [c - f for c, f in zip(path["cpu"], path["fake_cpu"], strict=True)]
    values = [statistics.fmean(bridge[i : i + CHUNK]) for i in range(0, len(bridge), CHUNK)]
    meta = {"name": name, "unit": "second"}
    return pyperf.Benchmark([pyperf.Run(values, metadata=meta, collect_metadata=False)])


def section(args: Any, targets: list[Target]) -> dict[str, Any]:
    heading("2. Warm overhead: CPU per event, AWS on moto, Partnero/Ecwid/Stripe in-process")
    results, untraced = {}, {}
    for source in SOURCES:
        started = time.perf_counter()
        results[source] = run_worker(source, args)
        # The same again with tracing off, to show what Tracing: Active costs per event.
        untraced[source] = run_worker(source, args, POWERTOOLS_TRACE_DISABLED="1")
        print(f"  {source}: measured in {time.perf_counter() - started:.1f} s", flush=True)
    rows, problems, suite = [], [], []
    for source, (_, _, label) in SOURCES.items():
        for path in PATHS:
            r, name = results[source][path], f"{source}-{path}"
            bench, plain = benchmark(name, r), benchmark(f"{name}-untraced", untraced[source][path])
            suite += [bench, plain]
            bridge, floor, spread = bench.median(), r["floor"], us(bench.median_abs_dev())
            cpu, fake = us(statistics.fmean(r["cpu"])), us(statistics.fmean(r["fake_cpu"]))
            figures = [f"{us(bridge)} +-{spread}", us(plain.median()), us(floor)]
            rows.append(
                [f"{label} {path}", len(r["cpu"]), cpu, fake, *figures, f"{bridge / floor:.1f}x"]
            )
            problems += [f"{label} {path}: {p}" for p in r["errors"]]
            measured = f"{us(bridge)} us = {bridge / floor:.1f}x floor {us(floor)} us"
            targets.append(
                Target(f"warm overhead {label} {path}", bridge < 3 * floor, measured, "< 3x floor")
            )
    headers = ["path (fresh ids per event)", "events", "handler CPU us", "in fakes us", "bridge us"]
    print(table([*headers, "(untraced)", "floor us", "bridge/floor"], rows))
    print(NOTE.format(CHUNK))
    if args.pyperf_json:
        pyperf.BenchmarkSuite(suite).dump(args.pyperf_json, replace=True)
        print(f"pyperf figures saved to {args.pyperf_json} (python -m pyperf compare_to A B)")
    for source in (k for k, r in results.items() if not r["xray_datagrams"]):
        print(f"note: no X-Ray datagram seen for {source} (tracing may be off)")
    print("\n".join(f"ERROR {p}" for p in problems))
    print_profile(results, args.profile_rows, args.profile_events)
    if problems:
        raise BenchError("the happy path failed (see ERROR lines): figures are not valid")
    return results


def print_profile(results: dict[str, Any], rows: int, events: int) -> None:
    print(
        f"where the bridge's CPU goes: cProfile self time over {events} more events per path"
        " (the fakes\nnot profiled); the profiler inflates small calls: compare shares, not times."
    )
    columns = {f"{s} {p}": results[s][p]["profile"] for s in SOURCES for p in PATHS}
    names = {name for shares in columns.values() for name in shares}
    ranked = sorted(names, key=lambda n: -max(s.get(n, 0) for s in columns.values()))[:rows]
    lines = [[n, *(f"{s.get(n, 0):.0%}" for s in columns.values())] for n in ranked]
    print(table(["component", *columns], lines))


def _sum(calls: dict[str, float], prefix: str) -> float:
    return sum(n for name, n in calls.items() if name.startswith(prefix))


BUDGETS = {  # source -> what its process function may call per event
    "ecwid": {"ecwid GET orders by id": 1, "ecwid GET profile": 0, "partnero": 1, "dynamodb": 4},
    "stripe": {"stripe": 2, "partnero": 1, "dynamodb": 4},
    "signup": {"partnero": 1, "dynamodb": 3},
}


def remote_calls(results: dict[str, Any], targets: list[Target]) -> None:
    heading("3. Remote calls per event on the happy path (botocore's hooks and the HTTP fakes)")
    services = ("dynamodb", "sqs", "partnero", "ecwid", "stripe", "secretsmanager")
    paths = [
        (f"{label} {p}", results[s][p]["calls"])
        for s, (*_, label) in SOURCES.items()
        for p in PATHS
    ]
    rows = [[name, *(per_event(_sum(calls, s)) for s in services)] for name, calls in paths]
    print(table(["path", "DynamoDB", "SQS", "Partnero", "Ecwid", "Stripe", "Secrets Mgr"], rows))
    print("per event, averaged over the measured events (secrets: after the first read, cached).")
    print("\nwhich calls (per event):")
    for name, calls in paths:
        print(f"  {name}: " + ", ".join(f"{c} x{per_event(n)}" for c, n in sorted(calls.items())))
    for source, limits in BUDGETS.items():
        measured = {key: _sum(results[source]["process"]["calls"], key) for key in limits}
        ok = all(measured[key] <= limit + 1e-9 for key, limit in limits.items())
        text = ", ".join(f"{per_event(measured[k])} {k}" for k in limits)
        limit = "<= " + ", ".join(f"{per_event(n)} {k}" for k, n in limits.items())
        targets.append(Target(f"remote calls {SOURCES[source][2]} (process)", ok, text, limit))

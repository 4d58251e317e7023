"""`make bench` (``python -m bench [--quick] [--only warm]``): cold start, per-event overhead,
remote calls, AWS cost per million events, package size, local throughput, reconciliation.

Prints plain-text tables, then one line per target (``PASS``/``MISS target: measured
(limit)``). Targets are reported, not asserted: the exit status is 0 even on a MISS unless
``--strict`` is given. One module per section; the warm one's ``worker`` runs apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from bench import cold_start, cost, reconcile, size, throughput, warm
from bench.common import BenchError, Target, deployment, heading

SECTIONS = ("cold", "warm", "size", "stack", "reconcile")
OPTIONS = {  # option: (help, full run, --quick)
    "cold-runs": ("fresh interpreters per figure", 7, 3),
    "events": ("measured events per path", 300, 100),
    "warmup": ("warm-up events per path", 30, 20),
    "profile-events": ("profiled events per path", 100, 50),
    "profile-rows": ("components shown", 12, 12),
    "requests": ("webhooks sent to the local stack", 1000, 300),
    "clients": ("client threads", 8, 8),
    "sequential": ("requests from one client first", 50, 20),
    "stack-concurrency": ("workers per ingest function", 2, 2),
    "reconcile-payments": ("Stripe payments reconciled", 10_000, 2000),
    "build-timeout": ("seconds sam build may take", 300, 300),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and events")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"of {SECTIONS} (warm: + cost)")
    parser.add_argument("--profile-dir", help="also save each path's cProfile stats here")
    parser.add_argument("--pyperf-json", help="save the warm CPU figures as a pyperf suite")
    for option, (text, full, quick) in OPTIONS.items():
        parser.add_argument(f"--{option}", type=int, help=f"{text} ({full}; --quick {quick})")
    args = parser.parse_args(argv)
    for option, (_text, full, quick) in OPTIONS.items():
        name = option.replace("-", "_")
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def attempt(failed: list[str], name: str, section: Callable[[], Any]) -> Any:
    """Run a section; one that fails is reported and the others still run."""
    started = time.perf_counter()
    try:
        return section()
    except Exception as exc:
        failed.append(name)
        print(f"ERROR section {name} not measured: {type(exc).__name__}: {exc}")
        if not isinstance(exc, BenchError):
            traceback.print_exc()
        return None
    finally:
        print(f"({name}: {time.perf_counter() - started:.0f} s)", flush=True)


def run_sections(args: argparse.Namespace, only: set[str], targets: list[Target]) -> list[str]:
    failed: list[str] = []
    dep = deployment()
    runs: list[tuple[str, str, Callable[[], Any]]] = [
        ("cold", "cold start", lambda: cold_start.section(args, dep, targets)),
        ("size", "deployment size", lambda: size.section(args, targets)),
        ("stack", "local throughput", lambda: throughput.section(args)),
        ("reconcile", "reconcile", lambda: reconcile.section(args, targets)),
    ]
    if "cold" in only:
        attempt(failed, *runs[0][1:])
    results = (
        attempt(failed, "warm overhead", lambda: warm.section(args, targets))
        if "warm" in only
        else None
    )
    if results:
        attempt(failed, "remote calls", lambda: warm.remote_calls(results, targets))
        attempt(failed, "AWS cost", lambda: cost.section(results, dep.stack))
    for key, name, section in runs[1:]:
        if key in only:
            attempt(failed, name, section)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    args, began, targets = parse_args(argv), time.perf_counter(), list[Target]()
    print(
        f"partnero-bridge benchmarks: Python {platform.python_version()} on {platform.machine()}"
        f", {os.cpu_count()} CPUs; Lambda runs arm64, so treat times as relative."
    )
    failed = run_sections(args, {s.strip() for s in args.only.split(",")}, targets)
    heading("Targets")
    print("\n".join(target.line() for target in targets))
    missed = sum(1 for t in targets if t.ok is False)
    print(f"\n{missed} of {len(targets)} targets missed; total {time.perf_counter() - began:.0f} s")
    if failed:
        print(f"sections that could not be measured: {', '.join(failed)}")
        return 2
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

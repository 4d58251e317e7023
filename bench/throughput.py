"""5. Throughput of the local stack (``partnero-bridge run``) for signed Stripe webhooks."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from typing import Any

from bench.common import EVENTS, BenchError, heading, table

NOTE = """signed Stripe checkout.session.completed events (one-off payments) with unique ids, sent
by client threads in this process after a warm-up; {} worker processes per ingest function
(one per process function, whose poller invokes one batch at a time). A local figure: the
local gateway invokes worker processes over HTTP, which queue to a moto server, while the
queue pollers process the same events on the same cores. It says nothing of API Gateway."""


def stripe_bodies(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    from partnero_bridge.stripe.signature import SIGNATURE_HEADER, sign

    text = (EVENTS / "stripe" / "checkout.session.completed.payment.json").read_text()
    tag, bodies = uuid.uuid4().hex[:8], []
    for index in range(count):
        event = json.loads(text)
        session, event["id"] = event["data"]["object"], f"evt_bench{tag}{index}"
        session["id"], session["payment_intent"] = f"cs_test_{tag}{index}", f"pi_{tag}{index}"
        raw = json.dumps(event, separators=(",", ":")).encode()
        bodies.append(
            (raw, {SIGNATURE_HEADER: sign(secret, raw), "content-type": "application/json"})
        )
    return bodies


def drive(url: str, bodies: list[Any], clients: int) -> list[Any]:
    """POST every body with ``clients`` threads: a row of the table, and the statuses."""
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock, cursor = threading.Lock(), iter(bodies)

    def send() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while (body := next(cursor, None)) is not None:
                sent = time.perf_counter()
                try:
                    code = client.post(
                        "/webhooks/stripe", content=body[0], headers=body[1]
                    ).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    latencies.append(time.perf_counter() - sent)
                    statuses[code] += 1

    threads = [threading.Thread(target=send) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, ok = time.perf_counter() - began, sum(n for s, n in statuses.items() if 200 <= s < 300)
    cut = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [0] * 99
    )
    figures = [
        f"{v * 1000:.1f} ms" for v in (statistics.median(latencies), cut[98], max(latencies))
    ]
    return [
        len(latencies),
        clients,
        ok,
        len(latencies) - ok,
        f"{len(latencies) / wall:.0f}",
        *figures,
        statuses,
    ]


def left_running(pgid: int) -> int:
    """How many processes are left in the stack's process group (it started a session)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return 0
    except PermissionError:
        return 1
    command = ["ps", "-o", "pid=", "-g", str(pgid)]
    listing = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    return len(listing.stdout.split()) or 1


def section(args: Any) -> None:
    heading("5. Local stack throughput (partnero-bridge run, built-in fakes)")
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
    rows: list[list[Any]] = []
    try:
        drive(stack.url, stripe_bodies(args.clients * 2, DEMO_STRIPE_SECRET), args.clients)
        for clients, count in ((1, args.sequential), (args.clients, args.requests)):
            if count > 0:
                rows.append(drive(stack.url, stripe_bodies(count, DEMO_STRIPE_SECRET), clients))
    finally:
        code = stack.stop()
    leftovers, busy = (
        left_running(stack.process.pid),
        [p for p in ports if not stack.port_is_free(p)],
    )
    print(
        table(
            ["requests", "clients", "2xx", "other", "answers/s", "p50", "p99", "max"],
            [r[:-1] for r in rows],
        )
    )
    problems = [r for r in rows if r[3]]
    for r in problems:
        print(
            f"ERROR answers other than 2xx, {r[1]} client(s): "
            + ", ".join(f"{s or 'error'} x{n}" for s, n in sorted(r[-1].items()))
        )
    print(NOTE.format(args.stack_concurrency))
    state = "stopped cleanly" if code == 0 else f"stopped with exit code {code}"
    left = f"processes left in its group: {leftovers or 'none'}"
    print(f"stack {state}; {left}; ports still in use: {busy or 'none'}")
    if leftovers or busy or problems:
        raise BenchError("the local stack left processes or ports behind, or refused requests")

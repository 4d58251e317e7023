"""Reconciling a whole source: the paced clients, every configured Ecwid store, the cost.

Shared by ``partnero-bridge reconcile`` and a scheduled reconciliation: give it the
settings of the source's process function (its ledger table, secrets, API URLs, rules and
work queue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from partnero_bridge.errors import ConfigurationError
from partnero_bridge.ledger.checkpoints import Checkpoints
from partnero_bridge.reconcile.pacing import (
    DEFAULT_SHARE,
    PacedTransport,
    bearer_token,
    ecwid_rate,
    stripe_rate,
)
from partnero_bridge.reconcile.run import Progress, Report, reconcile
from partnero_bridge.runtime import Runtime

if TYPE_CHECKING:
    from partnero_bridge.config import BridgeSettings
    from partnero_bridge.reconcile.compare import Finding

SourceName = Literal["stripe", "ecwid"]


@dataclass
class Meters:
    """The paced transports of a runtime, and a count of its DynamoDB requests."""

    transports: dict[str, PacedTransport]
    dynamodb: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_dynamodb(self, **_: Any) -> None:
        with self._lock:
            self.dynamodb += 1

    def calls(self) -> dict[str, int]:
        """Requests sent so far, per service (``dynamodb`` included)."""
        found = {name: t.calls for name, t in self.transports.items() if t.calls}
        if self.dynamodb:
            found["dynamodb"] = self.dynamodb
        return found


def paced_runtime(settings: BridgeSettings, share: float = DEFAULT_SHARE) -> tuple[Runtime, Meters]:
    """A runtime whose Stripe and Ecwid requests keep to ``share`` (0-1; 0: unpaced) of
    each API's rate limit, every client waiting out 429s, every request counted (its
    DynamoDB requests through botocore's event hooks)."""
    meters = Meters(
        {
            "stripe": PacedTransport(stripe_rate(settings.stripe_livemode, share)),
            "ecwid": PacedTransport(ecwid_rate(share), pacer_key=bearer_token),
            # Partnero publishes no limit: unpaced, its 429s waited out all the same.
            "partnero": PacedTransport(None),
        }
    )
    runtime = Runtime(settings, transports=meters.transports)
    runtime.dynamodb.meta.events.register("before-call.dynamodb", meters.count_dynamodb)
    return runtime, meters


def reconcile_source(
    runtime: Runtime,
    meters: Meters,
    source: SourceName,
    since: int,
    until: int | None,
    *,
    stores: Sequence[str] = (),
    apply: bool = False,
    restart: bool = False,
    workers: int = 4,
    on_progress: Callable[[Progress], None] = lambda _progress: None,
    clock: Callable[[], float] = time.time,
    heal_only: Callable[[Finding], bool] | None = None,
) -> Report:
    """Reconcile ``source`` over ``[since, until]`` (Unix seconds; ``until`` None: now):
    Stripe's account, or each Ecwid store of ``stores`` (default: every configured one),
    one resumable run each (see ``reconcile.run``); ``heal_only`` narrows what ``apply``
    heals (see ``reconcile.run.reconcile``).

    Raises ConfigurationError for an Ecwid store without a token or none configured, and
    what a run raises (``RunStopped`` when a remote keeps failing).
    """
    started = time.perf_counter()
    checkpoints = Checkpoints(runtime.dynamodb, runtime.settings.ledger_table)
    # Built here, once: the comparing threads would otherwise race to build them.
    _ = runtime.ledger, runtime.partnero, runtime.secrets
    if apply:
        _ = runtime.sqs
    report = Report(source=source, since=since, until=until)
    windows = _windows(runtime, source, stores, int(clock()))
    try:
        for window in windows:
            report.runs.append(
                reconcile(
                    window,
                    since,
                    until,
                    checkpoints,
                    apply=apply,
                    restart=restart,
                    workers=workers,
                    on_progress=on_progress,
                    clock=clock,
                    heal_only=heal_only,
                )
            )
    finally:
        report.calls = meters.calls()
        report.seconds = time.perf_counter() - started
    return report


def _windows(runtime: Runtime, source: SourceName, stores: Sequence[str], now: int) -> list[Any]:
    """What one run each lists: Stripe's account, or each Ecwid store (``stores``, default
    every configured one) with its token."""
    if source == "stripe":
        from partnero_bridge.reconcile.stripe_window import StripeWindow

        return [StripeWindow(runtime, now)]
    from partnero_bridge.ecwid.secrets import ecwid_store_tokens
    from partnero_bridge.reconcile.ecwid_window import EcwidWindow

    wanted = list(stores) or list(runtime.settings.ecwid_store_ids)
    if not wanted:
        raise ConfigurationError("no Ecwid store is configured (ECWID_STORE_IDS)")
    tokens = ecwid_store_tokens(runtime)
    windows: list[Any] = []
    for store in wanted:
        token = tokens.get(str(store))
        if not token:
            raise ConfigurationError(f"store {store} has no token in the Ecwid API secret")
        windows.append(EcwidWindow(runtime, runtime.ecwid, str(store), token))
    return windows

"""Field cases (``../shared/cases/*.json``): a small typed model of the files and one generic
replayer that sends any case to the running local stack and checks what Partnero holds after.

The case format and the replay rules are the cases directory's README; how each rule is
carried out here:

* Steps go in order, each over HTTP to the bridge's route for its kind, signed as the source
  signs: Ecwid ``X-Ecwid-Webhook-Signature`` with the stack's client secret, over an
  ``eventCreated`` re-stamped with the time of sending (``eventId`` kept); Stripe
  ``Stripe-Signature`` over the exact bytes sent; a sign-up as a server call (no ``Origin``),
  signed with ``X-Partnero-Bridge-Signature`` when the replayer is given the sign-up secret.
  Every step must be answered 2xx, as a source expects.
* Before an Ecwid step the fake Ecwid serves the step's ``order`` for its store, or answers 404
  for it when ``order`` is null (a step without ``order`` leaves the fake as it was).
* After every step the replayer waits until the bridge is quiet: no visible, in-flight or
  delayed message on any work queue, several readings in a row. A message being retried is
  hidden, not gone, so "quiet" also means "done retrying".
* ``Replay: ...`` in ``what`` is read clause by clause (split at ``,``, ``;``, a full stop and
  "then"). Understood: "deliver step N" / "send step N" (names the step the next clauses are
  about), "wait until the bridge stops retrying [it | step N]" (the quiet wait after that step
  may last the whole retry budget, ``retry_timeout``, instead of ``quiet_timeout``) and "wait
  N seconds|minutes [after step N]" (an extra pause). Anything else fails the case with a
  clear message rather than being guessed at.
* Partner keys are valid unless a case says otherwise: the sandbox accepts every partner key
  while a case runs, and goes back to its own list after.
* Before a Stripe step, the fake Stripe API loads the step's event and its ``stripe_objects``
  (:meth:`FakeStripeApi.load_event`: the objects the event carries become visible, the newest
  snapshot by the event's ``created`` winning, and a ``stripe_objects`` entry is served only
  until some event carries its id); it answers in the bridge's pinned version, converting
  objects carried in older ones.
* Expected: for each transaction key K, the live (neither deleted nor archived) transactions
  whose key is K or K followed by ``_r<digits>`` (a re-created transaction): their number and
  the total of their amounts (``amount: null`` with ``count: 0``: none live). ``customers``:
  how many customers the sandbox holds. After the case every dead-letter queue is empty.
* Isolation: before a case the replayer waits for quiet, purges the dead-letter queues and
  resets the sandbox, the fake Ecwid's orders and the fake Stripe API's objects; after it, it
  purges the dead-letter queues and forgets the orders and Stripe objects again, so a failing
  case leaves nothing behind for the next test. The bridge's own tables (ledger, idempotency)
  are left alone: the stack lives for the whole e2e session, so two cases must not share an
  event id or a transaction key (a test checks).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import httpx

from partnero_bridge.ecwid import signature as ecwid_signature
from partnero_bridge.signup import signature as signup_signature
from partnero_bridge.stripe import signature as stripe_signature
from partnero_bridge_cli.dlq import DeadLetter, QueuePair, Tools, peek, purge, queue_pairs
from partnero_bridge_cli.local.ecwid import FakeEcwid
from partnero_bridge_cli.local.fakeapp import dumps
from partnero_bridge_cli.local.sandbox import PartneroSandbox
from partnero_bridge_cli.local.stripe_api import FakeStripeApi
from partnero_bridge_cli.queue_scan import Polling
from partnero_bridge_cli.send import ROUTES, Source
from tests.support.local_stack import ROOT, RunningStack

CASES_DIR_VARIABLE = "BRIDGE_CASES_DIR"
# moto answers a receive from every message at once: short polling reads a DLQ whole.
_QUICK_SCAN = Tools(polling=Polling(wait_seconds=0, empty_polls=1))
SOURCES: tuple[Source, ...] = get_args(Source)
_QUEUE_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def cases_dir() -> Path:
    """``$BRIDGE_CASES_DIR``, else ``shared/cases`` next to the repository."""
    override = os.environ.get(CASES_DIR_VARIABLE)
    return Path(override) if override else ROOT.parent / "shared" / "cases"


def case_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


class CaseError(ValueError):
    """A case file the replayer cannot read or follow (not a fault of the bridge)."""


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: Source
    event: Mapping[str, Any]
    order: Mapping[str, Any] | None = None
    """Ecwid: the order the Ecwid API serves from this step on; None with ``order_given``: 404."""
    order_given: bool = False
    stripe_objects: tuple[Mapping[str, Any], ...] = ()

    @property
    def label(self) -> str:
        name = self.event.get("eventType") or self.event.get("type") or "request"
        about = self.ecwid_order_id() if self.kind == "ecwid" else self.event.get("id")
        return f"{self.kind} {name}" + (f" ({about})" if about else "")

    @property
    def ecwid_store(self) -> int | str:
        store: int | str = self.event["storeId"]
        return store

    def ecwid_order_id(self) -> str | None:
        data = self.event.get("data")
        named = data.get("orderId") if isinstance(data, Mapping) else None
        named = named if named is not None else self.event.get("entityId")
        return None if named is None else str(named)


@dataclass(frozen=True)
class Expected:
    count: int
    amount: Decimal | None

    def __str__(self) -> str:
        return f"{self.count} live" + ("" if self.amount is None else f", amount {self.amount}")


@dataclass
class Pause:
    """What the replay instruction asks for after one step."""

    until_retries_stop: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class FieldCase:
    name: str
    what: str
    kind: str
    steps: tuple[Step, ...]
    transactions: Mapping[str, Expected]
    customers: int | None = None
    pauses: Mapping[int, Pause] = field(default_factory=dict)
    """By step number (1-based), from ``Replay: ...`` in ``what``."""

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(step.kind for step in self.steps)

    @property
    def event_ids(self) -> frozenset[str]:
        """The Ecwid and Stripe event ids the steps carry."""
        named = (step.event.get("eventId") or step.event.get("id") for step in self.steps)
        return frozenset(str(n) for n in named if n)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CaseError(f"{what} must be a JSON object")
    return value


def _step(raw: Any, number: int) -> Step:
    data = _mapping(raw, f"step {number}")
    kind = data.get("kind")
    if kind not in SOURCES:
        raise CaseError(f"step {number}: kind must be one of {', '.join(SOURCES)}, not {kind!r}")
    order = data.get("order")
    if order is not None:
        order = _mapping(order, f"step {number}: order")
    objects = data.get("stripe_objects") or []
    if not isinstance(objects, list):
        raise CaseError(f"step {number}: stripe_objects must be a list")
    event = _mapping(data.get("event"), f"step {number}: event")
    if kind == "ecwid" and not (
        isinstance(event.get("eventId"), str) and isinstance(event.get("storeId"), int | str)
    ):
        raise CaseError(f"step {number}: an Ecwid webhook needs an eventId and a storeId")
    return Step(
        kind=kind,
        event=event,
        order=order,
        order_given="order" in data,
        stripe_objects=tuple(_mapping(o, f"step {number}: a stripe object") for o in objects),
    )


def _expected(key: str, raw: Any) -> Expected:
    data = _mapping(raw, f"expect.transactions.{key}")
    count, amount = data.get("count"), data.get("amount")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CaseError(f"expect.transactions.{key}.count must be a whole number")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | Decimal)):
        raise CaseError(f"expect.transactions.{key}.amount must be a number or null")
    return Expected(count, None if amount is None else Decimal(amount))


def load_case(path: Path) -> FieldCase:
    """Read one case file; ``CaseError`` naming the file if it does not follow the format."""
    try:
        raw = _mapping(json.loads(path.read_text(), parse_float=Decimal), "a case")
        steps = raw.get("steps")
        if not isinstance(steps, list) or not steps:
            raise CaseError("steps must be a non-empty list")
        expect = _mapping(raw.get("expect"), "expect")
        transactions = _mapping(expect.get("transactions") or {}, "expect.transactions")
        customers = expect.get("customers")
        if customers is not None and (
            isinstance(customers, bool) or not isinstance(customers, int)
        ):
            raise CaseError("expect.customers must be a whole number")
        what = str(raw.get("what", ""))
        return FieldCase(
            name=path.stem,
            what=what,
            kind=str(raw.get("kind", "")),
            steps=tuple(_step(step, n) for n, step in enumerate(steps, 1)),
            transactions={key: _expected(key, value) for key, value in transactions.items()},
            customers=customers,
            pauses=replay_pauses(what, len(steps)),
        )
    except (CaseError, ValueError) as error:
        raise CaseError(f"{path.name}: {error}") from None


# --------------------------------------------------------------------------------------------
# "Replay: ..." instructions
# --------------------------------------------------------------------------------------------

_REPLAY = re.compile(r"\breplay:(?P<text>.*)", re.IGNORECASE | re.DOTALL)
_CLAUSES = re.compile(r"[,;]|\.(?=\s|$)|\bthen\b", re.IGNORECASE)
_DELIVER = re.compile(r"(?:deliver|send)\s+step\s+(\d+)")
_STOP_RETRYING = re.compile(
    r"(?:wait|pause)\b.*\bstop(?:s|ped)?\s+retrying(?:\s+it|\s+step\s+(\d+))?"
)
_SLEEP = re.compile(
    r"(?:wait|pause)\s+(?:for\s+)?(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m)"
    r"(?:\s+after\s+step\s+(\d+))?"
)


def replay_pauses(what: str, step_count: int) -> dict[int, Pause]:
    """The pauses a ``Replay: ...`` sentence asks for, by step number."""
    found = _REPLAY.search(what)
    if found is None:
        return {}
    pauses: dict[int, Pause] = {}
    current: int | None = None

    def step_number(text: str | None) -> int:
        number = int(text) if text else current
        if number is None or not 1 <= number <= step_count:
            raise CaseError(f"the replay instruction names no step of this case: {what!r}")
        return number

    for clause in (c.strip().lower() for c in _CLAUSES.split(found.group("text"))):
        if not clause:
            continue
        if match := _DELIVER.fullmatch(clause):
            current = step_number(match.group(1))
        elif match := _STOP_RETRYING.fullmatch(clause):
            pauses.setdefault(step_number(match.group(1)), Pause()).until_retries_stop = True
        elif match := _SLEEP.fullmatch(clause):
            seconds = float(match.group(1)) * (60 if match.group(2).startswith("m") else 1)
            pauses.setdefault(step_number(match.group(3)), Pause()).seconds += seconds
        else:
            raise CaseError(
                f"unsupported replay instruction {clause!r}; the replayer understands "
                "'deliver step N', 'wait until the bridge stops retrying [it | step N]' and "
                "'wait N seconds [after step N]'"
            )
    return pauses


# --------------------------------------------------------------------------------------------
# The replayer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentStep:
    number: int
    step: Step
    status: int
    answer: str


@dataclass
class Replayer:
    """Replays field cases against the e2e session's stack and its fakes."""

    stack: RunningStack
    partnero: PartneroSandbox
    ecwid: FakeEcwid
    ecwid_client_secret: str
    stripe_secret: str
    signup_secret: str | None = None
    stripe_api: FakeStripeApi | None = None
    """Serves each Stripe step's objects; without it they are not served at all."""
    quiet_timeout: float = 30.0
    retry_timeout: float = 90.0
    quiet_readings: int = 3
    _sqs: Any = field(init=False, repr=False)
    _queues: list[QueuePair] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sqs = self.stack.aws("sqs")
        self._queues = queue_pairs(self._sqs, None, lambda: None, list(SOURCES))

    # ---- one case --------------------------------------------------------------------------

    def run(self, case: FieldCase) -> None:
        """Replay the case; ``AssertionError`` with a readable report if Partnero disagrees."""
        with self._isolated():
            sent = self.replay(case)
            problems = self.problems(case, sent)
            if problems:
                raise AssertionError(self.report(case, sent, problems))

    def replay(self, case: FieldCase) -> list[SentStep]:
        sent: list[SentStep] = []
        with self.partnero.any_partner_accepted():
            for number, step in enumerate(case.steps, 1):
                answer = self.send(step)
                sent.append(SentStep(number, step, answer.status_code, answer.text[:300]))
                pause = case.pauses.get(number, Pause())
                timeout = self.retry_timeout if pause.until_retries_stop else self.quiet_timeout
                self.wait_until_quiet(timeout, f"step {number} ({step.label})")
                if pause.seconds:
                    time.sleep(pause.seconds)
                    self.wait_until_quiet(self.quiet_timeout, f"the pause after step {number}")
        return sent

    @contextlib.contextmanager
    def _isolated(self) -> Iterator[None]:
        self.wait_until_quiet(self.retry_timeout, "what earlier tests left on the queues")
        self.purge_dead_letters()
        self.partnero.reset()
        self.ecwid.reset()
        if self.stripe_api is not None:
            self.stripe_api.reset()
        try:
            yield
        finally:
            self.purge_dead_letters()
            self.ecwid.reset()
            if self.stripe_api is not None:
                self.stripe_api.reset()

    # ---- sending ---------------------------------------------------------------------------

    def send(self, step: Step) -> httpx.Response:
        """POST one step to the bridge as its source would: the exact bytes, signed."""
        event = dict(step.event)
        headers = {"content-type": "application/json"}
        if step.kind == "ecwid":
            self.serve_order(step)
            event["eventCreated"] = int(time.time())  # a fresh event, as Ecwid would send it
            headers[ecwid_signature.SIGNATURE_HEADER] = ecwid_signature.expected_signature(
                self.ecwid_client_secret, event["eventCreated"], event["eventId"]
            )
        raw = dumps(event).encode()
        if step.kind == "stripe":
            if self.stripe_api is not None:
                self.stripe_api.load_event(event, step.stripe_objects)
            headers[stripe_signature.SIGNATURE_HEADER] = stripe_signature.sign(
                self.stripe_secret, raw
            )
        elif step.kind == "signup" and self.signup_secret:
            headers[signup_signature.SIGNATURE_HEADER] = signup_signature.sign(
                self.signup_secret, raw
            )
        return self.stack.http.post(ROUTES[step.kind], content=raw, headers=headers)

    def serve_order(self, step: Step) -> None:
        """Make the fake Ecwid serve the step's order, or answer 404 for it."""
        if not step.order_given:
            return
        store, order_id = step.ecwid_store, step.ecwid_order_id()
        try:
            if step.order is not None:
                self.ecwid.put_order(store, step.order)
            elif order_id is not None and self.ecwid.order(store, order_id) is not None:
                self.ecwid.delete_order(store, order_id)
        except KeyError:
            pass  # a store the fake does not know: the bridge has no token for it either

    # ---- the queues ------------------------------------------------------------------------

    def work_queue_depths(self) -> dict[str, int]:
        """Visible, in-flight and delayed messages on each source's work queue."""
        depths = {}
        for pair in self._queues:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=pair.work_url, AttributeNames=_QUEUE_ATTRIBUTES
            )["Attributes"]
            depths[pair.source] = sum(int(attributes.get(name, 0)) for name in _QUEUE_ATTRIBUTES)
        return depths

    def wait_until_quiet(self, timeout: float, after: str) -> None:
        """Until no work queue holds a visible, in-flight or delayed message, several readings
        in a row (a retried message is hidden, so this also waits out the retries)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < self.quiet_readings:
            depths = self.work_queue_depths()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the bridge was still busy {timeout:.0f}s after {after}: "
                    f"messages per work queue {depths}"
                )
            quiet = quiet + 1 if not any(depths.values()) else 0
            time.sleep(0.2)

    def dead_letters(self) -> list[DeadLetter]:
        return [
            letter for pair in self._queues for letter in peek(self._sqs, pair, _QUICK_SCAN).letters
        ]

    def purge_dead_letters(self) -> None:
        for pair in self._queues:
            purge(self._sqs, pair, None, _QUICK_SCAN)

    # ---- checking --------------------------------------------------------------------------

    def live(self, key: str) -> list[dict[str, Any]]:
        pattern = re.compile(re.escape(key) + r"(?:_r\d+)?")
        return [
            t
            for t in self.partnero.transactions(include_deleted=False)
            if not t.get("archived") and pattern.fullmatch(str(t.get("key")))
        ]

    def problems(self, case: FieldCase, sent: list[SentStep]) -> list[str]:
        problems = [
            f"step {s.number} ({s.step.label}) was answered {s.status}: {s.answer}"
            for s in sent
            if not 200 <= s.status < 300
        ]
        for key, expected in case.transactions.items():
            amounts = [Decimal(str(t["amount"])) for t in self.live(key)]
            found = Expected(len(amounts), sum(amounts, Decimal(0)) if amounts else None)
            if found != expected:
                problems.append(f"{key}: expected {expected}; Partnero holds {found}")
        if case.customers is not None:
            held = len(self.partnero.customers())
            if held != case.customers:
                problems.append(f"customers: expected {case.customers}; Partnero holds {held}")
        problems += [
            f"dead letter on {d.source}: {d.delivery_id} ({d.error_kind}): {d.error}"
            for d in self.dead_letters()
        ]
        return problems

    def report(self, case: FieldCase, sent: list[SentStep], problems: list[str]) -> str:
        lines = [f"field case {case.name}: {case.kind}", f"  what: {case.what}", "  problems:"]
        lines += [f"    - {problem}" for problem in problems]
        lines.append("  steps sent:")
        lines += [f"    {s.number}. {s.step.label} -> {s.status}" for s in sent]
        lines.append("  Partnero received:")
        lines += [
            f"    {r.method} {r.path} -> {r.status} {'' if r.body is None else dumps(r.body)}"
            for r in self.partnero.requests()
        ] or ["    nothing"]
        lines.append("  Partnero holds:")
        lines += [
            f"    {t['key']} {t['amount']} {t.get('amount_units') or ''} "
            f"customer={t['customer']['key']} "
            f"{'deleted' if t['deleted'] else 'archived' if t.get('archived') else 'live'}"
            for t in self.partnero.transactions()
        ] or ["    no transactions"]
        lines += [
            f"    customer {c['key']} partner={c['partner']['key']}"
            for c in self.partnero.customers()
        ]
        return "\n".join(lines)

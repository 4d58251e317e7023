"""Local stand-in for Partnero's REST API, used by the local stack and the tests.

The real Partnero API cannot be reached from a developer machine or CI (it needs a live program
and its API key, and every call would create real customers and commissions), so the bridge is
pointed at this sandbox instead (``PARTNERO_API_URL=<sandbox.url>``). It follows Partnero's
documented behaviour as summarised for this project:

* ``Authorization: Bearer <api key>`` on every ``/v1`` call, ``401 {"message": "Unauthenticated."}``
  otherwise;
* success envelope ``{"data": ..., "status": 1}``, lists add ``links`` and ``meta``;
* ``400 {"message": "Invalid partner key"}`` for an unknown partner, Laravel-style ``422``
  validation errors (including a duplicate customer key);
* transaction keys are NOT enforced unique: the same key twice creates two transactions (the
  trap the bridge must guard against), and deleting by key deletes all of them;
* amounts are kept exactly as the JSON text gave them (``decimal.Decimal``, never ``float``);
* every transaction carries its partner's rewards. Partnero names the reward states (created,
  approved, paid) but documents no JSON shape for them, so the sandbox keeps it simple: one
  reward per transaction, ``{"id", "amount", "status", "paid_at"}``, its amount the program's
  rate (20 % unless set) of the transaction's amount, or the amount itself when
  ``amount_units`` is ``"reward"``; ``status`` goes ``pending`` -> ``approved`` -> ``paid``
  only when driven through the admin interface (a partner's payout is not the bridge's doing).

On top of the API it offers an admin interface under ``/_sandbox`` (no auth) so another process
can read and drive it: ``state``, ``requests``, ``reset``, ``faults``, ``partners``;
``settings`` (``{"accept_any_partner": bool, "reward_rate": number}``); ``POST
transactions/<key>/rewards/approve`` and ``.../rewards/pay`` (for every live transaction with
that key); ``deliveries`` (what became of each delivery the local stack took in, when the
sandbox runs inside it: see :meth:`PartneroSandbox.show_deliveries`). It also injects faults
(error statuses with ``Retry-After``, hangs, connection resets, malformed bodies, and answers
lost after Partnero accepted the request) so retries and idempotency can be exercised.

Run it in the foreground with::

    python -m partnero_bridge_cli.local.sandbox --port 4010 --api-key K --partner demo-partner
"""

import argparse
import contextlib
import copy
import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

from partnero_bridge_cli.local.fakeserver import (
    NO_ANSWER_STATUS,
    Answer,
    FakeApi,
    FakeHandler,
    FakeService,
    Fault,
    RecordedRequest,
    loads,
    message_answer,
    phrase,
    segments,
    serve_until_signalled,
)

__all__ = ["NO_ANSWER_STATUS", "Fault", "PartneroSandbox", "RecordedRequest", "main"]

API_PREFIX: Final = "/v1"
_PAGE = Path(__file__).with_name("pages") / "sandbox.html"
ADMIN_PREFIX: Final = "/_sandbox"

_DEFAULT_PAGE_SIZE: Final = 10
_DEFAULT_TRANSACTION_PAGE_SIZE: Final = 15
_MAX_PAGE_SIZE: Final = 250
_MAX_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY_RE: Final = re.compile(r"^[A-Za-z]{3}$")
DEFAULT_REWARD_RATE: Final = Decimal("0.20")
_CENT: Final = Decimal("0.01")
_REWARD_STEPS: Final[Mapping[str, str]] = {"approve": "approved", "pay": "paid"}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_from_timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# Errors, answers and validation
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def answer(self) -> Answer:
        payload: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            payload["errors"] = self.errors
        return Answer(self.status, payload, dict(self.headers))


def _ok(data: Any) -> Answer:
    return Answer(200, {"data": copy.deepcopy(data), "status": 1})


def _ok_empty() -> Answer:
    return Answer(200, {"status": 1})


class _Errors:
    """Collects Laravel-style validation errors: ``{"field": ["message", ...]}``."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.items.setdefault(name, []).append(message)

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def raise_if_any(self) -> None:
        if not self.items:
            return
        messages = [message for group in self.items.values() for message in group]
        more = len(messages) - 1
        text = messages[0]
        if more:
            text += f" (and {more} more error{'s' if more > 1 else ''})"
        raise _ApiError(422, text, errors=self.items)


def _as_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _ApiError(
            422,
            "The request body must be a JSON object.",
            errors={"body": ["The request body must be a JSON object."]},
        )
    return body


def _opt_str(
    errs: _Errors, data: Mapping[str, Any], name: str, label: str, max_len: int = 255
) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errs.add(label, f"The {label} field must be a string.")
        return None
    if len(value) > max_len:
        errs.add(label, f"The {label} field must not be greater than {max_len} characters.")
        return None
    return value


def _req_str(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    if data.get(name) is None or data.get(name) == "":
        errs.add(label, f"The {label} field is required.")
        return None
    return _opt_str(errs, data, name, label)


def _opt_email(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    value = _opt_str(errs, data, name, label)
    if value is not None and not _EMAIL_RE.match(value):
        errs.add(label, f"The {label} field must be a valid email address.")
        return None
    return value


def _opt_str_or_int(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> str | None:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _opt_str(errs, data, name, label)


def _opt_object(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.add(label, f"The {label} field must be an array.")
        return {}
    return value


def _opt_tags(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errs.add(label, f"The {label} field must be an array.")
        return []
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            errs.add(f"{label}.{index}", f"The {label}.{index} field must be a string.")
        else:
            tags.append(tag)
    return tags


def _opt_bool(errs: _Errors, data: Mapping[str, Any], name: str, label: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return value in (1, "1")
    errs.add(label, f"The {label} field must be true or false.")
    return False


def _amount(errs: _Errors, value: Any) -> int | Decimal | None:
    """A required number, kept exactly: ``int`` stays ``int``, anything else a ``Decimal``."""
    if value is None or value == "":
        errs.add("amount", "The amount field is required.")
        return None
    if isinstance(value, bool):
        errs.add("amount", "The amount field must be a number.")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):  # not produced by _loads; kept for direct callers
        value = Decimal(repr(value))
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            errs.add("amount", "The amount field must be a number.")
            return None
    if not isinstance(value, Decimal) or not value.is_finite():
        errs.add("amount", "The amount field must be a number.")
        return None
    return value


def _opt_units(errs: _Errors, data: Mapping[str, Any]) -> str | None:
    value = _opt_str(errs, data, "amount_units", "amount_units")
    if value is not None and value != "reward" and not _CURRENCY_RE.match(value):
        errs.add("amount_units", "The amount_units field must be a 3-letter currency code.")
        return None
    return value


def _opt_timestamp(errs: _Errors, data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errs.add(name, f"The {name} field must be an integer.")
        return None
    if not 0 <= value <= _MAX_TIMESTAMP:
        errs.add(name, f"The {name} field must be a valid Unix timestamp.")
        return None
    return value


def _partner_ref(errs: _Errors, value: Any, label: str) -> tuple[str, str] | None:
    """Validate a partner reference ``{key | id | email}``; return ``(kind, value)``."""
    if value is None:
        errs.add(label, f"The {label} field is required.")
        return None
    if not isinstance(value, dict):
        errs.add(label, f"The {label} field must be an array.")
        return None
    for kind in ("key", "id", "email"):
        item = value.get(kind)
        if item is None or item == "":
            continue
        if kind == "id" and isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            errs.add(f"{label}.{kind}", f"The {label}.{kind} field must be a string.")
            return None
        return kind, item
    errs.add(
        f"{label}.key",
        f"The {label}.key field is required when none of {label}.id / {label}.email are present.",
    )
    return None


# --------------------------------------------------------------------------------------------
# The API state and its routes
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    params: list[str]
    query: dict[str, str]
    body: Any
    path: str


_Route = Callable[[_Call], Answer]


class _Api(FakeApi):
    """All sandbox state, guarded by one lock, and the request handling that works on it."""

    api_prefix: ClassVar[str] = API_PREFIX
    admin_prefix: ClassVar[str] = ADMIN_PREFIX
    label: ClassVar[str] = "sandbox"
    fault_fields_first: ClassVar[bool] = True
    # The local stack's delivery feed, for the page; None when the sandbox runs on its own.
    delivery_feed: Callable[[], Any] | None = None

    def __init__(
        self,
        api_key: str,
        partners: Iterable[str],
        accept_any_partner: bool = False,
        reward_rate: Decimal | int | str = DEFAULT_REWARD_RATE,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.partners: list[str] = []
        for partner in partners:
            self.add_partner(partner)
        self.accept_any_partner = False
        self.reward_rate = DEFAULT_REWARD_RATE
        self.update_settings({"accept_any_partner": accept_any_partner, "reward_rate": reward_rate})
        self.customers: dict[str, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.rewards_created = 0
        any_key = "*"
        self.routes: list[tuple[tuple[str, ...], dict[str, _Route]]] = [
            (("test",), {"GET": self.test}),
            (("customers",), {"GET": self.list_customers, "POST": self.create_customer}),
            (("customers:search",), {"GET": self.search_customers}),
            (
                ("customers", any_key),
                {
                    "GET": self.get_customer,
                    "PUT": self.update_customer,
                    "DELETE": self.delete_customer,
                },
            ),
            (("customers", any_key, "transactions"), {"GET": self.customer_transactions}),
            (("customers", any_key, "archive"), {"POST": self.archive_customer}),
            (
                ("transactions",),
                {
                    "GET": self.list_transactions,
                    "POST": self.create_transaction,
                    "DELETE": self.delete_transaction_by_body,
                },
            ),
            (
                ("transactions", any_key),
                {"GET": self.get_transaction, "DELETE": self.delete_transaction_by_path},
            ),
            (("transactions", any_key, "archive"), {"POST": self.archive_transaction}),
            (("transactions", any_key, "revoke-archive"), {"POST": self.revoke_archive}),
        ]

    # ---- state management (also used by the Python API) ----------------------------------

    def add_partner(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("a partner key must be a non-empty string")
        with self.lock:
            if key not in self.partners:
                self.partners.append(key)

    def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change ``accept_any_partner`` and/or ``reward_rate``; ``ValueError`` if invalid."""
        unknown = sorted(set(changes) - {"accept_any_partner", "reward_rate"})
        if unknown:
            raise ValueError(f"Unknown setting(s): {', '.join(unknown)}")
        accept = changes.get("accept_any_partner", self.accept_any_partner)
        if not isinstance(accept, bool):
            raise ValueError("accept_any_partner must be true or false")
        rate = changes.get("reward_rate", self.reward_rate)
        if isinstance(rate, bool) or not isinstance(rate, int | str | Decimal):
            raise ValueError("reward_rate must be a number between 0 and 1")
        try:
            rate = Decimal(rate)
        except InvalidOperation:
            raise ValueError("reward_rate must be a number between 0 and 1") from None
        if not (rate.is_finite() and 0 <= rate <= 1):
            raise ValueError("reward_rate must be a number between 0 and 1")
        with self.lock:
            self.accept_any_partner, self.reward_rate = accept, rate
            return self.settings()

    def settings(self) -> dict[str, Any]:
        return {"accept_any_partner": self.accept_any_partner, "reward_rate": self.reward_rate}

    def move_rewards(self, key: str, step: str) -> list[dict[str, Any]]:
        """Approve (``step="approve"``) or pay (``"pay"``) the rewards of every live transaction
        with this key; ``KeyError`` if there is none. A paid reward stays paid."""
        status = _REWARD_STEPS[step]
        with self.lock:
            matches = self.live_transactions(key)
            if not matches:
                raise KeyError(f"No live transaction with key {key}")
            now = _now_iso()
            for transaction in matches:
                for reward in transaction["rewards"]:
                    if reward["status"] == "paid":
                        continue
                    reward["status"] = status
                    if status == "paid":
                        reward["paid_at"] = now
            return copy.deepcopy(matches)

    def new_reward(self, amount: int | Decimal, units: str | None) -> dict[str, Any]:
        """The partner's reward for a new transaction, still to be approved and paid."""
        self.rewards_created += 1
        if units == "reward":  # the caller set the commission itself
            value: int | Decimal = amount
        else:
            value = (Decimal(amount) * self.reward_rate).quantize(_CENT, ROUND_HALF_UP)
        return {
            "id": f"rwd_{self.rewards_created}",
            "amount": value,
            "status": "pending",
            "paid_at": None,
        }

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.customers = {}
            self.transactions = []
            self.rewards_created = 0

    def customer_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.customers.values()))

    def transaction_list(self, include_deleted: bool) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(
                [t for t in self.transactions if include_deleted or not t["deleted"]]
            )

    # ---- admin interface -------------------------------------------------------------------

    def html_page(self, path: str) -> bytes | None:
        # The page people watch while webhooks turn into commissions.
        if path in ("/", ADMIN_PREFIX, f"{ADMIN_PREFIX}/"):
            return _PAGE.read_bytes()
        return None

    def admin_parts(self, rest: str) -> list[str]:
        # The sandbox matches its one-segment admin endpoints literally, without percent-decoding;
        # only the rewards endpoints have a transaction key (percent-decoded) in their path.
        name = rest.strip("/")
        if name.startswith("transactions/"):
            return segments(name)
        return [name] if name else []

    def admin_methods(self, parts: list[str]) -> tuple[str, ...] | None:
        if parts == ["partners"]:
            return ("GET", "POST")
        if parts == ["settings"]:
            return ("GET", "PUT")
        if parts == ["deliveries"]:
            return ("GET",)
        if (
            len(parts) == 4
            and parts[0] == "transactions"
            and parts[1]
            and parts[2] == "rewards"
            and parts[3] in _REWARD_STEPS
        ):
            return ("POST",)
        return super().admin_methods(parts)

    def admin_route(self, method: str, parts: list[str], body: Any) -> Answer:
        if parts[0] == "transactions":
            return Answer(200, {"transactions": self.move_rewards(parts[1], parts[3])})
        if parts == ["deliveries"]:
            feed = self.delivery_feed
            return Answer(200, {"available": True, **feed()} if feed else {"available": False})
        if parts == ["settings"]:
            if method == "PUT":
                if not isinstance(body, dict):
                    raise ValueError('Expected {"accept_any_partner": true, "reward_rate": 0.2}')
                self.update_settings(body)
            return Answer(200, self.settings())
        if parts != ["partners"]:
            return super().admin_route(method, parts, body)
        if method == "POST":
            key = body.get("key") if isinstance(body, dict) else None
            if not isinstance(key, str) or not key:
                return message_answer(400, 'Expected {"key": "<partner key>"}')
            self.add_partner(key)
        return Answer(200, {"partners": list(self.partners)})

    def admin_state(self) -> Any:
        return {
            "customers": self.customer_list(),
            "transactions": self.transaction_list(include_deleted=True),
            "partners": list(self.partners),
            "settings": self.settings(),
        }

    # ---- error shapes ----------------------------------------------------------------------

    def fault_answer(self, status: int) -> Answer:
        message = "Too Many Attempts." if status == 429 else phrase(status, "Sandbox fault")
        return Answer(status, {"message": message})

    def protocol_error(self, status: int, message: str | None) -> Any:
        return {"message": message or phrase(status, "Error")}

    # ---- API entry point -------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes
    ) -> Answer:
        with self.lock:
            try:
                if not self.is_api_path(path):
                    raise _ApiError(404, f"The route {path.lstrip('/') or '/'} could not be found.")
                self.authenticate(headers)
                route, params = self.resolve(method, path)
                try:
                    body = loads(raw) if raw.strip() else None
                except (ValueError, UnicodeDecodeError, RecursionError):
                    raise _ApiError(400, "Malformed JSON") from None
                return route(_Call(params=params, query=query, body=body, path=path))
            except _ApiError as error:
                return error.answer()

    def authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )
        if not valid:
            raise _ApiError(401, "Unauthenticated.")

    def resolve(self, method: str, path: str) -> tuple[_Route, list[str]]:
        parts = segments(path[len(API_PREFIX) :])
        for pattern, methods in self.routes:
            if len(pattern) != len(parts):
                continue
            params: list[str] = []
            for expected, actual in zip(pattern, parts, strict=True):
                if expected == "*" and actual:
                    params.append(actual)
                elif expected != actual:
                    break
            else:
                if method in methods:
                    return methods[method], params
                if method == "HEAD" and "GET" in methods:  # like Laravel: HEAD follows GET
                    return methods["GET"], params
                supported = ", ".join(methods)
                raise _ApiError(
                    405,
                    f"The {method} method is not supported for route {path.lstrip('/')}. "
                    f"Supported methods: {supported}.",
                    headers={"Allow": supported},
                )
        raise _ApiError(404, f"The route {path.lstrip('/') or '/'} could not be found.")

    # ---- helpers ---------------------------------------------------------------------------

    def resolve_partner(self, ref: tuple[str, str]) -> str:
        """Return the partner key for a reference, or fail with 400 like Partnero does.

        Partners only have keys in the sandbox; a partner id is treated as its key and a
        partner email never matches. With ``accept_any_partner`` every key or id is valid.
        """
        kind, value = ref
        if kind in {"key", "id"} and (self.accept_any_partner or value in self.partners):
            return value
        raise _ApiError(400, f"Invalid partner {kind}")

    def store_customer(
        self,
        key: str,
        partner_key: str,
        email: str | None = None,
        name: str | None = None,
        surname: str | None = None,
        tags: list[str] | None = None,
        referral_url: str | None = None,
    ) -> dict[str, Any]:
        customer: dict[str, Any] = {
            "key": key,
            "email": email,
            "name": name,
            "surname": surname,
            "tags": list(tags or []),
            "partner": {"key": partner_key},
            "referral_url": referral_url,
            "archived": False,
            "created_at": _now_iso(),
        }
        self.customers[key] = customer
        return customer

    def find_customer(self, key: str | None, email: str | None) -> dict[str, Any] | None:
        if key is not None:
            return self.customers.get(key)
        if email is not None:
            for customer in self.customers.values():
                if customer["email"] is not None and customer["email"].lower() == email.lower():
                    return customer
        return None

    def customer_or_404(self, key: str) -> dict[str, Any]:
        customer = self.customers.get(key)
        if customer is None:
            raise _ApiError(404, "Customer not found")
        return customer

    def live_transactions(self, key: str) -> list[dict[str, Any]]:
        return [t for t in self.transactions if t["key"] == key and not t["deleted"]]

    def page(
        self, items: list[dict[str, Any]], call: _Call, default_limit: int = _DEFAULT_PAGE_SIZE
    ) -> Answer:
        limit = self.query_int(call.query, "limit", default_limit, 1, _MAX_PAGE_SIZE)
        page = self.query_int(call.query, "page", 1, 1, 10**9)
        total = len(items)
        last_page = max(1, -(-total // limit))
        start = (page - 1) * limit
        chunk = items[start : start + limit]
        base = f"{self.root_url}{call.path}"

        def link(number: int) -> str:
            return f"{base}?{urlencode({**call.query, 'page': str(number)})}"

        return Answer(
            200,
            {
                "data": copy.deepcopy(chunk),
                "links": {
                    "first": link(1),
                    "last": link(last_page),
                    "prev": link(page - 1) if page > 1 else None,
                    "next": link(page + 1) if page < last_page else None,
                },
                "meta": {
                    "current_page": page,
                    "from": start + 1 if chunk else None,
                    "last_page": last_page,
                    "path": base,
                    "per_page": limit,
                    "to": start + len(chunk) if chunk else None,
                    "total": total,
                },
                "status": 1,
            },
        )

    @staticmethod
    def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
        text = query.get(name)
        if text is None or text == "":
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            message = f"The {name} field must be an integer between {low} and {high}."
            raise _ApiError(422, message, errors={name: [message]})
        return int(text)

    # ---- routes ----------------------------------------------------------------------------

    def test(self, call: _Call) -> Answer:
        return _ok_empty()

    def list_customers(self, call: _Call) -> Answer:
        return self.page(list(self.customers.values()), call)

    def search_customers(self, call: _Call) -> Answer:
        email = call.query.get("email")
        if not email:
            message = "The email field is required."
            raise _ApiError(422, message, errors={"email": [message]})
        found = [
            c
            for c in self.customers.values()
            if c["email"] is not None and c["email"].lower() == email.lower()
        ]
        return self.page(found, call)

    def create_customer(self, call: _Call) -> Answer:
        data = _as_object(call.body)
        errs = _Errors()
        ref = _partner_ref(errs, data.get("partner"), "partner")
        key = _req_str(errs, data, "key", "key")
        email = _opt_email(errs, data, "email", "email")
        name = _opt_str(errs, data, "name", "name")
        surname = _opt_str(errs, data, "surname", "surname")
        tags = _opt_tags(errs, data, "tags", "tags")
        options = _opt_object(errs, data, "options", "options")
        referral_url = _opt_str(errs, options, "referral_url", "options.referral_url", 2048)
        if key is not None and key in self.customers:
            errs.add("key", "Customer with this key already exists")
        errs.raise_if_any()
        assert key is not None
        assert ref is not None
        customer = self.store_customer(
            key=key,
            partner_key=self.resolve_partner(ref),
            email=email,
            name=name,
            surname=surname,
            tags=tags,
            referral_url=referral_url,
        )
        return _ok(customer)

    def get_customer(self, call: _Call) -> Answer:
        return _ok(self.customer_or_404(call.params[0]))

    def update_customer(self, call: _Call) -> Answer:
        customer = self.customer_or_404(call.params[0])
        data = _as_object(call.body)
        errs = _Errors()
        update = data.get("update")
        if not isinstance(update, dict):
            verb = "is required" if update is None else "must be an array"
            errs.add("update", f"The update field {verb}.")
            errs.raise_if_any()
        assert isinstance(update, dict)
        changes: dict[str, Any] = {}
        if "key" in update:
            new_key = _req_str(errs, update, "key", "update.key")
            if new_key is not None and new_key != customer["key"] and new_key in self.customers:
                errs.add("update.key", "Customer with this key already exists")
            changes["key"] = new_key
        if "email" in update:
            changes["email"] = _opt_email(errs, update, "email", "update.email")
        for name in ("name", "surname"):
            if name in update:
                changes[name] = _opt_str(errs, update, name, f"update.{name}")
        if "tags" in update:
            changes["tags"] = _opt_tags(errs, update, "tags", "update.tags")
        if "options" in update:
            options = _opt_object(errs, update, "options", "update.options")
            if "referral_url" in options:
                changes["referral_url"] = _opt_str(
                    errs, options, "referral_url", "update.options.referral_url", 2048
                )
        errs.raise_if_any()
        old_key = customer["key"]
        customer.update(changes)
        if customer["key"] != old_key:
            self.customers = {
                (customer["key"] if k == old_key else k): v for k, v in self.customers.items()
            }
            for transaction in self.transactions:
                if transaction["customer"]["key"] == old_key:
                    transaction["customer"]["key"] = customer["key"]
        return _ok(customer)

    def delete_customer(self, call: _Call) -> Answer:
        key = call.params[0]
        self.customer_or_404(key)
        del self.customers[key]
        now = _now_iso()
        for transaction in self.transactions:
            if transaction["customer"]["key"] == key and not transaction["deleted"]:
                transaction["deleted"] = True
                transaction["deleted_at"] = now
        return _ok_empty()

    def archive_customer(self, call: _Call) -> Answer:
        customer = self.customer_or_404(call.params[0])
        customer["archived"] = True
        return _ok(customer)

    def customer_transactions(self, call: _Call) -> Answer:
        key = self.customer_or_404(call.params[0])["key"]
        items = [t for t in self.transactions if t["customer"]["key"] == key and not t["deleted"]]
        return self.page(items, call)

    def create_transaction(self, call: _Call) -> Answer:
        data = _as_object(call.body)
        errs = _Errors()
        customer_data: dict[str, Any] = {}
        raw_customer = data.get("customer")
        if raw_customer is None:
            errs.add("customer", "The customer field is required.")
        elif not isinstance(raw_customer, dict):
            errs.add("customer", "The customer field must be an array.")
        else:
            customer_data = raw_customer
        customer_key = _opt_str(errs, customer_data, "key", "customer.key")
        customer_email = _opt_email(errs, customer_data, "email", "customer.email")
        customer_name = _opt_str(errs, customer_data, "name", "customer.name")
        customer_surname = _opt_str(errs, customer_data, "surname", "customer.surname")
        if (
            isinstance(raw_customer, dict)
            and customer_key is None
            and customer_email is None
            and "customer.key" not in errs
            and "customer.email" not in errs
        ):
            errs.add(
                "customer.key",
                "The customer.key field is required when customer.email is not present.",
            )
        key = _opt_str(errs, data, "key", "key")
        amount = _amount(errs, data.get("amount"))
        amount_units = _opt_units(errs, data)
        action = _opt_str(errs, data, "action", "action")
        product_id = _opt_str_or_int(errs, data, "product_id", "product_id")
        product_type = _opt_str(errs, data, "product_type", "product_type")
        created_at = _opt_timestamp(errs, data, "created_at")
        options = _opt_object(errs, data, "options", "options")
        create = _opt_bool(errs, options, "create_customer", "options.create_customer")
        partner_ref: tuple[str, str] | None = None
        if create:
            # Current docs: customer.partner.key; legacy docs: partner.key at the top level.
            if customer_data.get("partner") is not None:
                partner_ref = _partner_ref(errs, customer_data["partner"], "customer.partner")
            elif data.get("partner") is not None:
                partner_ref = _partner_ref(errs, data["partner"], "partner")
        errs.raise_if_any()
        assert amount is not None

        customer = self.find_customer(customer_key, customer_email)
        if customer is None:
            if not create:
                label = "customer.key" if customer_key is not None else "customer.email"
                raise _ApiError(422, "Customer not found", errors={label: ["Customer not found"]})
            if partner_ref is None:
                message = (
                    "The customer.partner.key field is required when "
                    "options.create_customer is true."
                )
                raise _ApiError(422, message, errors={"customer.partner.key": [message]})
            new_key = customer_key if customer_key is not None else customer_email
            assert new_key is not None
            customer = self.store_customer(
                key=new_key,
                partner_key=self.resolve_partner(partner_ref),
                email=customer_email,
                name=customer_name,
                surname=customer_surname,
            )
        transaction: dict[str, Any] = {
            "key": key,
            "amount": amount,
            "amount_units": amount_units,
            "customer": {"key": customer["key"]},
            "partner": {"key": customer["partner"]["key"]},
            "action": action,
            "product_id": product_id,
            "product_type": product_type,
            "created_at": _iso_from_timestamp(created_at) if created_at is not None else _now_iso(),
            "archived": False,
            "deleted": False,
            "rewards": [self.new_reward(amount, amount_units)],
        }
        self.transactions.append(transaction)
        return _ok(transaction)

    def list_transactions(self, call: _Call) -> Answer:
        """``GET /v1/transactions``: live transactions, oldest first, filtered by ``key``,
        ``customer.key`` and ``partner.key``; ``limit`` 1-250 (default 15) and ``page``
        (developers.partnero.com and docs.partnero.com, "Get a list of transactions")."""
        wanted = {
            name: call.query[name]
            for name in ("key", "customer.key", "partner.key")
            if call.query.get(name) is not None
        }

        def matches(transaction: dict[str, Any]) -> bool:
            held = {
                "key": transaction["key"],
                "customer.key": transaction["customer"]["key"],
                "partner.key": transaction["partner"]["key"],
            }
            return all(held[name] == value for name, value in wanted.items())

        items = [t for t in self.transactions if not t["deleted"] and matches(t)]
        return self.page(items, call, default_limit=_DEFAULT_TRANSACTION_PAGE_SIZE)

    def get_transaction(self, call: _Call) -> Answer:
        matches = self.live_transactions(call.params[0])
        if not matches:
            raise _ApiError(404, "Transaction not found")
        return _ok(matches[0])

    def delete_by_key(self, key: str) -> Answer:
        matches = self.live_transactions(key)
        if not matches:
            raise _ApiError(404, "Transaction not found")
        now = _now_iso()
        for transaction in matches:
            transaction["deleted"] = True
            transaction["deleted_at"] = now
        return _ok_empty()

    def delete_transaction_by_path(self, call: _Call) -> Answer:
        return self.delete_by_key(call.params[0])

    def delete_transaction_by_body(self, call: _Call) -> Answer:
        data = _as_object(call.body)
        errs = _Errors()
        key = _req_str(errs, data, "key", "key")
        errs.raise_if_any()
        assert key is not None
        return self.delete_by_key(key)

    def set_archived(self, key: str, archived: bool) -> Answer:
        matches = self.live_transactions(key)
        if not matches:
            raise _ApiError(404, "Transaction not found")
        for transaction in matches:
            transaction["archived"] = archived
        return _ok(matches[0])

    def archive_transaction(self, call: _Call) -> Answer:
        return self.set_archived(call.params[0], True)

    def revoke_archive(self, call: _Call) -> Answer:
        return self.set_archived(call.params[0], False)


class _Handler(FakeHandler):
    server_version = "PartneroSandbox/1.0"
    allow_nan = True  # as the sandbox always did: a float NaN/infinity goes out as NaN/Infinity


# --------------------------------------------------------------------------------------------
# Public sandbox
# --------------------------------------------------------------------------------------------


class PartneroSandbox(FakeService[_Api]):
    """An in-process fake Partnero API served over HTTP from a daemon thread.

    Its ``url`` (``.../v1``) is the value for ``PARTNERO_API_URL``.

    >>> with PartneroSandbox(api_key="k", partners=["p1"]) as sandbox:  # doctest: +SKIP
    ...     os.environ["PARTNERO_API_URL"] = sandbox.url

    Only ``partners`` are valid partner keys unless ``accept_any_partner`` (then every key is);
    each transaction's reward is ``reward_rate`` of its amount. Both survive :meth:`reset`.
    """

    handler_class = _Handler
    description = "the sandbox"
    thread_name = "partnero-sandbox"

    def __init__(
        self,
        api_key: str = "sandbox-key",
        partners: Iterable[str] = ("demo-partner",),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accept_any_partner: bool = False,
        reward_rate: Decimal | int | str = DEFAULT_REWARD_RATE,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        super().__init__(_Api(api_key, partners, accept_any_partner, reward_rate), host, port)

    @property
    def api_key(self) -> str:
        return self._api.api_key

    # ---- state -----------------------------------------------------------------------------

    def add_partner(self, key: str) -> None:
        self._api.add_partner(key)

    def partners(self) -> list[str]:
        with self._api.lock:
            return list(self._api.partners)

    def customers(self) -> list[dict[str, Any]]:
        return self._api.customer_list()

    def transactions(self, include_deleted: bool = True) -> list[dict[str, Any]]:
        return self._api.transaction_list(include_deleted)

    def reset(self) -> None:
        """Forget customers, transactions, recorded requests and faults."""
        super().reset()

    def show_deliveries(self, feed: Callable[[], Mapping[str, Any]] | None) -> None:
        """Serve ``feed()`` (the local stack's delivery feed: ``{"version", "deliveries":
        [...]}``) at ``GET /_sandbox/deliveries``, for the page; None: no feed."""
        self._api.delivery_feed = feed

    # ---- settings --------------------------------------------------------------------------

    @property
    def accepts_any_partner(self) -> bool:
        return self._api.accept_any_partner

    def set_accept_any_partner(self, enabled: bool) -> None:
        """Accept every partner key (True) or only the known partners (False)."""
        self._api.update_settings({"accept_any_partner": enabled})

    @contextlib.contextmanager
    def any_partner_accepted(self) -> Iterator[None]:
        """Accept every partner key inside the block, then go back to what it was."""
        before = self.accepts_any_partner
        self.set_accept_any_partner(True)
        try:
            yield
        finally:
            self.set_accept_any_partner(before)

    @property
    def reward_rate(self) -> Decimal:
        return self._api.reward_rate

    def set_reward_rate(self, rate: Decimal | int | str) -> None:
        """The share of a transaction's amount its reward gets (0 to 1), for new transactions."""
        self._api.update_settings({"reward_rate": rate})

    # ---- rewards ---------------------------------------------------------------------------

    def approve_rewards(self, key: str) -> list[dict[str, Any]]:
        """Approve the rewards of every live transaction with this key (a paid one stays paid).

        Returns those transactions; ``KeyError`` if there is none.
        """
        return self._api.move_rewards(key, "approve")

    def pay_rewards(self, key: str) -> list[dict[str, Any]]:
        """Mark the rewards of every live transaction with this key paid to the partner (now).

        Returns those transactions; ``KeyError`` if there is none.
        """
        return self._api.move_rewards(key, "pay")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m partnero_bridge_cli.local.sandbox",
        description="Local stand-in for Partnero's REST API (for the local stack and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=4010, help="port to bind (0 = any free port)")
    parser.add_argument("--api-key", default="sandbox-key", help="the accepted Bearer API key")
    parser.add_argument(
        "--partner",
        action="append",
        dest="partners",
        metavar="KEY",
        help="a valid partner key (repeatable; default: demo-partner)",
    )
    parser.add_argument(
        "--accept-any-partner", action="store_true", help="treat every partner key as valid"
    )
    args = parser.parse_args(argv)
    partners: list[str] = args.partners or ["demo-partner"]

    sandbox = PartneroSandbox(
        api_key=args.api_key,
        partners=partners,
        host=args.host,
        port=args.port,
        accept_any_partner=args.accept_any_partner,
    )
    details = f"partners: {', '.join(partners)}"
    if args.accept_any_partner:
        details += " (and any other key)"
    return serve_until_signalled(sandbox, "Partnero sandbox", details)


if __name__ == "__main__":
    raise SystemExit(main())

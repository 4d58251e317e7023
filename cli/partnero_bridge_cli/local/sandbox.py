"""Local stand-in for Partnero's REST API (``PARTNERO_API_URL=<sandbox.url>``, ``.../v1``).

Partnero cannot be reached from a developer machine or CI (a live program, its API key, real
commissions), so the bridge talks to this sandbox. It serves what ``partnero_bridge.partnero``
calls, as developers.partnero.com and docs.partnero.com describe it:

* ``Authorization: Bearer <api key>`` on every call, else ``401 {"message":
  "Unauthenticated."}``; success ``{"data": ..., "status": 1}``; lists add ``links`` and
  ``meta`` (``limit`` 1-250, ``page``);
* ``GET test``; ``POST customers``, ``GET customers/{key}``; ``POST transactions``
  (``options.create_customer`` with the partner at ``customer.partner`` or, in older docs, at
  the top level); ``GET transactions`` (oldest first, 15 a page, by ``key``, ``customer.key``,
  ``partner.key``); ``GET`` and ``DELETE transactions/{key}``;
* ``400 {"message": "Invalid partner key"}`` for an unknown partner; Laravel's ``422
  {"message", "errors": {field: [...]}}`` for an invalid body or a duplicate customer key;
* transaction keys are NOT unique: the same key twice makes two transactions (the trap the
  bridge guards against), and deleting by key deletes all; amounts are kept exactly;
* rewards: Partnero names the states (created, approved, paid) but documents no shape, so each
  transaction has one ``{"id", "amount", "status", "paid_at"}``: the rate (20 % unless set) of
  the amount, or the amount when ``amount_units`` is ``"reward"``; ``pending`` until approved
  or paid through the admin interface.

Admin under ``/_sandbox`` (besides :mod:`.fakeapp`'s): ``GET|PUT settings``
(``{"accept_any_partner", "reward_rate"}``), ``POST transactions/<key>/rewards/approve|pay``
and ``GET deliveries`` (the local stack's delivery feed, for the page at ``/``).

Run it in the foreground with::

    python -m partnero_bridge_cli.local.sandbox --port 4010 --api-key K --partner demo-partner
"""

import contextlib
import copy
import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import unquote, urlencode

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
)
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from partnero_bridge_cli.local.fakeapp import (
    NO_ANSWER_STATUS,
    FakeApp,
    FakeService,
    Fault,
    RecordedRequest,
    cli_parser,
    json_response,
    loads,
    phrase,
    serve_until_signalled,
)

__all__ = ["NO_ANSWER_STATUS", "Fault", "PartneroSandbox", "RecordedRequest", "main"]

_PAGE = Path(__file__).with_name("pages") / "sandbox.html"
_MAX_TIMESTAMP: Final = 253402300799  # 9999-12-31T23:59:59Z
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NUMERIC_RE: Final = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
# Partnero documents no bound; these keep every accepted amount storable and its reward
# computable (an amount like 1e400 or 1e-400 is a 422, as any other invalid amount).
_AMOUNT: Final = Field(allow_inf_nan=False, ge=-(10**15), le=10**15, decimal_places=10)
DEFAULT_REWARD_RATE: Final = Decimal("0.20")
_CENT: Final = Decimal("0.01")
_REWARD_STEPS: Final[Mapping[str, str]] = {"approve": "approved", "pay": "paid"}


def _now_iso(seconds: float | None = None) -> str:
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- request bodies and Laravel-style errors -------------------------------------------------


@dataclass
class _Refusal(Exception):
    status: int
    message: str
    errors: dict[str, list[str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(self.status, body, self.headers)


def _invalid(errors: dict[str, list[str]]) -> _Refusal:
    """Laravel's 422: the first message (and how many more) and every message by field."""
    messages = [message for group in errors.values() for message in group]
    more = len(messages) - 1
    text = messages[0] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    return _Refusal(422, text, errors)


# What a pydantic error type says, in Laravel's words ("The <field> field <tail>").
_TAILS: Final[Mapping[str, str]] = {
    kind: tail
    for tail, kinds in {
        "is required.": "missing",
        "must be a string.": "string_type",
        "must not be greater than {max_length} characters.": "string_too_long",
        "must be an array.": "model_type list_type",
        "must be true or false.": "bool_parsing bool_type",
        "must be a number.": "decimal_parsing decimal_type finite_number",
        "must be an integer.": "int_parsing int_type",
        "must be at least {ge}.": "greater_than_equal",
        "must not have more than {decimal_places} decimal places.": "decimal_max_places",
        "must not be greater than {le}.": "less_than_equal",
    }.items()
    for kind in kinds.split()
}


def _laravel(error: ValidationError) -> _Refusal:
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        context = item.get("ctx", {})
        if item["type"] == "value_error":
            tail = str(context["error"])
        elif item.get("input", "") is None:
            tail = "is required."
        else:
            tail = _TAILS.get(item["type"], "is invalid.").format(**context)
        errors.setdefault(name, []).append(f"The {name} field {tail}")
    return _invalid(errors)


def _blank(value: Any) -> Any:
    return None if value == "" else value


def _checked(pattern: re.Pattern[str], tail: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(tail)
        return value

    return AfterValidator(check)


def _default(empty: Any) -> BeforeValidator:
    return BeforeValidator(lambda value: empty if value is None else value)


def _laravel_bool(value: Any) -> Any:
    """Laravel's ``boolean`` rule: only true, false, 1, 0, "1" and "0" (not "yes", "on")."""
    if type(value) is bool or (type(value) in (int, str) and str(value) in ("0", "1")):
        return bool(int(value))
    raise ValueError("must be true or false.")


def _php_number(value: Any) -> Any:
    """Text an amount may be: what PHP's ``is_numeric`` reads (no "1_000", "NaN", "0x10")."""
    if isinstance(value, str) and not _NUMERIC_RE.fullmatch(value):
        raise ValueError("must be a number.")
    return value


_Str = Annotated[str, StringConstraints(max_length=255)]
_Text = Annotated[_Str, BeforeValidator(_blank)]
_OptText = Annotated[_Str | None, BeforeValidator(_blank)]
_Email = Annotated[
    Annotated[_Str, _checked(_EMAIL_RE, "must be a valid email address.")] | None,
    BeforeValidator(_blank),
]
_Units = Annotated[
    Annotated[
        _Str, _checked(re.compile(r"^(reward|[A-Za-z]{3})$"), "must be a 3-letter currency code.")
    ]
    | None,
    BeforeValidator(_blank),
]
_IdText = Annotated[_Str | None, BeforeValidator(lambda v: str(v) if type(v) is int else _blank(v))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Partner(_Body):
    key: _OptText = None
    id: _IdText = None
    email: _OptText = None

    def reference(self, label: str) -> tuple[str, str]:
        """``(kind, value)`` of the first of key, id and email given."""
        for kind in ("key", "id", "email"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        others = f"{label}.id / {label}.email"
        message = f"The {label}.key field is required when none of {others} are present."
        raise _invalid({f"{label}.key": [message]})


class _CustomerOptions(_Body):
    referral_url: Annotated[
        Annotated[str, StringConstraints(max_length=2048)] | None, BeforeValidator(_blank)
    ] = None


class _NewCustomer(_Body):
    partner: _Partner
    key: _Text
    email: _Email = None
    name: _OptText = None
    surname: _OptText = None
    tags: Annotated[list[str], _default([])] = []
    options: Annotated[_CustomerOptions, _default({})] = _CustomerOptions()


class _CustomerRef(_Body):
    key: _OptText = None
    email: _Email = None
    name: _OptText = None
    surname: _OptText = None
    partner: _Partner | None = None


class _TransactionOptions(_Body):
    create_customer: Annotated[
        bool, BeforeValidator(_laravel_bool), _default(False), BeforeValidator(_blank)
    ] = False


class _NewTransaction(_Body):
    customer: _CustomerRef
    key: _OptText = None
    amount: Annotated[Decimal, _AMOUNT, BeforeValidator(_php_number), BeforeValidator(_blank)]
    amount_units: _Units = None
    action: _OptText = None
    product_id: _IdText = None
    product_type: _OptText = None
    created_at: Annotated[
        Annotated[int, Field(ge=0, le=_MAX_TIMESTAMP)] | None, BeforeValidator(_blank)
    ] = None
    options: Annotated[_TransactionOptions, _default({})] = _TransactionOptions()
    partner: _Partner | None = None


class _ListQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=250)] = 15
    page: Annotated[int, Field(ge=1)] = 1


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept_any_partner: StrictBool
    reward_rate: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]


def _parse[M: BaseModel](model: type[M], data: Any) -> M:
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as error:
        raise _laravel(error) from None


# ---- the API -------------------------------------------------------------------------------


class _Api(FakeApp):
    """All sandbox state, guarded by one lock, and the request handling that works on it."""

    api_prefix: ClassVar[str] = "/v1"
    admin_prefix: ClassVar[str] = "/_sandbox"
    pages: ClassVar[Mapping[str, Callable[[], bytes]]] = dict.fromkeys(
        ("/", "/_sandbox", "/_sandbox/"), _PAGE.read_bytes
    )

    def __init__(
        self, api_key: str, partners: Iterable[str], accept_any: bool, rate: Decimal | int | str
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.partners: list[str] = []
        for partner in partners:
            self.add_partner(partner)
        self.settings = _Settings(accept_any_partner=accept_any, reward_rate=Decimal(rate))
        self.customers: dict[str, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.rewards_created = 0
        # The local stack's delivery feed, for the page; None when the sandbox runs on its own.
        self.delivery_feed: Callable[[], Mapping[str, Any]] | None = None
        routes = [
            ("/test", ["GET"], self.test),
            ("/customers", ["POST"], self.create_customer),
            ("/customers/<key>", ["GET"], self.get_customer),
            ("/transactions", ["GET"], self.list_transactions),
            ("/transactions", ["POST"], self.create_transaction),
            ("/transactions/<key>", ["GET"], self.get_transaction),
            ("/transactions/<key>", ["DELETE"], self.delete_transaction),
        ]
        rules = [Rule("/v1" + path, methods=m, endpoint=e) for path, m, e in routes]
        self.api_map = Map(rules, strict_slashes=False)

    def admin_rules(self) -> Iterable[Rule]:
        steps = "<any(approve, pay):step>"
        return [
            Rule("/settings", methods=["GET"], endpoint=lambda _: self.settings.model_dump()),
            Rule("/settings", methods=["PUT"], endpoint=self.update_settings),
            Rule(f"/transactions/<key>/rewards/{steps}", methods=["POST"], endpoint=self.rewards),
            Rule("/deliveries", methods=["GET"], endpoint=self.deliveries),
        ]

    # ---- state (also used by the Python API) -----------------------------------------------

    def add_partner(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("a partner key must be a non-empty string")
        with self.lock:
            if key not in self.partners:
                self.partners.append(key)

    def update_settings(self, changes: Any) -> dict[str, Any]:
        """Change ``accept_any_partner`` and/or ``reward_rate``; ``ValueError`` if invalid."""
        with self.lock:
            self.settings = _Settings.model_validate(self.settings.model_dump() | changes)
            return self.settings.model_dump()

    def rewards(self, _: Any, key: str, step: str) -> dict[str, Any]:
        return {"transactions": self.move_rewards(key, step)}

    def move_rewards(self, key: str, step: str) -> list[dict[str, Any]]:
        """Approve or pay the rewards of every live transaction with this key (a paid one
        stays paid); ``KeyError`` if there is none."""
        with self.lock:
            matches = self.live_transactions(key)
            if not matches:
                raise KeyError(f"No live transaction with key {key}")
            for reward in (reward for t in matches for reward in t["rewards"]):
                if reward["status"] != "paid":
                    reward["status"] = _REWARD_STEPS[step]
                    reward["paid_at"] = _now_iso() if step == "pay" else None
            return copy.deepcopy(matches)

    def deliveries(self, _: Any) -> dict[str, Any]:
        feed = self.delivery_feed
        return {"available": True, **feed()} if feed else {"available": False}

    def clear(self) -> None:
        self.customers, self.transactions, self.rewards_created = {}, [], 0

    def admin_state(self) -> Any:
        return {
            "customers": list(self.customers.values()),
            "transactions": self.transactions,
            "partners": self.partners,
            "settings": self.settings.model_dump(),
        }

    def fault_response(self, status: int) -> Response:
        message = "Too Many Attempts." if status == 429 else phrase(status, "Sandbox fault")
        return json_response(status, {"message": message})

    # ---- request handling ------------------------------------------------------------------

    def answer(self, request: Request, path: str) -> Response:
        with self.lock:
            try:
                return self.route(request, path)
            except _Refusal as refusal:
                return refusal.response()

    def route(self, request: Request, path: str) -> Response:
        not_found = _Refusal(404, f"The route {path.lstrip('/') or '/'} could not be found.")
        if not path.startswith("/v1"):
            raise not_found
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self.api_key)):
            raise _Refusal(401, "Unauthenticated.")
        try:
            endpoint, args = self.api_map.bind("sandbox").match(path, method=request.method)
        except NotFound:
            raise not_found from None
        except MethodNotAllowed as error:
            allowed = ", ".join(error.valid_methods or [])
            refusal = _Refusal(
                405,
                f"The {request.method} method is not supported for route {path.lstrip('/')}. "
                f"Supported methods: {allowed}.",
            )
            refusal.headers["Allow"] = allowed
            raise refusal from None
        try:
            raw = request.get_data()
            body = loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            raise _Refusal(400, "Malformed JSON") from None
        args = {name: unquote(value) for name, value in args.items()}
        return json_response(200, endpoint(body, request.args, **args))

    # ---- helpers ---------------------------------------------------------------------------

    def resolve_partner(self, ref: tuple[str, str]) -> str:
        """The partner's key, or 400 as Partnero answers. Partners only have keys here: an id
        is taken as the key, an email never matches; ``accept_any_partner`` accepts all."""
        kind, value = ref
        if kind in {"key", "id"} and (self.settings.accept_any_partner or value in self.partners):
            return value
        raise _Refusal(400, f"Invalid partner {kind}")

    def store_customer(self, key: str, partner: str, **fields: Any) -> dict[str, Any]:
        customer: dict[str, Any] = {"key": key, "email": None, "name": None, "surname": None}
        customer |= {"tags": [], "partner": {"key": partner}, "referral_url": None} | fields
        customer |= {"archived": False, "created_at": _now_iso()}
        self.customers[key] = customer
        return customer

    def find_customer(self, key: str | None, email: str | None) -> dict[str, Any] | None:
        if key is not None:
            return self.customers.get(key)
        found = (c for c in self.customers.values() if (c["email"] or "").lower() == email)
        return next(found, None) if email else None

    def live_transactions(self, key: str) -> list[dict[str, Any]]:
        return [t for t in self.transactions if t["key"] == key and not t["deleted"]]

    def new_reward(self, amount: Decimal, units: str | None) -> dict[str, Any]:
        """The partner's reward for a new transaction, still to be approved and paid."""
        self.rewards_created += 1
        rate = self.settings.reward_rate
        value = amount if units == "reward" else (amount * rate).quantize(_CENT, ROUND_HALF_UP)
        reward_id = f"rwd_{self.rewards_created}"
        return {"id": reward_id, "amount": value, "status": "pending", "paid_at": None}

    def page(self, items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
        """Laravel's paginated list: ``data``, ``links`` and ``meta``."""
        asked = _parse(_ListQuery, {k: v for k, v in query.items() if k in {"limit", "page"} and v})
        limit, page = asked.limit, asked.page
        last_page = max(1, -(-len(items) // limit))
        start = (page - 1) * limit
        chunk = items[start : start + limit]
        base = f"{self.root_url}/v1/transactions"

        def link(number: int) -> str:
            return f"{base}?{urlencode({**query, 'page': str(number)})}"

        links: dict[str, str | None] = {"first": link(1), "last": link(last_page)}
        links["prev"] = link(page - 1) if page > 1 else None
        links["next"] = link(page + 1) if page < last_page else None
        meta: dict[str, Any] = {"current_page": page, "from": start + 1 if chunk else None}
        meta |= {"last_page": last_page, "path": base, "per_page": limit}
        meta |= {"to": start + len(chunk) if chunk else None, "total": len(items)}
        return {"data": chunk, "links": links, "meta": meta, "status": 1}

    # ---- routes ----------------------------------------------------------------------------

    def test(self, body: Any, query: Mapping[str, str]) -> dict[str, Any]:
        return {"status": 1}

    def create_customer(self, body: Any, query: Mapping[str, str]) -> dict[str, Any]:
        new = _parse(_NewCustomer, body)
        if new.key in self.customers:
            raise _invalid({"key": ["Customer with this key already exists"]})
        partner = self.resolve_partner(new.partner.reference("partner"))
        fields = new.model_dump(include={"email", "name", "surname", "tags"})
        customer = self.store_customer(
            new.key, partner, referral_url=new.options.referral_url, **fields
        )
        return {"data": customer, "status": 1}

    def get_customer(self, body: Any, query: Mapping[str, str], key: str) -> dict[str, Any]:
        customer = self.customers.get(key)
        if customer is None:
            raise _Refusal(404, "Customer not found")
        return {"data": customer, "status": 1}

    def create_transaction(self, body: Any, query: Mapping[str, str]) -> dict[str, Any]:
        new = _parse(_NewTransaction, body)
        ref = new.customer
        if ref.key is None and ref.email is None:
            message = "The customer.key field is required when customer.email is not present."
            raise _invalid({"customer.key": [message]})
        customer = self.find_customer(ref.key, ref.email.lower() if ref.email else None)
        if customer is None:
            customer = self.customer_for(new)
        transaction = new.model_dump(
            include={"key", "amount", "amount_units", "action", "product_id", "product_type"}
        )
        transaction |= {"customer": {"key": customer["key"]}, "partner": customer["partner"]}
        created = _now_iso(new.created_at) if new.created_at is not None else _now_iso()
        transaction |= {"created_at": created, "archived": False, "deleted": False}
        transaction["rewards"] = [self.new_reward(new.amount, new.amount_units)]
        self.transactions.append(transaction)
        return {"data": transaction, "status": 1}

    def customer_for(self, new: _NewTransaction) -> dict[str, Any]:
        """The customer a transaction creates (``options.create_customer``), or 422."""
        ref = new.customer
        if not new.options.create_customer:
            label = "customer.key" if ref.key is not None else "customer.email"
            raise _Refusal(422, "Customer not found", {label: ["Customer not found"]})
        partner = ref.partner or new.partner  # current docs: customer.partner; older: partner
        if partner is None:
            message = (
                "The customer.partner.key field is required when options.create_customer is true."
            )
            raise _invalid({"customer.partner.key": [message]})
        label = "customer.partner" if ref.partner else "partner"
        key = self.resolve_partner(partner.reference(label))
        fields = ref.model_dump(include={"email", "name", "surname"})
        return self.store_customer(ref.key or str(ref.email), key, **fields)

    def list_transactions(self, body: Any, query: Mapping[str, str]) -> dict[str, Any]:
        wanted = {
            name: query[name] for name in ("key", "customer.key", "partner.key") if name in query
        }

        def held(t: dict[str, Any]) -> dict[str, Any]:
            customer, partner = t["customer"]["key"], t["partner"]["key"]
            return {"key": t["key"], "customer.key": customer, "partner.key": partner}

        items = [
            t
            for t in self.transactions
            if not t["deleted"] and all(held(t)[k] == v for k, v in wanted.items())
        ]
        return self.page(items, query)

    def get_transaction(self, body: Any, query: Mapping[str, str], key: str) -> dict[str, Any]:
        matches = self.live_transactions(key)
        if not matches:
            raise _Refusal(404, "Transaction not found")
        return {"data": matches[0], "status": 1}

    def delete_transaction(self, body: Any, query: Mapping[str, str], key: str) -> dict[str, Any]:
        matches = self.live_transactions(key)
        if not matches:
            raise _Refusal(404, "Transaction not found")
        for transaction in matches:
            transaction |= {"deleted": True, "deleted_at": _now_iso()}
        return {"status": 1}


# ---- the public sandbox --------------------------------------------------------------------


class PartneroSandbox(FakeService[_Api]):
    """An in-process fake Partnero API served over HTTP from a daemon thread.

    Its ``url`` (``.../v1``) is the value for ``PARTNERO_API_URL``. Only ``partners`` are valid
    partner keys unless ``accept_any_partner``; each transaction's reward is ``reward_rate`` of
    its amount. Both survive :meth:`reset`.
    """

    description = "the sandbox"

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
        return self._app.api_key

    def add_partner(self, key: str) -> None:
        self._app.add_partner(key)

    def partners(self) -> list[str]:
        with self._app.lock:
            return list(self._app.partners)

    def customers(self) -> list[dict[str, Any]]:
        with self._app.lock:
            return copy.deepcopy(list(self._app.customers.values()))

    def transactions(self, include_deleted: bool = True) -> list[dict[str, Any]]:
        with self._app.lock:
            kept = [t for t in self._app.transactions if include_deleted or not t["deleted"]]
            return copy.deepcopy(kept)

    def show_deliveries(self, feed: Callable[[], Mapping[str, Any]] | None) -> None:
        """Serve ``feed()`` (the local stack's delivery feed: ``{"version", "deliveries":
        [...]}``) at ``GET /_sandbox/deliveries``, for the page; None: no feed."""
        self._app.delivery_feed = feed

    @property
    def accepts_any_partner(self) -> bool:
        return self._app.settings.accept_any_partner

    def set_accept_any_partner(self, enabled: bool) -> None:
        """Accept every partner key (True) or only the known partners (False)."""
        self._app.update_settings({"accept_any_partner": enabled})

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
        return self._app.settings.reward_rate

    def set_reward_rate(self, rate: Decimal | int | str) -> None:
        """The share of a transaction's amount its reward gets (0 to 1), for new transactions."""
        self._app.update_settings({"reward_rate": rate})

    def approve_rewards(self, key: str) -> list[dict[str, Any]]:
        """Approve the rewards of every live transaction with this key (a paid one stays paid);
        returns those transactions; ``KeyError`` if there is none."""
        return self._app.move_rewards(key, "approve")

    def pay_rewards(self, key: str) -> list[dict[str, Any]]:
        """Mark the rewards of every live transaction with this key paid (now); returns those
        transactions; ``KeyError`` if there is none."""
        return self._app.move_rewards(key, "pay")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM."""
    parser = cli_parser("sandbox", "Local stand-in for Partnero's REST API.", 4010)
    parser.add_argument("--api-key", default="sandbox-key", help="the accepted Bearer API key")
    parser.add_argument("--partner", action="append", help="a partner key (default: demo-partner)")
    parser.add_argument("--accept-any-partner", action="store_true", help="every key is valid")
    args = parser.parse_args(argv)
    partners: list[str] = args.partner or ["demo-partner"]
    sandbox = PartneroSandbox(
        args.api_key, partners, args.host, args.port, accept_any_partner=args.accept_any_partner
    )
    details = f"partners: {', '.join(partners)}"
    if args.accept_any_partner:
        details += " (and any other key)"
    return serve_until_signalled(sandbox, "Partnero sandbox", details)


if __name__ == "__main__":
    raise SystemExit(main())

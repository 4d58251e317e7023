"""Stripe REST client (read only): the current state of what an event names.

Every commission is decided from the payment as Stripe holds it now, read with this client;
the event is only the trigger. It speaks plain HTTP through httpx (the ``stripe`` package
is too big for the Lambda layer) and returns answers as plain JSON dicts, which the
processing code models itself.

Every request sends ``Stripe-Version: 2025-03-31.basil`` (:data:`STRIPE_API_VERSION`), so
objects have that version's shape whatever the account's default API version is (an
account still on 2018-era versions reads the same), ``Authorization: Bearer <key>`` and
``User-Agent: partnero-bridge/<version>``. Requests the client makes, all ``GET``:

Retrieve one object by id (:meth:`StripeClient.retrieve`), with any ``expand[]``:

- ``/v1/charges/{id}``
- ``/v1/payment_intents/{id}``
- ``/v1/invoices/{id}``
- ``/v1/checkout/sessions/{id}``
- ``/v1/subscriptions/{id}``
- ``/v1/customers/{id}``
- ``/v1/refunds/{id}``
- ``/v1/disputes/{id}``

List every object matching a filter (:meth:`StripeClient.list_all`), ``limit`` (1-100,
default 100) and ``starting_after`` paging while ``has_more``, at least one filter, and
``expand[]=data.<field>`` for each field the caller expands on the items:

- ``/v1/refunds?charge=`` or ``?payment_intent=``
- ``/v1/checkout/sessions?subscription=``, ``?payment_intent=`` or ``?customer=``
- ``/v1/invoice_payments?invoice=`` or
  ``?payment[type]=payment_intent&payment[payment_intent]=``
- ``/v1/disputes?charge=`` or ``?payment_intent=``
- ``/v1/invoices?subscription=`` or ``?customer=``
- ``/v1/charges?payment_intent=`` or ``?customer=``

List one page of the objects created in a window (:meth:`StripeClient.list_window`), for
reconciliation: ``created[gte]``/``created[lte]`` (Unix seconds), ``limit``,
``starting_after``; events also by ``types[]``:

- ``/v1/invoices``, ``/v1/payment_intents``, ``/v1/charges``, ``/v1/checkout/sessions``,
  ``/v1/refunds``, ``/v1/disputes``, ``/v1/events`` (Stripe keeps events 30 days)

The key needs only *read* access: a restricted key (``rk_live_``/``rk_test_``) with Read on
Charges, Refunds, PaymentIntents, Invoices (and Invoice Payments where the dashboard lists
them apart), Checkout Sessions, Subscriptions, Customers and Disputes is enough. Its mode
must match ``STRIPE_LIVEMODE`` (:func:`check_key_mode`).

What an answer means (:func:`classify_answer`, a pure function):

- 2xx with a JSON object: the object (a list page for a list call);
- 401/403: configuration (the key is wrong, revoked or lacks a read permission): retried;
  a 401 also makes the next call re-read the key's secret (it may have been rotated);
- 404 on a retrieve: configuration, since an object named by a signed event must exist
  (the key is of the other mode or of another account); 404 on a list: a wrong
  ``STRIPE_API_URL``;
- 408, 429 (honouring ``Retry-After``), 5xx, timeouts, connection errors, a 2xx whose body
  is not a JSON object: retried;
- any other 4xx: permanent with Stripe's ``error.message``, unless Stripe says
  ``Stripe-Should-Retry: true`` (then retried).

The key is never logged nor put into an error; Stripe's own messages quote keys (masked)
and are redacted before they are kept.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from partnero_bridge.errors import ConfigurationError, PermanentError, RetryableError
from partnero_bridge.http_client import pooled_client, send
from partnero_bridge.observability import logger
from partnero_bridge.partnero import parse_retry_after

STRIPE_API_VERSION = "2025-03-31.basil"

# Resources read by id.
RETRIEVABLE: frozenset[str] = frozenset(
    {
        "charges",
        "payment_intents",
        "invoices",
        "checkout/sessions",
        "subscriptions",
        "customers",
        "refunds",
        "disputes",
    }
)
# Resources listed, and the filters each may be listed by.
LISTABLE: Mapping[str, frozenset[str]] = {
    "refunds": frozenset({"charge", "payment_intent"}),
    "checkout/sessions": frozenset({"subscription", "payment_intent", "customer"}),
    # payment[...]: the invoice a PaymentIntent paid (basil removed ``invoice`` from it).
    "invoice_payments": frozenset({"invoice", "payment[type]", "payment[payment_intent]"}),
    "disputes": frozenset({"charge", "payment_intent"}),
    "invoices": frozenset({"subscription", "customer"}),
    "charges": frozenset({"payment_intent", "customer"}),
}
# Resources listed by creation date, one page at a time, to reconcile a window.
WINDOW_LISTABLE: frozenset[str] = frozenset(
    {
        "invoices",
        "payment_intents",
        "charges",
        "checkout/sessions",
        "refunds",
        "disputes",
        "events",
    }
)
# Stripe's page size is 1-100.
MAX_PAGE_SIZE = 100
# Event types ``GET /v1/events`` takes in one ``types[]`` filter.
MAX_EVENT_TYPES = 20
# A list longer than this is not one payment's state: refused rather than read for ever.
DEFAULT_MAX_ITEMS = 1000

_MAX_MESSAGE = 500
# Stripe quotes keys in its errors ("Invalid API Key provided: sk_live_****1234").
_KEY_TEXT = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9*]*")
_KEY_SHAPE = re.compile(r"(sk|rk)_(live|test)_[A-Za-z0-9_]+")


def _redact(text: str) -> str:
    return _KEY_TEXT.sub("<key>", text)


def is_restricted_key(api_key: str) -> bool:
    return api_key.startswith(("rk_live_", "rk_test_"))


def check_key_mode(api_key: str, livemode: bool) -> None:
    """Refuse a key that is not a secret or restricted key of the configured mode.

    A test key on a live deployment would find none of the live payments (and the reverse
    would read real payments for test events), so the mismatch is a configuration error
    before any call. Errors say what is wrong with the key, never the key.
    """
    match = _KEY_SHAPE.fullmatch(api_key)
    if match is None:
        if api_key.startswith("pk_"):
            problem = "a publishable key (pk_), which cannot read payments"
        elif not api_key:
            problem = "empty"
        elif api_key.startswith(("sk_", "rk_")):
            problem = "not in the shape of a Stripe key (spaces or other characters in it?)"
        else:
            problem = "not a Stripe secret (sk_) or restricted (rk_) key"
        raise ConfigurationError(f"the Stripe API key is {problem}")
    key_is_live = match.group(2) == "live"
    if key_is_live != livemode:
        key_mode = "live" if key_is_live else "test"
        raise ConfigurationError(
            f"the Stripe API key is a {key_mode}-mode key ({match.group(1)}_{key_mode}_) but "
            f"STRIPE_LIVEMODE is {'true' if livemode else 'false'}"
        )


def _error_of(body: Any) -> tuple[str, str]:
    """Stripe's ``error.code`` (or ``type``) and ``error.message``, redacted."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = str(error.get("code") or error.get("type") or "")[:100]
    message = _redact(str(error.get("message") or ""))[:_MAX_MESSAGE]
    return _redact(code), message


def _describe(operation: str, status_code: int, code: str, message: str) -> str:
    detail = f"{status_code}, {code}" if code else str(status_code)
    return f"Stripe answered {operation} with {detail}: {message or 'no message'}"


class NoSuchObject(ConfigurationError):
    """A retrieve answered 404: the key's account and mode hold no ``resource`` with id
    ``object_id`` (for an id a signed event named: a key of another mode or account)."""

    def __init__(self, resource: str, object_id: str) -> None:
        super().__init__(
            f"Stripe has no {resource} {object_id[:255]} for this key: key mode or account mismatch"
        )
        self.resource = resource
        self.object_id = object_id


def classify_answer(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    resource: str,
    object_id: str | None = None,
) -> dict[str, Any]:
    """Turn one HTTP answer into the JSON object, or raise the failure it stands for.

    ``object_id`` is set for a retrieve (where a 404 means the key cannot see an object a
    signed event named) and None for a list page. ``headers`` must be case-insensitive or
    lower-cased (httpx's are).
    """
    operation = f"retrieve {resource}" if object_id is not None else f"list {resource}"
    parsed: Any = None
    if body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    if 200 <= status_code < 300:
        if not isinstance(parsed, dict):
            raise RetryableError(
                f"Stripe answered {operation} with {status_code} and a body that is not "
                "a JSON object"
            )
        return parsed
    code, message = _error_of(parsed)
    reason = _describe(operation, status_code, code, message)
    if status_code in (401, 403):
        raise ConfigurationError(
            f"{reason} (the key is wrong, revoked or lacks read access to {resource})"
        )
    if status_code == 404:
        if object_id is not None:
            raise NoSuchObject(resource, object_id)
        raise ConfigurationError(f"Stripe answered 404 for {operation}: check STRIPE_API_URL")
    if status_code in (408, 429) or status_code >= 500:
        raise RetryableError(reason, parse_retry_after(headers.get("retry-after")))
    if str(headers.get("stripe-should-retry") or "").strip().lower() == "true":
        raise RetryableError(reason, parse_retry_after(headers.get("retry-after")))
    raise PermanentError(reason)


def _object_path(resource: str, object_id: str) -> str:
    return f"v1/{resource}/{quote(object_id, safe='')}"


def _list_filters(
    resource: str, filters: dict[str, str], limit: int, max_items: int
) -> dict[str, str]:
    """``filters`` when the bridge lists ``resource`` by them (ValueError: a mistake in the
    code; PermanentError: an id missing from the payment being read)."""
    allowed = LISTABLE.get(resource)
    if allowed is None:
        raise ValueError(f"the bridge does not list Stripe {resource}")
    unknown = sorted(set(filters) - allowed)
    if unknown or not filters:
        raise ValueError(f"Stripe {resource} are listed by one of {sorted(allowed)}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit is 1-{MAX_PAGE_SIZE}")
    if max_items < 1:
        raise ValueError("max_items is at least 1")
    for name, value in filters.items():
        if not isinstance(value, str) or not value:
            raise PermanentError(f"no Stripe {name} id to list {resource} by")
    return filters


def _page_data(page: Mapping[str, Any], resource: str) -> list[dict[str, Any]]:
    data = page.get("data")
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise RetryableError(f"Stripe's {resource} list has no data list of objects")
    return data


def _last_id(data: list[dict[str, Any]], resource: str) -> str:
    """Where the next page starts (``starting_after``)."""
    last_id = data[-1].get("id") if data else None
    if not isinstance(last_id, str) or not last_id:
        raise RetryableError(f"Stripe's {resource} list has more items but no last id to page from")
    return last_id


class StripeClient:
    """One per container: keeps the connection pool warm between invocations."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        timeout_seconds: float,
        on_unauthorized: Callable[[], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._on_unauthorized = on_unauthorized
        self._http = pooled_client(
            base_url, timeout_seconds, {"Stripe-Version": STRIPE_API_VERSION}, transport
        )

    def close(self) -> None:
        self._http.close()

    def retrieve(self, resource: str, object_id: str, expand: Sequence[str] = ()) -> dict[str, Any]:
        """``GET /v1/{resource}/{id}``: the object as Stripe holds it now."""
        if resource not in RETRIEVABLE:
            raise ValueError(f"the bridge does not retrieve Stripe {resource}")
        if not object_id:
            raise PermanentError(f"no Stripe {resource} id to read")
        params = [("expand[]", field) for field in expand]
        return self._get(_object_path(resource, object_id), params, resource, object_id)

    def list_all(
        self,
        resource: str,
        where: Mapping[str, str] | None = None,
        *,
        limit: int = MAX_PAGE_SIZE,
        max_items: int = DEFAULT_MAX_ITEMS,
        expand: Sequence[str] = (),
        **named: str,
    ) -> list[dict[str, Any]]:
        """Every object of ``GET /v1/{resource}?<filters>``, following ``has_more``.

        Filters come as keywords (``charge="ch_..."``) or, for names that are not Python
        identifiers (``payment[payment_intent]``), in ``where``. ``expand`` applies to each
        item (``data.`` is prefixed). More than ``max_items`` objects raise PermanentError
        rather than being cut short: a partial list (of refunds, say) would decide a
        commission on part of the payment's state.
        """
        filters = _list_filters(resource, {**(where or {}), **named}, limit, max_items)
        base: list[tuple[str, str]] = [("limit", str(limit)), *sorted(filters.items())]
        base += [("expand[]", f"data.{field}") for field in expand]
        items: list[dict[str, Any]] = []
        starting_after: str | None = None
        while True:
            after = [("starting_after", starting_after)] if starting_after is not None else []
            page = self._get(f"v1/{resource}", [*base, *after], resource, None)
            data = _page_data(page, resource)
            items.extend(data)
            if len(items) > max_items:
                raise PermanentError(
                    f"Stripe lists more than {max_items} {resource} for "
                    f"{', '.join(sorted(filters))}: over the bridge's bound"
                )
            if page.get("has_more") is not True:
                return items
            starting_after = _last_id(data, resource)

    def list_window(
        self,
        resource: str,
        created_from: int,
        created_to: int,
        *,
        starting_after: str | None = None,
        limit: int = MAX_PAGE_SIZE,
        types: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of ``GET /v1/{resource}`` created in ``[created_from, created_to]``
        (Unix seconds, both inclusive), newest first as Stripe lists: ``(objects,
        has_more)``. The next page starts after the last object's id. ``types``: the event
        types wanted (events only, at most 20).
        """
        if resource not in WINDOW_LISTABLE:
            raise ValueError(f"the bridge does not list Stripe {resource} by date")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit is 1-{MAX_PAGE_SIZE}")
        if types and (resource != "events" or len(types) > MAX_EVENT_TYPES):
            raise ValueError(f"types[] filters events only, at most {MAX_EVENT_TYPES}")
        params: list[tuple[str, str]] = [
            ("limit", str(limit)),
            ("created[gte]", str(int(created_from))),
            ("created[lte]", str(int(created_to))),
        ]
        params += [("types[]", event_type) for event_type in types]
        if starting_after is not None:
            params.append(("starting_after", starting_after))
        page = self._get(f"v1/{resource}", params, resource, None)
        data = page.get("data")
        if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
            raise RetryableError(f"Stripe's {resource} list has no data list of objects")
        return data, page.get("has_more") is True

    def _get(
        self,
        path: str,
        params: list[tuple[str, str]],
        resource: str,
        object_id: str | None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._api_key()}"}
        operation = f"{'retrieve' if object_id is not None else 'list'} {resource}"
        started = time.perf_counter()
        response = send(
            self._http, f"Stripe ({operation})", "GET", path, params=tuple(params), headers=headers
        )
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info(
            "stripe call",
            extra={
                "operation": operation,
                "status_code": response.status_code,
                "elapsed_ms": elapsed_ms,
                # Stripe's id of the request, for its support and dashboard logs.
                "stripe_request_id": response.headers.get("request-id", ""),
            },
        )
        try:
            return classify_answer(
                response.status_code,
                response.content,
                response.headers,
                resource=resource,
                object_id=object_id,
            )
        except ConfigurationError:
            if response.status_code == 401 and self._on_unauthorized is not None:
                self._on_unauthorized()
            raise

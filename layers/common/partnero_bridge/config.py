"""Settings: one pydantic model read from the environment, plus secrets read at run time.

Non-secret settings come from the function's environment (template parameters when
deployed, environment variables in the local stack). Secret values never live in the
environment: only their Secrets Manager ARNs do, and the values are fetched and cached
through Powertools parameters.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from partnero_bridge.errors import ConfigurationError
from partnero_bridge.queues import MAX_VISIBILITY_SECONDS

_INSECURE_URL = "insecure_url"
_INSECURE_URL_MESSAGE = "must be https:// (http:// only to this machine and never for prod)"


def _is_this_machine(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Error types that mean a required setting has no value (an empty variable counts as unset).
_UNSET = frozenset({"missing", "string_too_short"})


def _named(error: ErrorDetails) -> str:
    """The setting an error is about; the rule too when it is one of ours (no value)."""
    name = str(error["loc"][0]) if error["loc"] else "settings"
    if error["type"] in _UNSET:
        return f"{name} is not set"
    return f"{name} {_INSECURE_URL_MESSAGE}" if error["type"] == _INSECURE_URL else name


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BridgeSettings(BaseModel):
    """Everything a function needs to know that is not a secret."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = Field("dev", alias="BRIDGE_STAGE")
    idempotency_table: str = Field("", alias="BRIDGE_IDEMPOTENCY_TABLE")
    ledger_table: str = Field("", alias="BRIDGE_LEDGER_TABLE")
    work_queue_url: str = Field("", alias="BRIDGE_WORK_QUEUE_URL")
    dead_letter_queue_url: str = Field("", alias="BRIDGE_DEAD_LETTER_QUEUE_URL")
    # The sign-up function sends re-check messages to the Ecwid and Stripe work queues.
    ecwid_queue_url: str = Field("", alias="BRIDGE_ECWID_QUEUE_URL")
    stripe_queue_url: str = Field("", alias="BRIDGE_STRIPE_QUEUE_URL")
    # Transient failures are retried until this long after the delivery's window start
    # (received by ingest, or replayed from the DLQ), then dead-lettered: 72 h like
    # Stripe's own retries. At most 13.5 days: the work queues keep a message 14 days and
    # a Retry-After of up to 12 h may still follow the window's last attempt.
    retry_window_seconds: int = Field(259200, ge=0, le=1166400, alias="BRIDGE_RETRY_WINDOW_SECONDS")
    # A backstop for crashes and loops, far above the receives the window takes (SQS
    # redrive uses the same number; SQS allows at most 1000).
    max_receives: int = Field(200, ge=1, le=1000, alias="BRIDGE_MAX_RECEIVES")
    # A back-off is a message's visibility timeout, which SQS caps.
    retry_base_seconds: int = Field(
        30, ge=0, le=MAX_VISIBILITY_SECONDS, alias="BRIDGE_RETRY_BASE_SECONDS"
    )
    retry_max_seconds: int = Field(
        3600, ge=0, le=MAX_VISIBILITY_SECONDS, alias="BRIDGE_RETRY_MAX_SECONDS"
    )
    # Long enough to cover the sources' own retry windows (Stripe: 3 days, Ecwid: 1 day).
    idempotency_ttl_seconds: int = Field(
        4 * 24 * 3600, ge=60, alias="BRIDGE_IDEMPOTENCY_TTL_SECONDS"
    )
    secret_cache_seconds: int = Field(300, ge=0, alias="BRIDGE_SECRET_CACHE_SECONDS")

    partnero_api_url: str = Field("https://api.partnero.com/v1", alias="PARTNERO_API_URL")
    partnero_secret_arn: str = Field("", alias="PARTNERO_SECRET_ARN")
    # Read timeout of one call: a hanging Partnero becomes a retry, not a killed invocation.
    # A record's calls together must fit the function's 120 s (see
    # processing.worst_case_record_seconds).
    partnero_timeout_seconds: float = Field(8.0, gt=0, le=25, alias="PARTNERO_TIMEOUT_SECONDS")
    # The Partnero program's currency (3-letter code; empty = not configured) and whether
    # Partnero converts other currencies into it itself.
    partnero_program_currency: str = Field(
        "", pattern=r"^([A-Za-z]{3})?$", alias="PARTNERO_PROGRAM_CURRENCY"
    )
    partnero_converts_currencies: bool = Field(False, alias="PARTNERO_CONVERTS_CURRENCIES")

    signup_allowed_origins: list[str] = Field(default_factory=list, alias="SIGNUP_ALLOWED_ORIGINS")
    signup_require_signature: bool = Field(False, alias="SIGNUP_REQUIRE_SIGNATURE")
    signup_secret_arn: str = Field("", alias="SIGNUP_SECRET_ARN")
    signup_max_body_bytes: int = Field(4096, ge=256, le=65536, alias="SIGNUP_MAX_BODY_BYTES")
    # Unsigned sign-ups per client IP (IPv6: per /64) per minute; 0 = no limit. Signed
    # calls are never limited.
    signup_rate_limit_per_minute: int = Field(
        10, ge=0, le=1_000_000, alias="SIGNUP_RATE_LIMIT_PER_MINUTE"
    )
    # The header holding the client's IP when the API sits behind a proxy that sets it
    # (CloudFront-Viewer-Address, "ip:port"); empty = API Gateway's sourceIp.
    signup_trusted_proxy_header: str = Field("", alias="SIGNUP_TRUSTED_PROXY_HEADER")
    # Whose sign-ups create the referred Partnero customer (which then claims the
    # customer's later sales by email): "any" or only "signed" ones.
    signup_sales_claimed_by: Literal["any", "signed"] = Field(
        "any", alias="SIGNUP_SALES_CLAIMED_BY"
    )
    # Unsigned sign-ups processed per partner key per hour; over it they wait for the next
    # hour (never refused); 0 = no budget.
    signup_partner_budget_per_hour: int = Field(
        200, ge=0, le=1_000_000, alias="SIGNUP_PARTNER_BUDGET_PER_HOUR"
    )
    rate_limit_table: str = Field("", alias="BRIDGE_RATE_LIMIT_TABLE")

    # How long a claim on one order or payment in the ledger lasts: longer than the
    # processing function's timeout (120 s), so it only expires when its holder has died.
    ledger_lease_seconds: int = Field(150, ge=31, le=3600, alias="BRIDGE_LEDGER_LEASE_SECONDS")
    # How long a payment's ledger item keeps each delivery in its history (explain shows
    # them): older entries are dropped when the item is next written. The item itself
    # never expires: it is the record of what Partnero holds.
    history_retention_days: int = Field(400, ge=1, le=3650, alias="BRIDGE_HISTORY_RETENTION_DAYS")
    # How long a sale without a partner key, for a customer Partnero does not know yet,
    # waits for that customer's sign-up before it counts as not referred.
    signup_wait_seconds: int = Field(900, ge=0, le=12 * 3600, alias="BRIDGE_SIGNUP_WAIT_SECONDS")
    # A later sign-up re-triggers that customer's not-referred sales of the last N days.
    retrigger_days: int = Field(30, ge=0, le=365, alias="BRIDGE_RETRIGGER_DAYS")

    ecwid_api_url: str = Field("https://app.ecwid.com/api/v3", alias="ECWID_API_URL")
    # Webhook signing secrets (the app's client secrets) apart from API credentials (store
    # tokens), so the code that answers the internet needs to read only the former.
    ecwid_webhook_secret_arn: str = Field("", alias="ECWID_WEBHOOK_SECRET_ARN")
    ecwid_api_secret_arn: str = Field("", alias="ECWID_API_SECRET_ARN")
    # Stores whose webhooks are processed (not a secret); webhooks of other stores are
    # parked in the parked-webhooks table, replayable once their store is listed here.
    ecwid_store_ids: list[str] = Field(default_factory=list, alias="ECWID_STORE_IDS")
    # A webhook whose signed eventCreated is older than this at receipt is refused (2xx,
    # counted, not queued). Longer than Ecwid's ~24 h of redeliveries (which keep
    # eventCreated), shorter than the idempotency TTL (a replay is still a duplicate).
    ecwid_max_event_age_seconds: int = Field(
        48 * 3600, ge=3600, alias="ECWID_MAX_EVENT_AGE_SECONDS"
    )
    parked_table: str = Field("", alias="BRIDGE_PARKED_TABLE")
    # Parkings per store and retention period; over it a webhook is counted and dropped.
    ecwid_parked_max_per_store: int = Field(
        1000, ge=1, le=1_000_000, alias="ECWID_PARKED_MAX_PER_STORE"
    )
    ecwid_parked_retention_days: int = Field(14, ge=1, le=365, alias="ECWID_PARKED_RETENTION_DAYS")
    ecwid_amount_basis: Literal["net", "total", "subtotal"] = Field(
        "net", alias="ECWID_AMOUNT_BASIS"
    )
    ecwid_partner_field: str = Field("partnero_partner", min_length=1, alias="ECWID_PARTNER_FIELD")
    ecwid_customer_key: Literal["email", "customerId"] = Field("email", alias="ECWID_CUSTOMER_KEY")
    ecwid_currency: str = Field("", pattern=r"^([A-Za-z]{3})?$", alias="ECWID_CURRENCY")
    # Payment statuses that count as a sale (besides PARTIALLY_REFUNDED, always counted
    # net of the refund), e.g. add CUSTOM_PAYMENT_STATUS_1 if a shop uses it for "paid".
    ecwid_paid_statuses: list[str] = Field(
        default_factory=lambda: ["PAID"], alias="ECWID_PAID_STATUSES"
    )
    ecwid_product_id: Literal["", "productId", "sku"] = Field("", alias="ECWID_PRODUCT_ID")
    ecwid_timeout_seconds: float = Field(8.0, gt=0, le=25, alias="ECWID_TIMEOUT_SECONDS")
    stripe_secret_arn: str = Field("", alias="STRIPE_SECRET_ARN")
    # Events from the other mode (test events on a live deployment) are acknowledged and
    # ignored, so a test payment never pays a real commission.
    stripe_livemode: bool = Field(True, alias="STRIPE_LIVEMODE")
    stripe_amount_basis: Literal["excluding_tax", "total"] = Field(
        "excluding_tax", alias="STRIPE_AMOUNT_BASIS"
    )
    # Money paid outside Stripe (invoices marked paid out of band) is not a Stripe payment
    # and earns no commission unless this says so.
    stripe_count_out_of_band: bool = Field(False, alias="STRIPE_COUNT_OUT_OF_BAND")
    # Processing reads each payment's current state from the Stripe API with a read-only
    # key (restricted, of the STRIPE_LIVEMODE mode) kept apart from the webhook secrets.
    stripe_api_url: str = Field("https://api.stripe.com", alias="STRIPE_API_URL")
    stripe_api_secret_arn: str = Field("", alias="STRIPE_API_SECRET_ARN")
    # Stripe answers reads fast, and a sale may read it up to 7 times (see processing).
    stripe_timeout_seconds: float = Field(5.0, gt=0, le=25, alias="STRIPE_TIMEOUT_SECONDS")

    @field_validator("signup_allowed_origins", "ecwid_paid_statuses", mode="before")
    @classmethod
    def _origins_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("signup_allowed_origins")
    @classmethod
    def _no_star_in_prod(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # "*" lets every web page post sign-ups through its visitors' browsers.
        if "*" in value and info.data.get("stage") == "prod":
            raise ValueError("'*' is not allowed when BRIDGE_STAGE is prod: list the origins")
        return value

    @field_validator("signup_trusted_proxy_header")
    @classmethod
    def _proxy_header_is_trusted(cls, value: str) -> str:
        name = value.strip().lower()
        # Every hop appends to these and the client writes the first entry: trusting them
        # would let a caller pick its own IP.
        if name in ("x-forwarded-for", "forwarded"):
            raise ValueError(f"{value} is set by the client; name a header your proxy sets")
        return name

    @field_validator("ecwid_store_ids", mode="before")
    @classmethod
    def _store_ids_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("ecwid_store_ids")
    @classmethod
    def _store_ids_are_numbers(cls, value: list[str]) -> list[str]:
        if not all(store.isascii() and store.isdigit() for store in value):
            raise ValueError("store ids are numbers, comma-separated")
        return [str(int(store)) for store in value]

    @field_validator("ecwid_max_event_age_seconds")
    @classmethod
    def _age_below_idempotency_ttl(cls, value: int, info: ValidationInfo) -> int:
        ttl = info.data.get("idempotency_ttl_seconds")
        if isinstance(ttl, int) and value >= ttl:
            raise ValueError("must be shorter than BRIDGE_IDEMPOTENCY_TTL_SECONDS")
        return value

    @field_validator("partnero_api_url", "ecwid_api_url", "stripe_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("partnero_api_url", "ecwid_api_url", "stripe_api_url")
    @classmethod
    def _https_unless_this_machine(cls, value: str, info: ValidationInfo) -> str:
        """API keys and store tokens travel in these requests: HTTPS, always when deployed.

        ``http://`` is accepted only to this machine (localhost, 127.0.0.0/8, ::1) and only
        when BRIDGE_STAGE is not prod: the local stack's fakes. A function deployed to
        AWS has nothing listening on its loopback, so every stack that runs there, dev or
        prod, needs https:// for a service it can reach. The error never repeats the URL.
        """
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
        except ValueError:
            parts, host = None, ""
        if parts is not None and host:
            if parts.scheme == "https":
                return value
            if (
                parts.scheme == "http"
                and _is_this_machine(host)
                and info.data.get("stage") != "prod"
            ):
                return value
        raise PydanticCustomError(_INSECURE_URL, _INSECURE_URL_MESSAGE)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings in ``environ`` (default: this process's environment).

        Raises ConfigurationError naming every variable that is unset or invalid (never
        its value), e.g. ``invalid settings: BRIDGE_LEDGER_TABLE is not set``.
        """
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            names = ", ".join(_named(err) for err in exc.errors())
            # from None: pydantic's error would carry the offending value into a traceback.
            raise ConfigurationError(f"invalid settings: {names}") from None


# A table name, queue URL or secret ARN a function cannot work without.
_Required = Annotated[str, Field(min_length=1)]


def requiring[Settings: BaseModel](model: type[Settings], *names: str) -> type[Settings]:
    """``model`` with the string fields ``names`` required: a function's own settings.

    Each function declares what it cannot run without (its tables, queues and secrets,
    all given by its Environment in template.yaml); reading them at cold start then fails
    at once, naming every missing variable, instead of at the first AWS call. The
    variables keep their names (aliases) and everything else its default.
    """
    fields: dict[str, Any] = {
        name: (_Required, Field(alias=model.model_fields[name].alias)) for name in names
    }
    return create_model(f"{model.__name__}Requiring", __base__=model, **fields)


def required_variables(model: type[BaseModel]) -> frozenset[str]:
    """The environment variables ``model`` cannot be read without."""
    return frozenset(
        field.alias or name for name, field in model.model_fields.items() if field.is_required()
    )


class SecretReader:
    """Reads JSON secrets by ARN through Powertools parameters (cached for max_age seconds)."""

    def __init__(self, max_age: int, boto_config: Any = None) -> None:
        self._max_age = max_age
        self._boto_config = boto_config
        self._provider: Any = None
        self._stale: set[str] = set()

    def read(self, arn: str) -> dict[str, Any]:
        if not arn:
            raise ConfigurationError("secret ARN is not configured")
        # Imported here: parameters pulls in boto3, which a cold start should not pay
        # for until a secret is actually needed.
        from aws_lambda_powertools.utilities import parameters

        if self._provider is None:
            self._provider = parameters.SecretsProvider(boto_config=self._boto_config)
        force = arn in self._stale
        try:
            value = self._provider.get(
                arn, transform="json", max_age=self._max_age, force_fetch=force
            )
        except parameters.exceptions.TransformParameterError as exc:
            raise ConfigurationError("secret is not a JSON object") from exc
        except parameters.exceptions.GetParameterError as exc:
            raise ConfigurationError("secret could not be read") from exc
        self._stale.discard(arn)
        if not isinstance(value, dict):
            raise ConfigurationError("secret is not a JSON object")
        return value

    def invalidate(self, arn: str) -> None:
        """Fetch this secret afresh next time (after a 401, the key may have been rotated)."""
        self._stale.add(arn)

    def field(self, arn: str, name: str) -> str:
        value = self.read(arn).get(name)
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"secret field {name!r} is empty")
        return value

"""The composition root: settings and every per-container object built from them, once.

Each function reads its own settings at cold start (:func:`get_runtime` with the
function's settings model) and builds nothing else then. The first invocation builds what
it touches (boto3 clients lazily, because importing and creating them is most of a cold
start), and later invocations of the same container reuse them. Tests, the bench and a
paced reconciliation hand a :class:`Runtime` ready-made objects or HTTP transports instead
(its constructor), never by reaching into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from partnero_bridge.config import BridgeSettings, SecretReader

if TYPE_CHECKING:
    import httpx
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from partnero_bridge.commissions import Reconciler
    from partnero_bridge.ecwid.client import EcwidClient
    from partnero_bridge.ledger.store import Ledger
    from partnero_bridge.partnero import PartneroClient
    from partnero_bridge.queues import DeliveryQueues
    from partnero_bridge.ratelimit import CounterStore
    from partnero_bridge.stripe.client import StripeClient


def _boto_config() -> Any:
    from botocore.config import Config

    # Fail fast: ingest must answer the sender within seconds, and a processing retry
    # is cheaper than an invocation stuck on a slow endpoint.
    return Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )


class Replacements(TypedDict, total=False):
    """Objects a :class:`Runtime` uses as they are instead of building its own."""

    sqs: SQSClient
    dynamodb: DynamoDBClient
    secrets: SecretReader
    rate_limits: CounterStore
    queues: DeliveryQueues
    ledger: Ledger
    idempotency_store: DynamoDBPersistenceLayer
    reconciler: Reconciler
    partnero: PartneroClient
    stripe: StripeClient
    ecwid: EcwidClient


class Runtime:
    """Settings and the objects built from them, each built on first use and kept.

    ``transports``: the HTTP transport of the ``"partnero"``, ``"stripe"`` and ``"ecwid"``
    clients when not the default (a reconciliation paces and counts its requests, see
    reconcile.pacing; tests and the bench answer them in process). ``replace``: ready-made
    objects by the name of the attribute they stand for (see :class:`Replacements`).
    """

    def __init__(
        self,
        settings: BridgeSettings,
        transports: Mapping[str, httpx.BaseTransport] | None = None,
        **replace: Unpack[Replacements],
    ) -> None:
        self.settings = settings
        self.transports: Mapping[str, httpx.BaseTransport] = transports or {}
        # A cached_property keeps what it built in the instance's __dict__: putting an
        # object there first is what makes it used instead.
        self.__dict__.update(replace)

    @cached_property
    def secrets(self) -> SecretReader:
        return SecretReader(max_age=self.settings.secret_cache_seconds, boto_config=_boto_config())

    @cached_property
    def sqs(self) -> SQSClient:
        import boto3

        return boto3.client("sqs", config=_boto_config())

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        import boto3

        return boto3.client("dynamodb", config=_boto_config())

    @cached_property
    def rate_limits(self) -> CounterStore:
        """Counters for the sign-up rate limit and partner budgets (BRIDGE_RATE_LIMIT_TABLE).

        Its own client with short timeouts and one retry: a slow store must cost a call
        about a second, then the call goes on without its count.
        """
        import boto3
        from botocore.config import Config

        from partnero_bridge.ratelimit import CounterStore

        config = Config(
            connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 2}
        )
        return CounterStore(boto3.client("dynamodb", config=config), self.settings.rate_limit_table)

    @cached_property
    def queues(self) -> DeliveryQueues:
        from partnero_bridge.queues import DeliveryQueues

        return DeliveryQueues(
            self.sqs, self.settings.work_queue_url, self.settings.dead_letter_queue_url
        )

    @cached_property
    def ledger(self) -> Ledger:
        from partnero_bridge.ledger.store import Ledger

        return Ledger(
            self.dynamodb,
            self.settings.ledger_table,
            self.settings.ledger_lease_seconds,
            self.settings.history_retention_days,
        )

    @cached_property
    def idempotency_store(self) -> DynamoDBPersistenceLayer:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=self.settings.idempotency_table, boto3_client=self.dynamodb
        )

    @cached_property
    def reconciler(self) -> Reconciler:
        from partnero_bridge.commissions import Reconciler, ReconcileRules

        settings = self.settings
        rules = ReconcileRules(
            signup_wait_seconds=settings.signup_wait_seconds,
            program_currency=settings.partnero_program_currency,
            converts_currencies=settings.partnero_converts_currencies,
        )
        return Reconciler(self.ledger, self.partnero, rules)

    @cached_property
    def partnero(self) -> PartneroClient:
        from partnero_bridge.partnero import PartneroClient

        arn = self.settings.partnero_secret_arn
        return PartneroClient(
            base_url=self.settings.partnero_api_url,
            api_key=lambda: self.secrets.field(arn, "api_key"),
            timeout_seconds=self.settings.partnero_timeout_seconds,
            on_unauthorized=lambda: self.secrets.invalidate(arn),
            transport=self.transports.get("partnero"),
        )

    @cached_property
    def stripe(self) -> StripeClient:
        """The Stripe API client, with the read key of ``STRIPE_API_SECRET_ARN``.

        Building it reads the key and checks its mode against STRIPE_LIVEMODE, so a wrong
        key fails the first delivery that needs Stripe (retried, nothing is cached) rather
        than reading the other mode's objects. Every later read of the key (after a 401 or
        when the secret cache expires) is checked again.
        """
        from partnero_bridge.observability import logger
        from partnero_bridge.stripe.client import StripeClient, check_key_mode, is_restricted_key

        arn = self.settings.stripe_api_secret_arn
        livemode = self.settings.stripe_livemode

        def api_key() -> str:
            key = self.secrets.field(arn, "api_key")
            check_key_mode(key, livemode)
            return key

        if not is_restricted_key(api_key()):
            logger.warning(
                "the Stripe API key is a secret key (sk_): a restricted key (rk_) with read "
                "permissions only is enough and safer"
            )
        return StripeClient(
            base_url=self.settings.stripe_api_url,
            api_key=api_key,
            timeout_seconds=self.settings.stripe_timeout_seconds,
            on_unauthorized=lambda: self.secrets.invalidate(arn),
            transport=self.transports.get("stripe"),
        )

    @cached_property
    def ecwid(self) -> EcwidClient:
        """The Ecwid API client (one per container: the stores' currencies stay cached)."""
        from partnero_bridge.ecwid.client import EcwidClient

        return EcwidClient(
            self.settings.ecwid_api_url,
            self.settings.ecwid_timeout_seconds,
            transport=self.transports.get("ecwid"),
        )


_runtimes: dict[type[BridgeSettings], Runtime] = {}


def get_runtime(settings: type[BridgeSettings] = BridgeSettings) -> Runtime:
    """This container's runtime, its settings read from the environment as ``settings``
    (the function's own model, see config.requiring) the first time it is asked for.

    A function calls it at import, so that a missing or invalid setting fails its cold
    start (ConfigurationError naming the variables) rather than its first AWS call.
    """
    runtime = _runtimes.get(settings)
    if runtime is None:
        runtime = _runtimes[settings] = Runtime(settings.from_environ())
    return runtime


def install_runtime(settings: type[BridgeSettings], runtime: Runtime) -> None:
    """Make ``runtime`` the one :func:`get_runtime` gives for ``settings``: a function then
    runs with the objects it was built with (the bench's, a test's), as if its container
    had built them."""
    _runtimes[settings] = runtime


def reset_runtime() -> None:
    """Forget settings and clients, as a new container would (tests change the
    environment between cases)."""
    _runtimes.clear()

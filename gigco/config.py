"""Settings from ``GIGCO_*`` environment variables: the only reader of ``os.environ``."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import limits


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every GigCo setting; durations are seconds."""

    database_url: str
    broker_url: str
    # A streaming standby the read-only, lag-tolerant endpoints read from (docs/scaling.md).
    read_database_url: str | None = None
    admin_token: str | None = None
    data_dir: str = ".gigco"
    offer_ttl_seconds: float = 86400
    opportunity_ttl_seconds: float = 900
    match_retry_base_seconds: float = 300
    match_max_rounds: int = 5
    review_window_seconds: float = 604800
    payment_max_attempts: int = 5
    payment_retry_base_seconds: float = 60
    # A scheduled job not started this long after its scheduled start is a no-show.
    start_grace_seconds: float = 1800
    # Work in progress past scheduled_start + estimated_hours x this is flagged as an overrun.
    overrun_factor: float = 2
    # A consumer's cancel this close to scheduled_start, once a worker is assigned, costs a
    # fee of this percent of the subtotal, paid to the worker (policy values).
    late_cancel_window_seconds: float = 86400
    late_cancel_fee_percent: float = 20
    # Matching counts a worker's withdrawals and no-shows of this recent past (a policy value).
    strike_window_seconds: float = 7776000
    # A claimed payment attempt keeps other runs away this long: longer than any gateway
    # call; a run that dies after its claim leaves the job due again when it ends.
    payment_lease_seconds: float = 60
    # The payment processor: the built-in simulated one, or Stripe through its SDK.
    payment_gateway: str = "simulated"
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None  # a Stripe-API test server instead of api.stripe.com
    # One call to Stripe waits at most this long; a charge makes at most three calls, and
    # all three must end well inside the claim's lease (checked when loading).
    stripe_timeout_seconds: float = 5
    sweep_interval_seconds: float = 30
    stuck_step_grace_seconds: float = 60
    sweep_batch: int = 1000
    feed_hold_seconds: float = 30
    log_level: str = "INFO"
    flower_basic_auth: tuple[str, ...] = ()
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_disable_after: int = 5
    webhook_timeout_seconds: float = 10
    webhook_secret_overlap_seconds: float = 86400
    webhook_allow_private_networks: bool = False
    webhook_endpoint_concurrency: int = 2
    webhook_max_endpoints: int = 10
    ops_secure_cookie: bool = True
    # Test clocks (a sandbox's simulated time, /v1/test_clocks): off unless turned on.
    test_clocks: bool = False
    # Bounds on waiting (docs/deploy.md): a request never waits on the database or the
    # broker for more than a few seconds; a worker's statements may run longer.
    db_statement_timeout_ms: int = 5000
    db_lock_timeout_ms: int = 3000
    worker_statement_timeout_ms: int = 60000
    broker_timeout_seconds: float = 2
    # The Redis master's name that Sentinel monitors; required by (and only for) sentinel://.
    broker_sentinel_master: str | None = None
    # /healthz: work waiting longer than this while no task finished in it = workers down.
    health_stall_seconds: float = 120
    # OpenTelemetry (gigco.tracing): on when GIGCO_TRACING says so, else when an OTLP
    # endpoint is set; spans go to tracing_endpoint over OTLP/HTTP.
    tracing: bool = False
    tracing_endpoint: str = "http://localhost:4318/v1/traces"
    tracing_service_name: str | None = None
    # Rate limits (api.md "Limits"), in the limits library's notation; None is off.
    rate_limit_signups: str | None = "20/minute"
    rate_limit_requests: str | None = "600/minute"
    # Refused /ops logins per client address (a brute-force guard on the operator's token).
    rate_limit_ops_logins: str | None = "5/minute"
    rate_limit_webhook_sends: str | None = "30/minute"
    # Where the counts live, shared by every API process; None: the broker's Redis (or, for
    # the embedded default, this process's memory). See ``rate_limit_storage``.
    rate_limit_storage_url: str | None = None
    # Reverse proxies in front of the API whose X-Forwarded-For/-Proto are believed.
    trusted_proxy_hops: int = 0
    # A bearer token that may read /metrics and nothing else.
    metrics_token: str | None = None

    @property
    def embedded(self) -> bool:
        """True when running on the embedded SQLite default rather than PostgreSQL."""
        return self.database_url.startswith("sqlite")

    @property
    def rate_limit_storage(self) -> str:
        """The rate limits' storage URL: the one configured, else the broker's Redis, else
        memory (counted per process: the embedded default, or a broker that is not Redis)."""
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.broker_url.startswith(_REDIS_BROKERS):
            return self.broker_url
        return "memory://"

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# (env var, field, parser, minimum)
_DURATIONS = {
    "GIGCO_OFFER_TTL_SECONDS": "offer_ttl_seconds",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "opportunity_ttl_seconds",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "match_retry_base_seconds",
    "GIGCO_REVIEW_WINDOW_SECONDS": "review_window_seconds",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "payment_retry_base_seconds",
    "GIGCO_START_GRACE_SECONDS": "start_grace_seconds",
    "GIGCO_LATE_CANCEL_WINDOW_SECONDS": "late_cancel_window_seconds",
    "GIGCO_STRIKE_WINDOW_SECONDS": "strike_window_seconds",
    "GIGCO_PAYMENT_LEASE_SECONDS": "payment_lease_seconds",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "sweep_interval_seconds",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "stuck_step_grace_seconds",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "webhook_timeout_seconds",
    "GIGCO_WEBHOOK_SECRET_OVERLAP_SECONDS": "webhook_secret_overlap_seconds",
    "GIGCO_FEED_HOLD_SECONDS": "feed_hold_seconds",
    "GIGCO_BROKER_TIMEOUT_SECONDS": "broker_timeout_seconds",
    "GIGCO_HEALTH_STALL_SECONDS": "health_stall_seconds",
    "GIGCO_STRIPE_TIMEOUT_SECONDS": "stripe_timeout_seconds",
}
_COUNTS = {
    "GIGCO_MATCH_MAX_ROUNDS": "match_max_rounds",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "payment_max_attempts",
    "GIGCO_WEBHOOK_DISABLE_AFTER": "webhook_disable_after",
}
# (env var, field, maximum): sizes from 1 up to the maximum
_SIZES = {
    "GIGCO_SWEEP_BATCH": ("sweep_batch", 100_000),
    "GIGCO_DB_STATEMENT_TIMEOUT_MS": ("db_statement_timeout_ms", 3_600_000),
    "GIGCO_DB_LOCK_TIMEOUT_MS": ("db_lock_timeout_ms", 3_600_000),
    "GIGCO_WORKER_STATEMENT_TIMEOUT_MS": ("worker_statement_timeout_ms", 3_600_000),
    "GIGCO_WEBHOOK_ENDPOINT_CONCURRENCY": ("webhook_endpoint_concurrency", 1_000),
    "GIGCO_WEBHOOK_MAX_ENDPOINTS": ("webhook_max_endpoints", 10_000),
}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
_REDIS_BROKERS = ("redis://", "rediss://")
_RATE_LIMITS = {
    "GIGCO_RATE_LIMIT_SIGNUPS": "rate_limit_signups",
    "GIGCO_RATE_LIMIT_REQUESTS": "rate_limit_requests",
    "GIGCO_RATE_LIMIT_OPS_LOGINS": "rate_limit_ops_logins",
    "GIGCO_RATE_LIMIT_WEBHOOK_SENDS": "rate_limit_webhook_sends",
}
MAX_PROXY_HOPS = 10


def _duration(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a positive, finite number of seconds, got {raw!r}")
    return value


def _factor(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not 1 <= value < float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least 1, got {raw!r}")
    return value


def _percent(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not 0 <= value <= 100:
        raise ConfigError(f"{name} must be a percentage from 0 to 100, got {raw!r}")
    return value


def _count(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not 1 <= value <= 100:
        raise ConfigError(f"{name} must be between 1 and 100, got {raw!r}")
    return value


def _size(name: str, raw: str, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise ConfigError(f"{name} must be between 1 and {maximum}, got {raw!r}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    if not raw.startswith(schemes) or "://" not in raw:
        raise ConfigError(f"{name} must be a URL starting with one of {', '.join(schemes)}")
    return raw


def host_list_as_query(url: str) -> str:
    """A PostgreSQL URL with libpq's host list (``postgresql://u@h1:5432,h2:5432/db``) in the
    query form SQLAlchemy parses (``postgresql://u@/db?host=h1:5432&host=h2:5432``); any
    other URL unchanged. libpq tries the hosts in order (``target_session_attrs`` picks
    among them)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return url
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return url
    query = "&".join(
        [f"host={host}" for host in hosts.split(",")] + [parts.query] * bool(parts.query)
    )
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{userinfo}{at}{parts.path}?{query}{fragment}"


# One host of a PostgreSQL URL: a name, an IPv4 address or a bracketed IPv6 one, and a port.
_PG_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(:[0-9]*)?")


def _database_url(
    raw: str, name: str = "GIGCO_DATABASE_URL", schemes: tuple[str, ...] = ("postgresql", "sqlite")
) -> str:
    url = host_list_as_query(_url(name, raw, schemes))
    parts = urlsplit(url)
    hosts = [parts.netloc.rpartition("@")[2]] + [
        value
        for key, _, value in (p.partition("=") for p in parts.query.split("&"))
        if key == "host"
    ]
    for host in hosts:
        if not _PG_HOST.fullmatch(host):
            raise ConfigError(f"{name} has a malformed host[:port], {host!r}")
    return url


def _read_database_url(env: Mapping[str, str], primary: str) -> str | None:
    """The replica's URL (the same forms as the primary's), only beside a PostgreSQL primary."""
    raw = env.get("GIGCO_READ_DATABASE_URL") or None
    if raw is None:
        return None
    if primary.startswith("sqlite"):
        raise ConfigError(
            "GIGCO_READ_DATABASE_URL needs a PostgreSQL GIGCO_DATABASE_URL (a replica of it)"
        )
    return _database_url(raw, "GIGCO_READ_DATABASE_URL", ("postgresql",))


def _schedule(name: str, raw: str) -> tuple[float, ...]:
    delays = []
    for part in raw.split(","):
        try:
            delay = float(part)
        except ValueError:
            raise ConfigError(
                f"{name} must be delays in seconds separated by commas, got {raw!r}"
            ) from None
        if not 0 <= delay < float("inf"):
            raise ConfigError(f"{name} delays must be finite and not negative, got {raw!r}")
        delays.append(delay)
    if len(delays) > 100:
        raise ConfigError(f"{name} may list at most 100 retries")
    return tuple(delays)


def _rate(name: str, raw: str) -> str | None:
    """A rate such as ``20/minute`` (several joined by ``;``), or None for ``off``."""
    if raw.strip().lower() == "off":
        return None
    try:
        items = limits.parse_many(raw)
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(
            f"{name} must be a rate such as 20/minute (count/second, minute, hour or day; "
            f"several joined by ';'), or off; got {raw!r}"
        )
    return raw.strip()


def _hops(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not 0 <= value <= MAX_PROXY_HOPS:
        raise ConfigError(f"{name} must be between 0 and {MAX_PROXY_HOPS}, got {raw!r}")
    return value


def _secret(name: str, raw: str) -> str:
    if len(raw) < 16:
        raise ConfigError(f"{name} must be at least 16 characters long")
    return raw


def _rate_limit_storage(env: Mapping[str, str], values: dict[str, object]) -> str | None:
    """The configured storage of the rate limits. On PostgreSQL, a broker that is not a plain
    Redis (RabbitMQ, Sentinel) needs one while a limit is on: memory:// must be chosen, as
    it counts in each process apart."""
    raw = env.get("GIGCO_RATE_LIMIT_STORAGE_URL") or None
    if raw is not None:
        return _url(
            "GIGCO_RATE_LIMIT_STORAGE_URL",
            raw,
            ("redis://", "rediss://", "redis+sentinel://", "memory://"),
        )
    limited = any(values.get(field, "on") is not None for field in _RATE_LIMITS.values())
    embedded = str(values["database_url"]).startswith("sqlite")
    if limited and not embedded and str(values["broker_url"]).startswith(("amqp", "sentinel")):
        raise ConfigError(
            "GIGCO_RATE_LIMIT_STORAGE_URL must name a Redis (redis://host:6379/1) for the rate "
            "limits that every API process shares: the broker is not one. memory:// counts "
            "in each process apart"
        )
    return None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return value in _TRUE


def _flower_accounts(raw: str) -> tuple[str, ...]:
    if not raw:
        return ()
    accounts = tuple(a.strip() for a in raw.split(","))
    for account in accounts:
        user, _, password = account.partition(":")
        if not user or len(password) < 12:
            raise ConfigError(
                "GIGCO_FLOWER_BASIC_AUTH: set GIGCO_FLOWER_BASIC_AUTH=user:password (a password "
                "of at least 12 characters; several accounts separated by commas)"
            )
    return accounts


def _tracing(env: Mapping[str, str]) -> dict[str, object]:
    """Tracing is on when ``GIGCO_TRACING`` is true, or unset while an OTLP endpoint is set."""
    # The OpenTelemetry names and meanings: the traces endpoint is used as it is, the
    # general one gets the signal's path.
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or ""
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
    values: dict[str, object] = {"tracing_service_name": env.get("OTEL_SERVICE_NAME") or None}
    if traces or base:
        values["tracing_endpoint"] = _url(
            "OTEL_EXPORTER_OTLP_ENDPOINT", traces or f"{base.rstrip('/')}/v1/traces", ("http",)
        )
    flag = env.get("GIGCO_TRACING")
    values["tracing"] = _flag("GIGCO_TRACING", flag) if flag else bool(traces or base)
    return values


def _parsers() -> dict[str, tuple[str, Callable[[str, str], object]]]:
    """Each optional variable with its Settings field and the function that checks it."""
    parsers: dict[str, tuple[str, Callable[[str, str], object]]] = {
        "GIGCO_WEBHOOK_RETRY_SCHEDULE": ("webhook_retry_schedule", _schedule),
        "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": ("webhook_allow_private_networks", _flag),
        "GIGCO_OPS_SECURE_COOKIE": ("ops_secure_cookie", _flag),
        "GIGCO_TRUSTED_PROXY_HOPS": ("trusted_proxy_hops", _hops),
        "GIGCO_METRICS_TOKEN": ("metrics_token", _secret),
        "GIGCO_TEST_CLOCKS": ("test_clocks", _flag),
        "GIGCO_OVERRUN_FACTOR": ("overrun_factor", _factor),
        "GIGCO_LATE_CANCEL_FEE_PERCENT": ("late_cancel_fee_percent", _percent),
    }
    parsers.update({name: (field, _rate) for name, field in _RATE_LIMITS.items()})
    parsers.update({name: (field, _duration) for name, field in _DURATIONS.items()})
    parsers.update({name: (field, _count) for name, field in _COUNTS.items()})
    parsers.update(
        {name: (field, partial(_size, maximum=top)) for name, (field, top) in _SIZES.items()}
    )
    return parsers


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError naming the first bad variable."""
    env = os.environ if environ is None else environ
    data_dir = env.get("GIGCO_DATA_DIR") or ".gigco"
    data_path = Path(data_dir).absolute()
    values: dict[str, object] = {"data_dir": str(data_path)}
    values["database_url"] = _database_url(
        env.get("GIGCO_DATABASE_URL") or f"sqlite:///{data_path / 'gigco.db'}"
    )
    values["read_database_url"] = _read_database_url(env, str(values["database_url"]))
    values["broker_url"] = _url(
        "GIGCO_BROKER_URL",
        env.get("GIGCO_BROKER_URL") or f"sqla+sqlite:///{data_path / 'broker.db'}",
        ("redis", "rediss", "sentinel", "sqla+", "amqp", "memory"),
    )
    master = env.get("GIGCO_BROKER_SENTINEL_MASTER") or None
    sentinel = str(values["broker_url"]).startswith("sentinel")
    if sentinel and master is None:
        raise ConfigError(
            "GIGCO_BROKER_SENTINEL_MASTER must name the Redis master Sentinel monitors "
            "(a sentinel:// GIGCO_BROKER_URL needs it)"
        )
    if master is not None and not sentinel:
        raise ConfigError("GIGCO_BROKER_SENTINEL_MASTER applies only to a sentinel:// broker URL")
    values["broker_sentinel_master"] = master
    token = env.get("GIGCO_ADMIN_TOKEN")
    if token and len(token) < 16:
        raise ConfigError("GIGCO_ADMIN_TOKEN must be at least 16 characters long")
    values["admin_token"] = token or None
    for name, (field, parse) in _parsers().items():
        if env.get(name):
            values[field] = parse(name, env[name])
    if values.get("metrics_token") and values["metrics_token"] == values["admin_token"]:
        raise ConfigError("GIGCO_METRICS_TOKEN must differ from GIGCO_ADMIN_TOKEN")
    values["rate_limit_storage_url"] = _rate_limit_storage(env, values)
    values["flower_basic_auth"] = _flower_accounts(env.get("GIGCO_FLOWER_BASIC_AUTH") or "")
    level = (env.get("GIGCO_LOG_LEVEL") or "INFO").upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"GIGCO_LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}")
    values["log_level"] = level
    values.update(_tracing(env))
    values.update(_gateway(env, values))
    return Settings(**values)  # type: ignore[arg-type]


# --- what the README's settings table says (`gigco settings --markdown` renders it) -----

# Each variable's meaning, in the table's order. A variable that load_settings reads and this
# leaves out still gets a row, marked undocumented (tests/unit/test_settings_docs.py fails).
MEANINGS: dict[str, str] = {
    "GIGCO_DATABASE_URL": "PostgreSQL in production",
    "GIGCO_READ_DATABASE_URL": "a hot standby of it (same URL forms): the job lists, the "
    "notification list and feed, and the `/ops` dashboard and lists read from it "
    "([docs/scaling.md](docs/scaling.md#a-read-replica))",
    "GIGCO_BROKER_URL": "Redis in production",
    "GIGCO_ADMIN_TOKEN": "the operator's bearer token, ≥ 16 chars",
    "GIGCO_BROKER_SENTINEL_MASTER": "the Redis master's name, required with (and only with) a "
    "`sentinel://` broker URL ([docs/deploy.md](docs/deploy.md))",
    "GIGCO_DATA_DIR": "where the embedded default keeps its files",
    "GIGCO_OFFER_TTL_SECONDS": "how long a price offer stands",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "how long one worker has to answer",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "round *k* is followed by round *k+1* after *k* × this",
    "GIGCO_MATCH_MAX_ROUNDS": "matching rounds before `no_worker`",
    "GIGCO_REVIEW_WINDOW_SECONDS": "how long reviews are collected",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "charge attempts before `payment_failed`",
    "GIGCO_START_GRACE_SECONDS": "a `scheduled` job not started this long after its "
    "`scheduled_start` is a no-show: back to matching without that worker (a policy value)",
    "GIGCO_OVERRUN_FACTOR": "work still in progress past `scheduled_start` + `estimated_hours` "
    "× this is flagged once as an overrun, to the consumer and operators (a policy value, ≥ 1)",
    "GIGCO_LATE_CANCEL_WINDOW_SECONDS": "a consumer's cancel after a worker is assigned and "
    "within this long of `scheduled_start` is late: it costs the late-cancellation fee "
    "(a policy value)",
    "GIGCO_LATE_CANCEL_FEE_PERCENT": "the late-cancellation fee, in % of the subtotal (0 to "
    "100; 0: none), charged once and paid to the worker (a policy value)",
    "GIGCO_STRIKE_WINDOW_SECONDS": "matching ranks workers of equal rating by their withdrawals "
    "plus no-shows within this recent past (a policy value; 90 days)",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "backoff: base × 2^(attempt−1)",
    "GIGCO_PAYMENT_LEASE_SECONDS": "a claimed charge attempt keeps other runs away this long "
    "(longer than any gateway call); a worker that dies mid-attempt leaves the payment due "
    "again when it ends",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "how often beat sweeps",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "a step overdue this long is re-kicked",
    "GIGCO_SWEEP_BATCH": "at most this many deadlines and stuck steps sent per sweep",
    "GIGCO_FEED_HOLD_SECONDS": "longest an open transaction holds the notification feed back "
    "(ours from its start; another database role's, whose start PostgreSQL hides from ours, "
    "from when the notification was written)",
    "GIGCO_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "GIGCO_DB_STATEMENT_TIMEOUT_MS": "any statement of an API request is cancelled after this "
    "long (PostgreSQL `statement_timeout`; [docs/deploy.md](docs/deploy.md))",
    "GIGCO_DB_LOCK_TIMEOUT_MS": "an API request waits this long at most for a row or table "
    "lock, then answers 503 with `Retry-After`",
    "GIGCO_WORKER_STATEMENT_TIMEOUT_MS": "a worker's statements and lock waits (the task retries)",
    "GIGCO_BROKER_TIMEOUT_SECONDS": "connect, handshake, socket reads and publisher confirms "
    "of the broker; a request that cannot publish leaves the step to the sweeper",
    "GIGCO_HEALTH_STALL_SECONDS": "`/healthz` and the worker probe: work waiting longer than "
    "this while no task finished in it means the workers are down",
    "GIGCO_WEBHOOK_RETRY_SCHEDULE": "seconds before each webhook retry; then `failed`",
    "GIGCO_WEBHOOK_DISABLE_AFTER": "failed deliveries in a row that disable an endpoint (its "
    "owner is notified)",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "the whole of one delivery attempt: DNS lookup, connect, "
    "TLS, request and answer",
    "GIGCO_WEBHOOK_ENDPOINT_CONCURRENCY": "messages one endpoint may have in flight at once (a "
    "slow receiver holds at most this many webhook-worker threads)",
    "GIGCO_WEBHOOK_MAX_ENDPOINTS": "webhook endpoints per owner (409 beyond)",
    "GIGCO_WEBHOOK_SECRET_OVERLAP_SECONDS": "how long a rotated-out secret keeps signing "
    "beside the new one",
    "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "`1` (or `true`) allows `http` and "
    "loopback/private/CGNAT receivers (local development, tests, on-premises)",
    "GIGCO_FLOWER_BASIC_AUTH": "`user:password`, password ≥ 12 chars; commas for several",
    "GIGCO_OPS_SECURE_COOKIE": "the console's session cookie is `Secure`; `false` only for "
    "plain HTTP off localhost",
    "GIGCO_TEST_CLOCKS": "`1` turns on test clocks (`/v1/test_clocks`): simulated time for "
    "a sandbox's jobs; never in production",
    "GIGCO_TRACING": "`1` turns OpenTelemetry tracing on, `0` off "
    "([docs/ops.md](docs/ops.md#tracing))",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "the collector's OTLP/HTTP URL (spans go to `/v1/traces` "
    "under it); set, tracing is on",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "the full traces URL, used as it is",
    "OTEL_SERVICE_NAME": "the service name in traces",
    "GIGCO_RATE_LIMIT_SIGNUPS": "sign-ups (`POST /v1/consumers` and `/v1/workers` together) per "
    "client address; a rate (`count/second`, `minute`, `hour` or `day`, several joined by `;`) "
    "or `off`",
    "GIGCO_RATE_LIMIT_REQUESTS": "every other request per caller (the account a token names, else"
    " the client address); the operator is exempt; a rate or `off`",
    "GIGCO_RATE_LIMIT_OPS_LOGINS": "refused `/ops` logins per client address; past it the form "
    "answers 429 even to the right token; a rate or `off`",
    "GIGCO_RATE_LIMIT_STORAGE_URL": "where every API process counts: `redis://`, `rediss://`, "
    "`redis+sentinel://`, or `memory://` (each process apart); required on PostgreSQL with a "
    "RabbitMQ or Sentinel broker while a limit is on "
    "([docs/deploy.md](docs/deploy.md#rate-limits-and-proxies))",
    "GIGCO_TRUSTED_PROXY_HOPS": "reverse proxies in front of the API whose "
    "`X-Forwarded-For`/`-Proto` are believed (0–10); 0: the client address is the socket's peer",
    "GIGCO_METRICS_TOKEN": "a bearer token, ≥ 16 chars and not the operator's, that reads `GET "
    "/metrics` and nothing else",
    "GIGCO_RATE_LIMIT_WEBHOOK_SENDS": "webhook pings and manual delivery retries per owner "
    "(each sends a message to a receiver the owner names); a rate or `off`",
    "GIGCO_PAYMENT_GATEWAY": "`simulated` (built in, no processor) or `stripe`",
    "GIGCO_STRIPE_API_KEY": "Stripe's secret key (`sk_…`/`rk_…`), required with `stripe`",
    "GIGCO_STRIPE_API_BASE": "another Stripe-API server (a test server such as localstripe)",
    "GIGCO_STRIPE_TIMEOUT_SECONDS": "one Stripe request's bound; 3 × it must be under half of "
    "`GIGCO_PAYMENT_LEASE_SECONDS`",
}
# Defaults said in words, where the Settings field's value would not say it.
SHOWN_DEFAULTS: dict[str, str] = {
    "GIGCO_DATABASE_URL": "SQLite under `GIGCO_DATA_DIR`",
    "GIGCO_READ_DATABASE_URL": "none (everything reads from the primary)",
    "GIGCO_BROKER_URL": "`sqla+sqlite:///` under `GIGCO_DATA_DIR`",
    "GIGCO_ADMIN_TOKEN": "none (operator endpoints refuse all)",
    "GIGCO_BROKER_SENTINEL_MASTER": "none",
    "GIGCO_DATA_DIR": "`./.gigco`",
    "GIGCO_LOG_LEVEL": "INFO",
    "GIGCO_FLOWER_BASIC_AUTH": "none (Flower refuses to start)",
    "GIGCO_TRACING": "on when an OTLP endpoint is set",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "none",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "none",
    "OTEL_SERVICE_NAME": "`gigco-api`, `gigco-worker`, `gigco-beat`",
    "GIGCO_RATE_LIMIT_SIGNUPS": "`20/minute`",
    "GIGCO_RATE_LIMIT_REQUESTS": "`600/minute`",
    "GIGCO_RATE_LIMIT_OPS_LOGINS": "`5/minute`",
    "GIGCO_RATE_LIMIT_STORAGE_URL": "the broker's Redis; memory with the embedded default",
    "GIGCO_TRUSTED_PROXY_HOPS": "0",
    "GIGCO_METRICS_TOKEN": "none (only the operator's token reads `/metrics`)",
    "GIGCO_RATE_LIMIT_WEBHOOK_SENDS": "`30/minute`",
    "GIGCO_PAYMENT_GATEWAY": "`simulated`",
    "GIGCO_STRIPE_API_KEY": "none",
    "GIGCO_STRIPE_API_BASE": "Stripe's own",
}
UNDOCUMENTED = "(undocumented)"


class _Reads(Mapping[str, str]):
    """An environment holding ``given`` that remembers every variable looked up in it."""

    def __init__(self, given: Mapping[str, str] | None = None) -> None:
        self.given = dict(given or {})
        self.names: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.names.append(key)
        return self.given[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


# Settings read only when another one chooses them (the Stripe gateway's).
CHOOSING = ({"GIGCO_PAYMENT_GATEWAY": "stripe", "GIGCO_STRIPE_API_KEY": "sk_test_docs"},)


def variables_read() -> list[str]:
    """Every environment variable ``load_settings`` reads, in the order it reads them (with
    the defaults, then with each choice that reads more)."""
    names: list[str] = []
    for given in ({}, *CHOOSING):
        env = _Reads(given)
        load_settings(env)
        names += env.names
    return list(dict.fromkeys(names))


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, tuple):
        return f"`{','.join(_shown(v) for v in value)}`" if value else "none"
    return "none" if value is None else f"`{value}`"


def documented() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every variable ``load_settings`` reads: MEANINGS'
    order first, then any it leaves out, marked UNDOCUMENTED."""
    read = variables_read()
    fields = {name: field for name, (field, _) in _parsers().items()}
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    rows = []
    for name in [*[n for n in MEANINGS if n in read], *[n for n in read if n not in MEANINGS]]:
        if name in SHOWN_DEFAULTS:
            default = SHOWN_DEFAULTS[name]
        elif name in fields:
            default = _shown(defaults[fields[name]])
        else:
            default = UNDOCUMENTED
        rows.append((name, default, MEANINGS.get(name, UNDOCUMENTED)))
    return rows


GATEWAYS = ("simulated", "stripe")
CALLS_PER_CHARGE = 3  # Stripe: look the intent up or create it, confirm it


def _gateway(env: Mapping[str, str], values: Mapping[str, object]) -> dict[str, object]:
    """The payment gateway and, for Stripe, its key, address and a timeout inside the lease."""
    name = (env.get("GIGCO_PAYMENT_GATEWAY") or "simulated").strip().lower()
    if name not in GATEWAYS:
        raise ConfigError(f"GIGCO_PAYMENT_GATEWAY must be one of {', '.join(GATEWAYS)}")
    found: dict[str, object] = {"payment_gateway": name}
    if name != "stripe":
        return found
    key = env.get("GIGCO_STRIPE_API_KEY") or ""
    if not key.startswith(("sk_", "rk_")):
        raise ConfigError(
            "GIGCO_STRIPE_API_KEY must be a Stripe secret key (sk_… or rk_…) when "
            "GIGCO_PAYMENT_GATEWAY=stripe"
        )
    found["stripe_api_key"] = key
    if env.get("GIGCO_STRIPE_API_BASE"):
        found["stripe_api_base"] = _url(
            "GIGCO_STRIPE_API_BASE", env["GIGCO_STRIPE_API_BASE"], ("http://", "https://")
        )
    timeout = values.get("stripe_timeout_seconds", Settings.stripe_timeout_seconds)
    lease = values.get("payment_lease_seconds", Settings.payment_lease_seconds)
    assert isinstance(timeout, float | int) and isinstance(lease, float | int)
    if CALLS_PER_CHARGE * timeout >= lease / 2:
        raise ConfigError(
            f"GIGCO_STRIPE_TIMEOUT_SECONDS ({timeout:g}) × {CALLS_PER_CHARGE} calls must stay "
            f"under half of GIGCO_PAYMENT_LEASE_SECONDS ({lease:g}), so that a charge ends "
            "well inside its claim"
        )
    return found

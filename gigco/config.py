"""Settings from ``GIGCO_*`` environment variables: the only reader of ``os.environ``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import limits


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every GigCo setting; durations are seconds."""

    database_url: str
    broker_url: str
    admin_token: str | None = None
    data_dir: str = ".gigco"
    offer_ttl_seconds: float = 86400
    opportunity_ttl_seconds: float = 900
    match_retry_base_seconds: float = 300
    match_max_rounds: int = 5
    review_window_seconds: float = 604800
    payment_max_attempts: int = 5
    payment_retry_base_seconds: float = 60
    # A claimed payment attempt keeps other runs away this long: longer than any gateway
    # call; a run that dies after its claim leaves the job due again when it ends.
    payment_lease_seconds: float = 60
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
    ops_secure_cookie: bool = True
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
    # Rate limits (api.md "Limits"), in flask-limiter's notation; None is off.
    rate_limit_signups: str | None = "20/minute"
    rate_limit_requests: str | None = "600/minute"
    # Refused /ops logins per client address (a brute-force guard on the operator's token).
    rate_limit_ops_logins: str | None = "5/minute"
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
    "GIGCO_PAYMENT_LEASE_SECONDS": "payment_lease_seconds",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "sweep_interval_seconds",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "stuck_step_grace_seconds",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "webhook_timeout_seconds",
    "GIGCO_WEBHOOK_SECRET_OVERLAP_SECONDS": "webhook_secret_overlap_seconds",
    "GIGCO_FEED_HOLD_SECONDS": "feed_hold_seconds",
    "GIGCO_BROKER_TIMEOUT_SECONDS": "broker_timeout_seconds",
    "GIGCO_HEALTH_STALL_SECONDS": "health_stall_seconds",
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
}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
_REDIS_BROKERS = ("redis://", "rediss://")
_RATE_LIMITS = {
    "GIGCO_RATE_LIMIT_SIGNUPS": "rate_limit_signups",
    "GIGCO_RATE_LIMIT_REQUESTS": "rate_limit_requests",
    "GIGCO_RATE_LIMIT_OPS_LOGINS": "rate_limit_ops_logins",
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
    values["database_url"] = _url(
        "GIGCO_DATABASE_URL",
        env.get("GIGCO_DATABASE_URL") or f"sqlite:///{data_path / 'gigco.db'}",
        ("postgresql", "sqlite"),
    )
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
    return Settings(**values)  # type: ignore[arg-type]

"""Settings from ``GIGCO_*`` environment variables: the only reader of ``os.environ``."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit


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
    webhook_endpoint_concurrency: int = 2
    webhook_max_endpoints: int = 10
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

    @property
    def embedded(self) -> bool:
        """True when running on the embedded SQLite default rather than PostgreSQL."""
        return self.database_url.startswith("sqlite")

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
    "GIGCO_WEBHOOK_ENDPOINT_CONCURRENCY": ("webhook_endpoint_concurrency", 1_000),
    "GIGCO_WEBHOOK_MAX_ENDPOINTS": ("webhook_max_endpoints", 10_000),
}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}


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


def _database_url(raw: str) -> str:
    url = host_list_as_query(_url("GIGCO_DATABASE_URL", raw, ("postgresql", "sqlite")))
    parts = urlsplit(url)
    hosts = [parts.netloc.rpartition("@")[2]] + [
        value
        for key, _, value in (p.partition("=") for p in parts.query.split("&"))
        if key == "host"
    ]
    for host in hosts:
        if not _PG_HOST.fullmatch(host):
            raise ConfigError(f"GIGCO_DATABASE_URL has a malformed host[:port], {host!r}")
    return url


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
    }
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
    values["flower_basic_auth"] = _flower_accounts(env.get("GIGCO_FLOWER_BASIC_AUTH") or "")
    level = (env.get("GIGCO_LOG_LEVEL") or "INFO").upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"GIGCO_LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}")
    values["log_level"] = level
    values.update(_tracing(env))
    return Settings(**values)  # type: ignore[arg-type]

"""Settings from GIGCO_* variables: the spec's defaults, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigco.config import ConfigError, Settings, load_settings

# The defaults of lifecycle.md's "Timers and configuration" table.
SPEC_TIMERS = {
    "GIGCO_OFFER_TTL_SECONDS": ("offer_ttl_seconds", 86400),
    "GIGCO_OPPORTUNITY_TTL_SECONDS": ("opportunity_ttl_seconds", 900),
    "GIGCO_MATCH_RETRY_BASE_SECONDS": ("match_retry_base_seconds", 300),
    "GIGCO_MATCH_MAX_ROUNDS": ("match_max_rounds", 5),
    "GIGCO_REVIEW_WINDOW_SECONDS": ("review_window_seconds", 604800),
    "GIGCO_PAYMENT_MAX_ATTEMPTS": ("payment_max_attempts", 5),
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": ("payment_retry_base_seconds", 60),
    "GIGCO_SWEEP_INTERVAL_SECONDS": ("sweep_interval_seconds", 30),
    "GIGCO_STUCK_STEP_GRACE_SECONDS": ("stuck_step_grace_seconds", 60),
}
COUNTS = {"GIGCO_MATCH_MAX_ROUNDS", "GIGCO_PAYMENT_MAX_ATTEMPTS"}
DURATIONS = set(SPEC_TIMERS) - COUNTS

BAD_VALUES = [
    *[(name, "soon") for name in sorted(DURATIONS)],
    *[(name, "0") for name in sorted(DURATIONS)],
    *[(name, "-5") for name in sorted(DURATIONS)],
    ("GIGCO_OFFER_TTL_SECONDS", "nan"),
    ("GIGCO_REVIEW_WINDOW_SECONDS", "inf"),
    ("GIGCO_SWEEP_INTERVAL_SECONDS", "30s"),
    *[(name, "2.5") for name in sorted(COUNTS)],
    *[(name, "0") for name in sorted(COUNTS)],
    *[(name, "-1") for name in sorted(COUNTS)],
    ("GIGCO_MATCH_MAX_ROUNDS", "five"),
    ("GIGCO_PAYMENT_MAX_ATTEMPTS", "1000"),
    ("GIGCO_DATABASE_URL", "mysql://db/gigco"),
    ("GIGCO_DATABASE_URL", "gigco.db"),
    ("GIGCO_DATABASE_URL", "postgresql://u@h1:5432,h2:x/db"),
    ("GIGCO_DATABASE_URL", "postgresql://u@h1:5432:1/db"),
    ("GIGCO_BROKER_URL", "http://127.0.0.1:6379"),
    ("GIGCO_BROKER_URL", "localhost:6379"),
    ("GIGCO_ADMIN_TOKEN", "short"),
    ("GIGCO_ADMIN_TOKEN", "x" * 15),
    ("GIGCO_LOG_LEVEL", "LOUD"),
    ("GIGCO_FLOWER_BASIC_AUTH", "ops"),
    ("GIGCO_FLOWER_BASIC_AUTH", "ops:short"),
    ("GIGCO_FLOWER_BASIC_AUTH", "ops:a-long-enough-pass,:nouser-password"),
    ("GIGCO_RATE_LIMIT_SIGNUPS", "fast"),
    ("GIGCO_RATE_LIMIT_SIGNUPS", "20"),
    ("GIGCO_RATE_LIMIT_SIGNUPS", "20/fortnight"),
    ("GIGCO_RATE_LIMIT_REQUESTS", "0/minute"),
    ("GIGCO_RATE_LIMIT_REQUESTS", "-5/minute"),
    ("GIGCO_RATE_LIMIT_OPS_LOGINS", "many"),
    ("GIGCO_RATE_LIMIT_STORAGE_URL", "localhost:6379"),
    ("GIGCO_TRUSTED_PROXY_HOPS", "-1"),
    ("GIGCO_TRUSTED_PROXY_HOPS", "one"),
    ("GIGCO_TRUSTED_PROXY_HOPS", "11"),
    ("GIGCO_METRICS_TOKEN", "short"),
]


def test_defaults_are_the_specs(tmp_path: Path) -> None:
    settings = load_settings({"GIGCO_DATA_DIR": str(tmp_path)})
    for field, default in SPEC_TIMERS.values():
        assert getattr(settings, field) == default, field
    assert settings.database_url == f"sqlite:///{tmp_path / 'gigco.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings.embedded
    assert settings.admin_token is None
    assert settings.log_level == "INFO"
    assert settings.data_dir == str(tmp_path)


def test_the_data_dir_defaults_to_dot_gigco_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.data_dir == str(tmp_path / ".gigco")
    assert settings.database_url == f"sqlite:///{tmp_path / '.gigco' / 'gigco.db'}"


def test_every_timer_variable_is_read() -> None:
    env = {name: ("7" if name in COUNTS else "2.5") for name in SPEC_TIMERS}
    settings = load_settings(env)
    for name, (field, _) in SPEC_TIMERS.items():
        expected = 7 if name in COUNTS else 2.5
        assert getattr(settings, field) == expected, name
    assert isinstance(settings.match_max_rounds, int)
    assert isinstance(settings.payment_max_attempts, int)


def test_production_settings_are_read() -> None:
    settings = load_settings(
        {
            "GIGCO_DATABASE_URL": "postgresql://gigco:secret@db:5432/gigco",
            "GIGCO_BROKER_URL": "redis://redis:6379/0",
            "GIGCO_ADMIN_TOKEN": "a-long-enough-operator-token",
            "GIGCO_LOG_LEVEL": "debug",
        }
    )
    assert settings == Settings(
        database_url="postgresql://gigco:secret@db:5432/gigco",
        broker_url="redis://redis:6379/0",
        admin_token="a-long-enough-operator-token",
        data_dir=settings.data_dir,
        log_level="DEBUG",
    )
    assert not settings.embedded


def test_an_empty_variable_means_the_default() -> None:
    settings = load_settings({name: "" for name in SPEC_TIMERS} | {"GIGCO_LOG_LEVEL": ""})
    assert settings.offer_ttl_seconds == 86400
    assert settings.match_max_rounds == 5
    assert settings.log_level == "INFO"


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=[f"{n}={v}" for n, v in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: value})
    message = str(raised.value)
    assert name in message
    assert "\n" not in message
    if name not in ("GIGCO_ADMIN_TOKEN", "GIGCO_FLOWER_BASIC_AUTH", "GIGCO_METRICS_TOKEN"):
        assert value in message or name.endswith(("_URL", "_LEVEL"))
    else:
        assert value not in message  # never echo a secret, even a bad one


def test_an_empty_variable_means_its_default() -> None:
    settings = load_settings(
        {"GIGCO_ADMIN_TOKEN": "", "GIGCO_FLOWER_BASIC_AUTH": "", "GIGCO_OFFER_TTL_SECONDS": ""}
    )
    assert (settings.admin_token, settings.flower_basic_auth) == (None, ())
    assert settings.offer_ttl_seconds == 86400


def test_flower_accounts_are_parsed() -> None:
    settings = load_settings(
        {"GIGCO_FLOWER_BASIC_AUTH": "ops:a-long-password, dev:another-password"}
    )
    assert settings.flower_basic_auth == ("ops:a-long-password", "dev:another-password")


def test_the_consoles_secure_cookie_is_on_unless_turned_off() -> None:
    base = {"GIGCO_DATABASE_URL": "postgresql://h/db"}
    assert load_settings(base).ops_secure_cookie is True
    assert load_settings({**base, "GIGCO_OPS_SECURE_COOKIE": "false"}).ops_secure_cookie is False
    assert load_settings({**base, "GIGCO_OPS_SECURE_COOKIE": "On"}).ops_secure_cookie is True
    with pytest.raises(ConfigError, match="GIGCO_OPS_SECURE_COOKIE must be true or false"):
        load_settings({**base, "GIGCO_OPS_SECURE_COOKIE": "maybe"})


def test_rate_limits_default_to_the_specs_and_each_accepts_off() -> None:
    defaults = load_settings({})
    assert (defaults.rate_limit_signups, defaults.rate_limit_requests) == (
        "20/minute",
        "600/minute",
    )
    off = load_settings({"GIGCO_RATE_LIMIT_SIGNUPS": "off", "GIGCO_RATE_LIMIT_REQUESTS": "OFF"})
    assert (off.rate_limit_signups, off.rate_limit_requests) == (None, None)
    tuned = load_settings({"GIGCO_RATE_LIMIT_REQUESTS": "10/second;1000/hour"})
    assert tuned.rate_limit_requests == "10/second;1000/hour"


PRODUCTION = {"GIGCO_DATABASE_URL": "postgresql://db/gigco"}


def test_the_rate_limits_count_on_the_brokers_redis_or_a_configured_one() -> None:
    on_redis = load_settings({**PRODUCTION, "GIGCO_BROKER_URL": "redis://r:6379/0"})
    assert on_redis.rate_limit_storage == "redis://r:6379/0"
    assert load_settings({}).rate_limit_storage == "memory://"  # gigco dev: one process
    rabbit = {**PRODUCTION, "GIGCO_BROKER_URL": "amqp://mq:5672//"}
    # Per-process counts would multiply every limit by the number of processes: say where.
    with pytest.raises(ConfigError, match="GIGCO_RATE_LIMIT_STORAGE_URL must name a Redis"):
        load_settings(rabbit)
    configured = load_settings({**rabbit, "GIGCO_RATE_LIMIT_STORAGE_URL": "redis://r:6379/1"})
    assert configured.rate_limit_storage == "redis://r:6379/1"
    off = {
        "GIGCO_RATE_LIMIT_SIGNUPS": "off",
        "GIGCO_RATE_LIMIT_REQUESTS": "off",
        "GIGCO_RATE_LIMIT_OPS_LOGINS": "off",
        "GIGCO_RATE_LIMIT_WEBHOOK_SENDS": "off",
    }
    assert load_settings({**rabbit, **off}).rate_limit_storage == "memory://"


def test_the_metrics_token_is_not_the_operators() -> None:
    token = "a-token-of-sixteen-or-more"
    with pytest.raises(ConfigError, match="GIGCO_METRICS_TOKEN must differ"):
        load_settings({"GIGCO_ADMIN_TOKEN": token, "GIGCO_METRICS_TOKEN": token})
    assert load_settings({"GIGCO_METRICS_TOKEN": token}).metrics_token == token


def test_stripe_needs_a_secret_key_and_a_timeout_well_inside_the_lease() -> None:
    stripe = {"GIGCO_PAYMENT_GATEWAY": "stripe", "GIGCO_STRIPE_API_KEY": "sk_test_x"}
    settings = load_settings(stripe | {"GIGCO_STRIPE_API_BASE": "http://127.0.0.1:8420"})
    assert (settings.payment_gateway, settings.stripe_api_base) == (
        "stripe",
        "http://127.0.0.1:8420",
    )
    assert load_settings({}).payment_gateway == "simulated"  # gigco dev needs no processor
    refused = [
        {"GIGCO_PAYMENT_GATEWAY": "paypal"},
        {"GIGCO_PAYMENT_GATEWAY": "stripe"},
        stripe | {"GIGCO_STRIPE_API_KEY": "pk_test_public"},
        stripe | {"GIGCO_STRIPE_TIMEOUT_SECONDS": "10"},  # 3 calls × 10 s ≥ half of 60 s
        stripe | {"GIGCO_PAYMENT_LEASE_SECONDS": "20"},
    ]
    for env in refused:
        with pytest.raises(ConfigError) as raised:
            load_settings(env)
        assert "\n" not in str(raised.value) and "sk_test_x" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gigco:s%40cret@10.0.0.1:5491,10.0.0.2:5492/gigco"
        "?target_session_attrs=read-write",
        "postgresql://gigco:s%40cret@/gigco"
        "?host=10.0.0.1:5491&host=10.0.0.2:5492&target_session_attrs=read-write",
    ],
)
def test_a_postgresql_host_list_reaches_libpq_in_either_form(url: str) -> None:
    # libpq's host list (what a PostgreSQL failover pair is given as) and SQLAlchemy's query
    # form both reach psycopg2 as one host list with its ports, in order, the rest kept.
    from gigco.db import make_engine

    settings = load_settings({"GIGCO_DATABASE_URL": url})
    engine = make_engine(settings.database_url)
    _, params = engine.dialect.create_connect_args(engine.url)
    assert params["host"] == "10.0.0.1,10.0.0.2"
    assert params["port"] == "5491,5492"
    assert params["dbname"] == "gigco"
    assert (params["user"], params["password"]) == ("gigco", "s@cret")
    assert params["target_session_attrs"] == "read-write"
    assert engine.url.render_as_string(hide_password=True).count("***") == 1


def test_a_single_host_url_is_kept_as_it_is() -> None:
    url = "postgresql://gigco:secret@db:5432/gigco?sslmode=require"
    assert load_settings({"GIGCO_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gigco:s%40cret@10.0.0.1:5491,10.0.0.2:5492/gigco"
        "?target_session_attrs=prefer-standby",
        "postgresql://gigco:s%40cret@/gigco"
        "?host=10.0.0.1:5491&host=10.0.0.2:5492&target_session_attrs=prefer-standby",
    ],
)
def test_a_read_replicas_url_takes_the_same_forms_and_its_engine_is_not_the_clock(
    url: str,
) -> None:
    from gigco import clock
    from gigco.db import make_engine

    primary = "postgresql://gigco@db:5432/gigco"
    settings = load_settings({"GIGCO_DATABASE_URL": primary, "GIGCO_READ_DATABASE_URL": url})
    assert load_settings({"GIGCO_DATABASE_URL": primary}).read_database_url is None
    calibrating = clock._calibrate
    assert settings.read_database_url is not None
    engine = make_engine(settings.read_database_url, replica=True)
    assert clock._calibrate is calibrating  # the primary's clock stays the one door
    _, params = engine.dialect.create_connect_args(engine.url)
    assert (params["host"], params["port"]) == ("10.0.0.1,10.0.0.2", "5491,5492")
    assert params["target_session_attrs"] == "prefer-standby"


@pytest.mark.parametrize(
    ("primary", "replica"),
    [
        ("", "postgresql://gigco@db2:5432/gigco"),  # the embedded SQLite default
        ("postgresql://gigco@db:5432/gigco", "sqlite:///replica.db"),
        ("postgresql://gigco@db:5432/gigco", "postgresql://gigco@db2:54x2/gigco"),
    ],
)
def test_a_read_replica_is_a_postgresql_standby_of_a_postgresql_primary(
    primary: str, replica: str
) -> None:
    env = {"GIGCO_DATABASE_URL": primary, "GIGCO_READ_DATABASE_URL": replica}
    with pytest.raises(ConfigError, match="GIGCO_READ_DATABASE_URL"):
        load_settings(env)

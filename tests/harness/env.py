"""What every live process of a test run shares: the operator's token and short timers."""

from __future__ import annotations

import os

ADMIN_TOKEN = "test-operator-token-0123456789"
# Short timers, so whole lifecycles run in seconds against the live worker, and a deadline
# fires on the real clock while a test watches (the real-time path of each kind). A test
# whose point is what a deadline does, not when, advances a test clock of the in-process
# kit instead (the ``gigco`` fixture, tests/harness/kit.py).
TIMERS = {
    "GIGCO_OFFER_TTL_SECONDS": "5",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "3",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "1",
    "GIGCO_MATCH_MAX_ROUNDS": "2",
    "GIGCO_REVIEW_WINDOW_SECONDS": "4",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "3",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "0.3",
    "GIGCO_START_GRACE_SECONDS": "1",
    "GIGCO_OVERRUN_FACTOR": "1",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "1",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "2",
    # Webhooks: receivers on 127.0.0.1, quick retries, a short timeout.
    "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "GIGCO_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "2",
    "GIGCO_WEBHOOK_DISABLE_AFTER": "3",
}


# The suite signs up and calls far faster than any person: limits it never meets, yet on, so
# that every request of every test is counted by the real limiter (tests/api/test_limits.py
# sets low ones where it floods on purpose).
UNMET_LIMITS = {
    "GIGCO_RATE_LIMIT_SIGNUPS": "1000000/minute",
    "GIGCO_RATE_LIMIT_REQUESTS": "1000000/minute",
    "GIGCO_RATE_LIMIT_OPS_LOGINS": "1000000/minute",
    "GIGCO_RATE_LIMIT_WEBHOOK_SENDS": "1000000/minute",
}


def server_url() -> str:
    """The PostgreSQL server beside which the run's database is made."""
    return os.environ.get(
        "GIGCO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def xdist_index() -> int:
    """This pytest-xdist worker's number (0 for ``gw0`` and for a run without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _own_database(url: str) -> str:
    """``url``'s Redis database counted down by this xdist worker's number (``/15`` is
    gw0's, ``/14`` gw1's …), so parallel workers never share a broker or a limit count."""
    base, _, db = url.rpartition("/")
    if not db.isdigit() or xdist_index() == 0:
        return url
    return f"{base}/{int(db) - xdist_index()}"


def redis_url() -> str:
    """The Redis database the run uses as its broker (flushed at the start)."""
    return _own_database(os.environ.get("GIGCO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))


def limits_redis_url() -> str:
    """The Redis database of the rate limits' counts (flushed by the tests that count)."""
    return _own_database(os.environ.get("GIGCO_TEST_LIMITS_REDIS_URL", "redis://127.0.0.1:6379/7"))


def limits_env() -> dict[str, str]:
    """Rate limits no test meets, counted in ``limits_redis_url()`` (on any broker)."""
    return {**UNMET_LIMITS, "GIGCO_RATE_LIMIT_STORAGE_URL": limits_redis_url()}


def live_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The GIGCO_* environment of a run's worker and app."""
    return {
        "GIGCO_DATABASE_URL": database_url,
        "GIGCO_BROKER_URL": broker_url,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        **TIMERS,
        **limits_env(),
        **extra,
    }

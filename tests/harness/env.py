"""What every live process of a test run shares: the operator's token and short timers."""

from __future__ import annotations

import os

ADMIN_TOKEN = "test-operator-token-0123456789"
# Short timers, so whole lifecycles run in seconds against the live worker.
TIMERS = {
    "GIGCO_OFFER_TTL_SECONDS": "5",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "3",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "1",
    "GIGCO_MATCH_MAX_ROUNDS": "2",
    "GIGCO_REVIEW_WINDOW_SECONDS": "4",
    "GIGCO_PAYMENT_MAX_ATTEMPTS": "3",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "0.3",
    "GIGCO_SWEEP_INTERVAL_SECONDS": "1",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "2",
    # Webhooks: receivers on 127.0.0.1, quick retries, a short timeout.
    "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "GIGCO_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
    "GIGCO_WEBHOOK_TIMEOUT_SECONDS": "2",
    "GIGCO_WEBHOOK_DISABLE_AFTER": "3",
}


def server_url() -> str:
    """The PostgreSQL server beside which the run's database is made."""
    return os.environ.get(
        "GIGCO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def redis_url() -> str:
    """The Redis database the run uses as its broker (flushed at the start)."""
    return os.environ.get("GIGCO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def live_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The GIGCO_* environment of a run's worker and app."""
    return {
        "GIGCO_DATABASE_URL": database_url,
        "GIGCO_BROKER_URL": broker_url,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        **TIMERS,
        **extra,
    }

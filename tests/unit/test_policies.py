"""Version 1 of the lifecycle policies is the defaults of its day, exactly as the code writes
them; rules added since are missing from it, and a job on it runs without them."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import gigco
from gigco.config import Settings
from gigco.lifecycle import policies
from gigco.lifecycle.cancel_fees import late_fee_cents
from gigco.models import Job, JobStatus

# Rules added after version 1 (issue 24): the defaults now have them, version 1 does not.
ADDED_SINCE = {
    *("withdrawals", "start_grace_seconds", "overrun_factor", "reliability_rank"),
    *("late_cancel_window_seconds", "late_cancel_fee_percent", "strike_window_seconds"),
}
MIGRATION = Path(gigco.__file__).parent / "migrations" / "versions" / "0013_lifecycle_policies.py"


def test_a_process_on_the_default_settings_finds_the_migrations_version_one() -> None:
    spec = importlib.util.spec_from_file_location("migration_0011", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    rates = {"plumbing": 4500, "cleaning": 3000}
    values, digest = migration.version_one(rates)
    defaults = Settings(database_url="sqlite://", broker_url="memory://")
    ours = policies.Policy.from_settings(defaults, rates).values()
    assert set(ours) - set(values) == ADDED_SINCE
    then = {key: value for key, value in ours.items() if key not in ADDED_SINCE}
    assert then == values
    assert policies.values_hash(then) == digest
    old = policies.Policy.of(1, values)
    # Version 1's jobs run without the rules added since: no withdrawals, no no-show, no
    # overrun flag.
    assert (old.withdrawals, old.start_grace_seconds, old.overrun_factor) == (False, None, None)
    # ... no late-cancellation fee, and (without reliability_rank) no strikes at all.
    assert (old.late_cancel_window_seconds, old.late_cancel_fee_percent) == (None, None)
    assert old.strike_window_seconds is None
    new = policies.Policy.from_settings(defaults, rates)
    assert (new.withdrawals, new.start_grace_seconds, new.overrun_factor) == (True, 1800, 2)
    assert (new.late_cancel_window_seconds, new.late_cancel_fee_percent) == (86400, 20)
    assert new.strike_window_seconds == 90 * 86400


def test_a_late_cancel_costs_nothing_on_a_job_with_no_policy() -> None:
    """A job the previous release created (no policy) was created before the fee's rule."""
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    job = Job(
        status=JobStatus.SCHEDULED,
        worker_id=1,
        subtotal_cents=10_000,
        scheduled_start=now + dt.timedelta(hours=1),
    )
    policy = policies.Policy.from_settings(
        Settings(database_url="sqlite://", broker_url="memory://"), {}
    )
    job.policy_version = 2
    assert late_fee_cents(job, policy, now) == 2_000  # 20 % within the day's window
    job.policy_version = None
    assert late_fee_cents(job, policy, now) == 0

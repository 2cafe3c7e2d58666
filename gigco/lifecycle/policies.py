"""Lifecycle policies: a job keeps the rules it was created under.

Every value that shapes one job's lifecycle — its timers, matching rounds and their retry
base, payment attempts and their retry base, the fee rate and the hourly rates it is priced
at, the late-cancellation fee's window and percent, the strikes' window — is captured when
the job is created as an immutable, numbered ``LifecyclePolicy`` row; the job points at it
(``policy_version``). A changed environment or new defaults make a new version for jobs
created afterwards; jobs in flight keep theirs. How often beat sweeps and
the stuck-step grace are operational settings, not policy.

Rows never change, so each process remembers them: the version for a set of values (creating
a job costs no round trip once the current values have a row) and the values of a version
(a step reads its job's policy without one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.pricing import FEE_RATE
from gigco.models import Category, Job, LifecyclePolicy


@dataclass(frozen=True)
class Policy:
    """The values one job runs under; ``version`` None for a job no policy was pinned to
    (created by a release before policies: it follows the running process's settings)."""

    version: int | None
    offer_ttl_seconds: float
    opportunity_ttl_seconds: float
    match_retry_base_seconds: float
    match_max_rounds: int
    review_window_seconds: float
    payment_max_attempts: int
    payment_retry_base_seconds: float
    fee_rate: Decimal
    hourly_rates: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Rules added after the first policies: a policy stored before them runs without them.
    withdrawals: bool = False  # the assigned worker may withdraw (worker_assigned, scheduled)
    start_grace_seconds: float | None = None  # None: a worker who does not come is waited for
    overrun_factor: float | None = None  # None: work that runs long is not flagged
    reliability_rank: bool = False  # matching ranks fewer strikes first within a rating
    # None: a consumer's cancel is free whenever it comes (``gigco.lifecycle.cancel_fees``).
    late_cancel_window_seconds: float | None = None
    late_cancel_fee_percent: float | None = None
    # None (with reliability_rank): every strike counts, however old.
    strike_window_seconds: float | None = None

    def rate_for(self, category: Category) -> int:
        """The hourly rate, in cents, a job in ``category`` is priced at under this policy."""
        return self.hourly_rates.get(category.name, category.hourly_rate_cents)

    def values(self) -> dict[str, Any]:
        """The values as stored and shown: JSON-ready, durations as floats, the fee rate as a
        decimal string (exact)."""
        return {
            "offer_ttl_seconds": float(self.offer_ttl_seconds),
            "opportunity_ttl_seconds": float(self.opportunity_ttl_seconds),
            "match_retry_base_seconds": float(self.match_retry_base_seconds),
            "match_max_rounds": int(self.match_max_rounds),
            "review_window_seconds": float(self.review_window_seconds),
            "payment_max_attempts": int(self.payment_max_attempts),
            "payment_retry_base_seconds": float(self.payment_retry_base_seconds),
            "fee_rate": str(self.fee_rate),
            "hourly_rates": {name: int(rate) for name, rate in sorted(self.hourly_rates.items())},
            "withdrawals": bool(self.withdrawals),
            "start_grace_seconds": (
                None if self.start_grace_seconds is None else float(self.start_grace_seconds)
            ),
            "overrun_factor": None if self.overrun_factor is None else float(self.overrun_factor),
            "reliability_rank": bool(self.reliability_rank),
            "late_cancel_window_seconds": _float(self.late_cancel_window_seconds),
            "late_cancel_fee_percent": _float(self.late_cancel_fee_percent),
            "strike_window_seconds": _float(self.strike_window_seconds),
        }

    @classmethod
    def of(cls, version: int | None, values: Mapping[str, Any]) -> Policy:
        """The policy a stored row's ``values`` describe."""
        return cls(
            version=version,
            offer_ttl_seconds=float(values["offer_ttl_seconds"]),
            opportunity_ttl_seconds=float(values["opportunity_ttl_seconds"]),
            match_retry_base_seconds=float(values["match_retry_base_seconds"]),
            match_max_rounds=int(values["match_max_rounds"]),
            review_window_seconds=float(values["review_window_seconds"]),
            payment_max_attempts=int(values["payment_max_attempts"]),
            payment_retry_base_seconds=float(values["payment_retry_base_seconds"]),
            fee_rate=Decimal(values["fee_rate"]),
            hourly_rates=dict(values.get("hourly_rates") or {}),
            withdrawals=bool(values.get("withdrawals", False)),
            start_grace_seconds=(
                None
                if values.get("start_grace_seconds") is None
                else float(values["start_grace_seconds"])
            ),
            overrun_factor=(
                None if values.get("overrun_factor") is None else float(values["overrun_factor"])
            ),
            reliability_rank=bool(values.get("reliability_rank", False)),
            late_cancel_window_seconds=_float(values.get("late_cancel_window_seconds")),
            late_cancel_fee_percent=_float(values.get("late_cancel_fee_percent")),
            strike_window_seconds=_float(values.get("strike_window_seconds")),
        )

    @classmethod
    def from_settings(cls, settings: Settings, hourly_rates: Mapping[str, int]) -> Policy:
        """The values a job created now gets: this process's settings, the code's fee rate
        and the categories' rates (no version yet)."""
        return cls(
            version=None,
            offer_ttl_seconds=settings.offer_ttl_seconds,
            opportunity_ttl_seconds=settings.opportunity_ttl_seconds,
            match_retry_base_seconds=settings.match_retry_base_seconds,
            match_max_rounds=settings.match_max_rounds,
            review_window_seconds=settings.review_window_seconds,
            payment_max_attempts=settings.payment_max_attempts,
            payment_retry_base_seconds=settings.payment_retry_base_seconds,
            fee_rate=FEE_RATE,
            hourly_rates=dict(hourly_rates),
            withdrawals=True,
            start_grace_seconds=settings.start_grace_seconds,
            overrun_factor=settings.overrun_factor,
            reliability_rank=True,
            late_cancel_window_seconds=settings.late_cancel_window_seconds,
            late_cancel_fee_percent=settings.late_cancel_fee_percent,
            strike_window_seconds=settings.strike_window_seconds,
        )


def _float(value: Any) -> float | None:
    """``value`` as a float; None stays None (a value the policy does not have)."""
    return None if value is None else float(value)


def values_hash(values: Mapping[str, Any]) -> str:
    """The sha256 of ``values``' canonical JSON: equal values, equal hash (the dedup key)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# (database URL, values hash) -> version, and (database URL, version) -> Policy: rows are
# immutable, so a remembered answer never goes stale. Keyed by the database too, as a test
# process talks to several.
_versions: dict[tuple[str, str], int] = {}
_policies: dict[tuple[str, int], Policy] = {}


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


def pin(session: Session, settings: Settings, hourly_rates: Mapping[str, int]) -> Policy:
    """The current policy (these settings and rates) with its version, written if new.

    Once this process knows the version for these values, no statement is run. Otherwise
    ``INSERT … SELECT max(version) + 1 … ON CONFLICT DO NOTHING`` and, when that wrote
    nothing, a read by hash: a concurrent writer of the same values makes this one a no-op,
    one of other values taking the same number makes it try the next number. On PostgreSQL
    this runs in a short transaction of its own, committed before the caller's job refers to
    the row, so the answer is remembered at once (and no caller's transaction waits on
    another's). SQLite has one writer, the caller's: there the row is written in the
    caller's transaction and remembered once seen committed.
    """
    policy = Policy.from_settings(settings, hourly_rates)
    values = policy.values()
    key = (_database(session), values_hash(values))
    known = _versions.get(key)
    if known is None:
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            with bind.engine.begin() as own:
                known, _ = _write(own, key[1], values)
        else:
            known, written = _write(session.connection(), key[1], values)
            if written:
                return dataclasses.replace(policy, version=known)
        _versions[key] = known
    return dataclasses.replace(policy, version=known)


def _write(conn: sa.Connection, digest: str, values: dict[str, Any]) -> tuple[int, bool]:
    """The version of the values hashed ``digest``, inserted if new; and whether it was."""
    for _ in range(10):
        params = {"h": digest, "v": values, "at": clock.now()}
        inserted = conn.execute(_insert_statement(conn), params).scalar_one_or_none()
        if inserted is not None:
            return inserted, True
        found = conn.scalar(
            sa.select(LifecyclePolicy.version).where(LifecyclePolicy.values_hash == digest)
        )
        if found is not None:
            return found, False
    raise RuntimeError("could not number a new lifecycle policy in ten tries")


def current(session: Session, settings: Settings) -> Policy:
    """The policy a job created now gets (the newest, for this process), written if new."""
    rates = session.execute(sa.select(Category.name, Category.hourly_rate_cents)).all()
    return pin(session, settings, {name: rate for name, rate in rates})


def _insert_statement(conn: sa.Connection) -> Any:
    """Insert the values under the next number unless the hash or the number is taken."""
    t = LifecyclePolicy.__table__
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    chosen = sa.select(
        sa.func.coalesce(sa.func.max(t.c.version), 0) + 1,
        sa.bindparam("h", type_=t.c.values_hash.type),
        sa.bindparam("v", type_=t.c["values"].type),
        sa.bindparam("at", type_=t.c.created_at.type),
    ).where(sa.true())  # SQLite reads INSERT … SELECT … ON CONFLICT only with a WHERE
    return (
        dialect.insert(t)
        .from_select(["version", "values_hash", "values", "created_at"], chosen)
        .on_conflict_do_nothing()
        .returning(t.c.version)
    )


def policy_of(session: Session, job: Job, settings: Settings) -> Policy:
    """The policy ``job`` runs under (a job without one: ``settings``, the live rates)."""
    if job.policy_version is None:
        return Policy.from_settings(settings, {})
    return load(session, job.policy_version)


def load(session: Session, version: int) -> Policy:
    """Policy ``version``; KeyError when there is none."""
    key = (_database(session), version)
    known = _policies.get(key)
    if known is None:
        row = session.get(LifecyclePolicy, version)
        if row is None:
            raise KeyError(version)
        known = _policies[key] = Policy.of(row.version, row.values)
        _newest[key[0]] = max(version, _newest.get(key[0], 0))
    return known


# database URL -> the newest version this process has loaded: the one most jobs in flight
# run under, which a step may assume in its compare-and-set (``newest_loaded``).
_newest: dict[str, int] = {}


def newest_loaded(session: Session) -> Policy | None:
    """The newest policy this process has loaded for this database (None: none yet): a
    guess at a job's policy that a step checks in its own compare-and-set
    (``Job.policy_version == bindparam("policy_guess")``), saving the read of the job's
    ``policy_version`` whenever the guess is right."""
    db = _database(session)
    version = _newest.get(db)
    return None if version is None else _policies[(db, version)]


def job_policy(session: Session, job_id: int, settings: Settings) -> Policy:
    """The policy of job ``job_id``: from its row when the session holds it, else one
    primary-key read of its ``policy_version`` alone (not the whole row and its category)."""
    held = session.identity_map.get(Session.identity_key(Job, job_id))
    if held is not None:
        return policy_of(session, held, settings)
    found = session.execute(sa.select(Job.policy_version).where(Job.id == job_id)).one_or_none()
    if found is None or found.policy_version is None:
        return Policy.from_settings(settings, {})
    return load(session, found.policy_version)

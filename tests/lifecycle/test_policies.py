"""Lifecycle policies as plain functions: one row per set of values, and the steps read the
job's policy, never the settings of the process that runs them."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import policies
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.models import Job, JobStatus, LifecyclePolicy
from tests import factories as f
from tests.harness.polling import race


def _policy_row(engine: sa.Engine, **changes: object) -> int:
    """A policy row of the defaults with ``changes``, under a number of its own, committed
    as the product writes them: processes remember a policy by its number, so a row written
    in a rolled-back transaction would leave its number remembered for values that the
    next policy written under that number does not have."""
    values = policies.Policy.from_settings(
        Settings(database_url="sqlite://", broker_url="memory://"), {}
    ).values()
    values.update(changes, nonce=uuid.uuid4().hex)  # a hash of its own
    with engine.begin() as conn:
        version, written = policies._write(conn, policies.values_hash(values), values)
    assert written
    return version


def test_concurrent_creators_of_new_values_write_one_policy(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    fresh = settings.replace(offer_ttl_seconds=1000 + uuid.uuid4().int % 10**6)

    def pin(_i: int) -> int | None:
        with sessions() as session, session.begin():
            return policies.pin(session, fresh, {"plumbing": 4500}).version

    # Each thread has no remembered answer, so each goes to the database.
    policies._versions.clear()
    versions = race(8, pin)
    assert len(set(versions)) == 1 and isinstance(versions[0], int), versions
    digest = policies.values_hash(policies.Policy.from_settings(fresh, {"plumbing": 4500}).values())
    with sessions() as session:
        rows = session.scalars(
            sa.select(LifecyclePolicy.version).where(LifecyclePolicy.values_hash == digest)
        ).all()
    assert rows == [versions[0]]


def test_pricing_and_the_offer_follow_the_jobs_policy_not_the_running_settings(
    session: Session, settings: Settings
) -> None:
    version = _policy_row(
        session.get_bind().engine,
        fee_rate="0.25",
        hourly_rates={"plumbing": 1000},
        offer_ttl_seconds=1234.0,
    )
    job = f.job(session, hours=2, policy_version=version)
    ctx = StepContext(settings=settings, now=clock.now())  # offer TTL 5 s, fee 10 %
    run_step(session, Step.PRICE, job.id, ctx)
    run_step(session, Step.SEND_OFFER, job.id, ctx)
    priced = session.get(Job, job.id, populate_existing=True)
    assert priced is not None and priced.status == JobStatus.OFFERED
    assert (priced.subtotal_cents, priced.fee_cents, priced.price_cents) == (2000, 500, 2500)
    assert priced.offer_expires_at is not None
    assert (priced.offer_expires_at - ctx.now).total_seconds() == 1234


def test_a_job_without_a_policy_follows_the_settings_that_run_it(
    session: Session, settings: Settings
) -> None:
    # A job the previous release created during a rolling deploy carries no policy.
    job = f.job(session, hours=2, policy_version=None)
    ctx = StepContext(settings=settings, now=clock.now())
    run_step(session, Step.PRICE, job.id, ctx)
    run_step(session, Step.SEND_OFFER, job.id, ctx)
    offered = session.get(Job, job.id, populate_existing=True)
    assert offered is not None and offered.offer_expires_at is not None
    assert (offered.offer_expires_at - ctx.now).total_seconds() == settings.offer_ttl_seconds
    assert offered.fee_cents == offered.subtotal_cents // 10  # type: ignore[operator]


def test_a_step_guessing_the_newest_policy_still_follows_an_older_jobs_own(
    session: Session, settings: Settings
) -> None:
    """``send_offer`` and ``request_reviews`` assume the newest policy this process has
    loaded, checked by their compare-and-set: a job on it costs no read of its
    ``policy_version``; a job on an older one is read and moved on its own policy."""
    engine = session.get_bind().engine
    older = _policy_row(engine, offer_ttl_seconds=1000.0, review_window_seconds=3000.0)
    newer = _policy_row(engine, offer_ttl_seconds=2000.0, review_window_seconds=4000.0)
    policies.load(session, older)
    policies.load(session, newer)  # the newest this process knows
    ctx = StepContext(settings=settings, now=clock.now())
    reads: list[str] = []

    def count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.startswith("SELECT jobs.policy_version"):
            reads.append(sql)

    sa.event.listen(session.connection(), "before_cursor_execute", count)
    try:
        for version, ttl, window in ((older, 1000, 3000), (newer, 2000, 4000)):
            reads.clear()
            offered = f.job(session, status=JobStatus.PRICED, policy_version=version)
            paid = f.job(session, status=JobStatus.PAID, policy_version=version)
            session.expunge_all()  # as in the worker: a step's session does not hold its job
            run_step(session, Step.SEND_OFFER, offered.id, ctx)
            run_step(session, Step.REQUEST_REVIEWS, paid.id, ctx)
            assert len(reads) == (2 if version == older else 0), version
            got = session.get(Job, offered.id, populate_existing=True)
            assert got is not None and got.offer_expires_at is not None
            assert (got.offer_expires_at - ctx.now).total_seconds() == ttl
            got = session.get(Job, paid.id, populate_existing=True)
            assert got is not None and got.review_deadline is not None
            assert (got.review_deadline - ctx.now).total_seconds() == window
    finally:
        sa.event.remove(session.connection(), "before_cursor_execute", count)

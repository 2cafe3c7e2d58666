"""A real Celery worker on the Stripe gateway, SIGKILLed after Stripe charged and before the
outcome was written: the next worker finds the PaymentIntent and records it, no second charge.

The worker runs on a database and broker of its own (a scratch database, Celery's SQLAlchemy
transport in it), so the run's shared worker (on the simulated gateway) never takes its task.
"""

from __future__ import annotations

import datetime as dt
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from gigco import processes
from gigco.db import make_engine, session_factory
from gigco.models import Job, JobStatus, PaymentAttempt
from tests import factories as f
from tests.harness.database import create_database, drop_database
from tests.harness.env import live_env, server_url
from tests.harness.polling import wait_for
from tests.harness.servers import start_worker, stop_worker
from tests.payments.conftest import API_KEY
from tests.payments.fault_proxy import Faults

S = JobStatus


@pytest.fixture
def scratch_database() -> Iterator[str]:
    name = f"gigco_stripe_{uuid.uuid4().hex[:8]}"
    yield create_database(server_url(), name)
    drop_database(server_url(), name)


def test_a_worker_killed_between_charging_and_recording_leaves_one_charge_found_and_recorded(
    scratch_database: str,
    proxied: tuple[str, Faults],
    stripe_server: str,
    tmp_path: Path,
) -> None:
    proxy, faults = proxied
    env = live_env(
        scratch_database,
        "sqla+" + scratch_database,
        GIGCO_PAYMENT_GATEWAY="stripe",
        GIGCO_STRIPE_API_KEY=API_KEY,
        GIGCO_STRIPE_API_BASE=proxy,
        GIGCO_STRIPE_TIMEOUT_SECONDS="1",
        GIGCO_PAYMENT_LEASE_SECONDS="8",
    )
    engine = make_engine(scratch_database)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        owner = f.consumer(s, payment_method="pm_card_visa")
        job = f.job(s, owner, status=S.COMPLETED, worker_id=f.worker(s).id)
        job.step_due_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)  # a stuck step
        job_id = job.id
    faults.next_on("/confirm", "lost")
    first = start_worker(env, tmp_path / "first.log")
    try:
        assert faults.forwarded.wait(timeout=60), (tmp_path / "first.log").read_text()[-2000:]
        processes.stop(first, sig=signal.SIGKILL)  # Stripe charged; nothing is recorded
        with sessions() as s:
            assert s.scalar(sa.select(sa.func.count()).where(PaymentAttempt.job_id == job_id)) == 0
    finally:
        processes.stop(first, sig=signal.SIGKILL)
        faults.release.set()
    second = start_worker(env, tmp_path / "second.log")
    try:

        def paid() -> bool:
            with sessions() as s:
                status = s.scalar(sa.select(Job.status).where(Job.id == job_id))
            return status in (S.PAID, S.REVIEW_PENDING, S.CLOSED)

        wait_for(paid, timeout=40, what="the next worker to record the charge")
    finally:
        stop_worker(second)
    with sessions() as s:
        attempts = s.execute(
            sa.select(PaymentAttempt.outcome, PaymentAttempt.idempotency_key).where(
                PaymentAttempt.job_id == job_id
            )
        ).all()
    engine.dispose()
    assert [(o.value, k) for o, k in attempts] == [("succeeded", f"job-{job_id}-intent-1")]
    intents = requests.get(
        f"{stripe_server}/v1/payment_intents", params={"limit": 100}, auth=(API_KEY, ""), timeout=5
    ).json()["data"]
    mine = [i for i in intents if i["metadata"].get("gigco_job") == f"job-{job_id}"]
    assert [i["status"] for i in mine] == ["succeeded"]
    assert faults.count("POST", "/confirm") == 1

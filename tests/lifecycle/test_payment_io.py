"""Payment and the gateway's I/O: no lock or transaction spans the call, an exception is an
attempt with outcome ``error``, and the charge happens once however runs overlap."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings
from gigco.lifecycle import payments
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import ChargeResult, SimulatedGateway
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.models import Job, JobStatus, PaymentAttempt, SimulatedCharge
from gigco.tasks import runtime as runtime_module
from gigco.tasks.runtime import Runtime
from gigco.tasks.steps import process_payment
from tests import factories as f
from tests.harness.env import ADMIN_TOKEN

S = JobStatus
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class DownGateway:
    """A gateway that cannot be reached (the test's stand-in for a refused connection)."""

    def __init__(self) -> None:
        self.calls = 0

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        self.calls += 1
        raise ConnectionRefusedError("gateway.example:443 refused the connection")

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        raise ConnectionRefusedError("gateway.example:443 refused the connection")


class SlowGateway:
    """The simulated processor behind a call that hangs until the test releases it."""

    def __init__(self, inner: SimulatedGateway) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the gateway"
        return self.inner.charge(
            idempotency_key=idempotency_key,
            amount_cents=amount_cents,
            payment_method=payment_method,
            reference=reference,
        )

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        return self.inner.refund(
            idempotency_key=idempotency_key, charge_id=charge_id, amount_cents=amount_cents
        )


def test_a_gateway_exception_is_an_error_attempt_backed_off_and_counted(
    session: Session, settings: Settings, isolated_app: Flask
) -> None:
    """... and its text (the exception, which may name hosts) is the operator's to read."""
    owner, owner_token = f.signed_up_consumer(session)
    worker, worker_token = f.signed_up_worker(session)
    job = f.job(session, owner, status=S.COMPLETED, worker_id=worker.id, step_due_at=T0)
    gateway = DownGateway()
    tight = settings.replace(payment_retry_base_seconds=60, payment_max_attempts=3)
    now, waits = T0, []
    for _ in range(2):
        (due,) = run_step(session, Step.PAY, job.id, StepContext(tight, gateway, now))
        session.refresh(job)
        assert job.status == S.COMPLETED and job.timer_at == due.at and due.at > now
        waits.append((due.at - now).total_seconds())
        now = due.at
    assert waits == [60, 120]
    assert run_step(session, Step.PAY, job.id, StepContext(tight, gateway, now)) == []
    session.refresh(job)
    assert (job.status, job.timer_at, gateway.calls) == (S.PAYMENT_FAILED, None, 3)
    attempts = session.scalars(
        sa.select(PaymentAttempt).where(PaymentAttempt.job_id == job.id)
    ).all()
    assert [(a.number, a.outcome.value) for a in attempts] == [
        (1, "error"),
        (2, "error"),
        (3, "error"),
    ]
    assert all("ConnectionRefusedError" in (a.detail or "") for a in attempts)
    client = isolated_app.test_client()
    read = {
        name: client.get(
            f"/v1/jobs/{job.id}/payment", headers={"Authorization": f"Bearer {token}"}
        ).get_data(as_text=True)
        for name, token in (
            ("consumer", owner_token),
            ("worker", worker_token),
            ("operator", ADMIN_TOKEN),
        )
    }
    assert "ConnectionRefusedError" in read["operator"]
    for party in ("consumer", "worker"):
        assert '"attempted_at"' in read[party], party
        assert "ConnectionRefusedError" not in read[party] and '"detail"' not in read[party], party


@pytest.fixture
def slow_runtime(
    settings: Settings, committed: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The task runtime on the test database, with a gateway that hangs until released."""
    rt = Runtime(settings)
    rt.gateway = SlowGateway(SimulatedGateway(rt.sessions))  # type: ignore[misc]
    monkeypatch.setattr(runtime_module, "_runtime", rt)
    yield rt
    rt.gateway.release.set()  # type: ignore[attr-defined]
    rt.dispose()


def _completed_job(sessions: sessionmaker[Session]) -> tuple[int, dict[str, str]]:
    with sessions() as s, s.begin():
        owner, token = f.signed_up_consumer(s)
        job = f.job(s, owner, status=S.COMPLETED, worker_id=f.worker(s).id)
        job.step_due_at = dt.datetime.now(dt.UTC)
        s.flush()
        return job.id, {"Authorization": f"Bearer {token}"}


def test_no_lock_is_held_while_the_gateway_hangs_and_the_charge_happens_once(
    slow_runtime: Runtime, app: Flask
) -> None:
    gateway: SlowGateway = slow_runtime.gateway  # type: ignore[assignment]
    job_id, headers = _completed_job(slow_runtime.sessions)
    first = threading.Thread(target=process_payment.run_step, args=(Step.PAY, job_id))
    first.start()
    try:
        assert gateway.entered.wait(timeout=15), "the payment step never reached the gateway"
        # The job's row is free: a step or an action could lock it at once.
        with slow_runtime.sessions() as s, s.begin():
            s.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            locked = s.execute(
                sa.select(Job.status).where(Job.id == job_id).with_for_update(nowait=True)
            ).scalar_one()
            assert locked == S.COMPLETED
        # The job and the feed answer while the gateway hangs.
        client = app.test_client()
        assert client.get(f"/v1/jobs/{job_id}", headers=headers).status_code == 200
        assert client.get("/v1/notifications/feed", headers=headers).status_code == 200
        # A concurrent run (a sweep's re-kick, a redelivery) finds the attempt claimed.
        process_payment.run_step(Step.PAY, job_id)
        assert gateway.calls == 1
    finally:
        gateway.release.set()
        first.join(timeout=30)
    assert not first.is_alive()
    with slow_runtime.sessions() as s:
        status = s.scalar(sa.select(Job.status).where(Job.id == job_id))
        assert status in (S.PAID, S.REVIEW_PENDING)  # review requests follow in the same task
        attempts = s.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.job_id == job_id)).all()
        assert [a.outcome.value for a in attempts] == ["succeeded"]
        charges = s.scalars(
            sa.select(SimulatedCharge).where(SimulatedCharge.reference == f"job-{job_id}")
        ).all()
        assert [(c.idempotency_key, bool(c.charge_id)) for c in charges] == [
            (f"job-{job_id}-intent-1", True)
        ]


def test_a_gateway_exception_in_the_worker_is_an_error_attempt_not_a_retry_loop(
    settings: Settings, committed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry an hour out, past the sweep's horizon: neither the step's own send nor a sweep
    # hands it to the run's live worker (whose gateway would pay) while this test reads.
    rt = Runtime(settings.replace(payment_retry_base_seconds=3600))
    rt.gateway = DownGateway()  # type: ignore[misc]
    monkeypatch.setattr(runtime_module, "_runtime", rt)
    try:
        job_id, _ = _completed_job(rt.sessions)
        process_payment.run_step(Step.PAY, job_id)  # raises nothing
        with rt.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None and job.status == S.COMPLETED
            assert job.timer_at is not None and job.timer_at > dt.datetime.now(dt.UTC)
            assert job.payment_attempts == 1 and job.step_due_at is None
            (attempt,) = s.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.job_id == job_id))
            assert attempt.outcome.value == "error"
    finally:
        rt.dispose()


@pytest.fixture
def task_runtime(
    settings: Settings, committed: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The task runtime on the test database with the simulated gateway, counting charges."""
    rt = Runtime(settings)
    rt.gateway = SlowGateway(SimulatedGateway(rt.sessions))  # type: ignore[misc]
    rt.gateway.release.set()  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime_module, "_runtime", rt)
    yield rt
    rt.dispose()


def test_a_retry_of_the_same_task_takes_its_claim_over_at_once_and_no_other_run_does(
    task_runtime: Runtime,
) -> None:
    """A charge step's database connection died just after its claim committed (nothing
    charged or recorded). Celery retries the task under its id: that retry charges at once
    instead of waiting out the lease; a run under another id (a sweep's re-kick) still waits."""
    gateway: SlowGateway = task_runtime.gateway  # type: ignore[assignment]
    job_id, _ = _completed_job(task_runtime.sessions)
    ctx = StepContext(settings=task_runtime.settings, now=dt.datetime.now(dt.UTC))
    with task_runtime.sessions() as s, s.begin():
        claim = payments.claim_payment(s, job_id, ctx, token="task-1")
    assert isinstance(claim, payments.Claim)  # committed; then the connection died

    process_payment.apply(args=[job_id], task_id="task-2")  # another run: the lease stands
    assert gateway.calls == 0
    process_payment.apply(args=[job_id], task_id="task-1")  # the retry: its own claim
    assert gateway.calls == 1
    with task_runtime.sessions() as s:
        status = s.scalar(sa.select(Job.status).where(Job.id == job_id))
        assert status in (S.PAID, S.REVIEW_PENDING)
        attempts = s.scalars(sa.select(PaymentAttempt).where(PaymentAttempt.job_id == job_id)).all()
        assert [(a.outcome.value, a.idempotency_key) for a in attempts] == [
            ("succeeded", claim.idempotency_key)
        ]

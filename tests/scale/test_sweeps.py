"""A backlog of 20k overdue timers: each sweep claims at most a batch, never the same twice;
a publish the broker refuses costs that one send, not the rest of the sweep."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from kombu import Connection
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.timers import LATE_CLAIM_CAP, due_timers, lost_after, stuck_steps
from gigco.lifecycle.unsent import release
from gigco.models import Job, JobEvent, Role, WebhookDelivery, WebhookEndpoint
from gigco.tasks import app as celery_app
from gigco.tasks import configure as configure_celery
from gigco.tasks import dispatch
from gigco.tasks.celery_settings import (
    RECOVERY_QUEUE,
    SWEEPS_QUEUE,
    WEBHOOK_QUEUE,
    celery_settings,
)
from gigco.tasks.names import DELIVER_TASK, SWEEP_TASK
from gigco.tasks.runtime import runtime
from gigco.tasks.sweeps import sweep as run_sweep
from tests import factories as f
from tests.brokers import fresh_vhost, rabbitmq_queue, rabbitmq_url
from tests.harness.polling import wait_for

BACKLOG, BATCH, HORIZON, GRACE = 20_000, 1000, 45.0, 60.0


def overdue_offers(session: Session, count: int, due: dt.datetime) -> None:
    owner = f.consumer(session)
    session.execute(
        sa.text(
            "INSERT INTO jobs (consumer_id, category_id, title, lat, lng, scheduled_start,"
            " scheduled_end, estimated_hours, status, currency, match_round, payment_attempts,"
            " event_seq, offer_expires_at, timer_at, created_at, updated_at)"
            " SELECT :owner, (SELECT id FROM categories WHERE name = 'plumbing'), 't', 52.5,"
            " 13.4, now(), now() + interval '1 hour', 1, 'offered', 'USD', 0, 0, 0, :due, :due,"
            " now(), now() FROM generate_series(1, :n)"
        ),
        {"owner": owner.id, "due": due, "n": count},
    )
    # Statistics as a table this size has in production (autovacuum analyzes it): after the
    # suite's tests emptied it, they would say ``jobs`` is empty, and plans would follow.
    session.execute(sa.text("ANALYZE jobs"))


def test_each_sweep_sends_at_most_a_batch_and_never_resends_until_it_could_be_lost(
    session: Session,
) -> None:
    now = clock.now()
    overdue_offers(session, BACKLOG, now - dt.timedelta(minutes=10))
    sent: list[int] = []
    for sweep in range(BACKLOG // BATCH):
        dues = due_timers(
            session, now=now, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=BATCH
        )
        assert len(dues) == BATCH, sweep
        assert {d.step for d in dues} == {Step.EXPIRE_OFFER}
        sent += [d.job_id for d in dues]
    assert len(set(sent)) == BACKLOG  # the backlog drains, each timer sent once
    assert (
        due_timers(session, now=now, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=BATCH)
        == []
    )
    # A fresh deadline is not stuck behind the backlog's re-sends: it is claimed first.
    fresh = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)
    # (Ten minutes late when sent, the backlog is re-sent ten minutes and a grace after.)
    later = now + dt.timedelta(minutes=10, seconds=GRACE + 1)
    first = due_timers(
        session, now=later, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=BATCH
    )
    assert first[0].job_id == fresh.id and len(first) == BATCH
    # Past a horizon plus the grace the rest are presumed lost and re-sent, a batch at a time.
    assert fresh.id not in {d.job_id for d in first[1:]}


# The plan PostgreSQL picks when its statistics say ``jobs`` is nearly empty (seen in a full
# run, after tests had emptied the table): the claim's subquery on the inner side of a nested
# loop, run again for every row the UPDATE scans.
NESTED_LOOP_ONLY = (
    "enable_hashjoin",
    "enable_hashagg",
    "enable_mergejoin",
    "enable_material",
    "enable_sort",
)


def test_a_sweep_claims_at_most_its_batch_whatever_plan_the_database_picks(
    session: Session,
) -> None:
    """Each re-run of a re-scanned claim would skip the rows the UPDATE had changed and lock
    the next batch: one sweep once claimed all 20,000 (and took a minute)."""
    for setting in NESTED_LOOP_ONLY:
        session.execute(sa.text(f"SET LOCAL {setting} = off"))
    now = clock.now()
    overdue_offers(session, BATCH * 3, now - dt.timedelta(minutes=10))
    dues = due_timers(session, now=now, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=BATCH)
    assert len(dues) == BATCH
    session.execute(sa.update(Job).values(timer_at=None, step_due_at=now - dt.timedelta(hours=1)))
    stuck = stuck_steps(session, now=now, grace_seconds=GRACE, batch=BATCH)
    assert len(stuck) == BATCH


def test_a_deadline_whose_message_died_is_sent_again_one_grace_after_it_was_due(
    session: Session,
) -> None:
    """The spec's bound after a crash: a worker that dies holding a deadline's ETA message
    delays it by at most one sweep interval plus the grace, not a horizon more."""
    now = clock.now()
    job = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)

    def swept(at: dt.datetime) -> list[int]:
        dues = due_timers(session, now=at, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=10)
        return [d.job_id for d in dues]

    assert swept(now) == [job.id]  # armed, and its message dies with the worker
    assert swept(now + dt.timedelta(seconds=GRACE - 0.5)) == []  # it may still be on its way
    again = now + dt.timedelta(seconds=GRACE + 0.5)
    assert swept(again) == [job.id]
    assert swept(again + dt.timedelta(seconds=1)) == []  # not every sweep
    # Re-sent late, it backs off: the next re-send waits as long as it was late, a grace more.
    late = dt.timedelta(seconds=GRACE + 0.5)
    assert swept(again + late + dt.timedelta(seconds=GRACE - 0.5)) == []
    assert swept(again + late + dt.timedelta(seconds=GRACE + 0.5)) == [job.id]


def test_a_lost_deadline_is_re_sent_by_the_last_sweep_before_it_is_a_grace_late(
    session: Session,
) -> None:
    """Sweeps ``INTERVAL`` apart: whatever their phase, the one that re-sends a deadline whose
    message died runs before the deadline is a grace late, so it fires within the grace (the
    spec's bound is an interval more)."""
    interval = GRACE / 4
    now = clock.now()
    job = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)

    def swept(at: dt.datetime) -> list[int]:
        dues = due_timers(
            session,
            now=at,
            horizon_seconds=HORIZON,
            grace_seconds=GRACE,
            batch=10,
            interval_seconds=interval,
        )
        return [d.job_id for d in dues]

    assert swept(now) == [job.id]  # armed, and its message dies with the worker
    lost = GRACE - interval
    assert swept(now + dt.timedelta(seconds=lost - 0.5)) == []  # it may still be on its way
    again = now + dt.timedelta(seconds=lost + 0.5)
    assert swept(again) == [job.id]
    assert swept(again + dt.timedelta(seconds=interval)) == []  # not again at the next sweep
    late = dt.timedelta(seconds=lost + 0.5)  # how late the re-send was: the back-off
    assert swept(again + late + dt.timedelta(seconds=lost - 0.5)) == []
    assert swept(again + late + dt.timedelta(seconds=lost + 0.5)) == [job.id]
    # A sweep slower than the grace re-sends no sooner than half a grace after the last.
    assert lost_after(GRACE, GRACE * 2) == GRACE / 2


def test_a_late_deadline_is_re_sent_at_ever_longer_intervals_not_every_grace(
    either_session: Session,
) -> None:
    """A backlog draining slower than the grace is not re-sent every grace (each copy of a
    message still queued delays the rest, and the drain never ends): a deadline two minutes
    overdue when sent waits two minutes more before it is re-sent, then as long as it is late
    by then; one three hours overdue waits at most ``LATE_CLAIM_CAP`` graces."""
    s = either_session
    now = clock.now()
    minutes, hours = dt.timedelta(minutes=2), dt.timedelta(hours=3)
    late = f.job(
        s, status=f.JobStatus.OFFERED, offer_expires_at=now - minutes, timer_at=now - minutes
    )
    later = f.job(s, status=f.JobStatus.OFFERED, offer_expires_at=now - hours, timer_at=now - hours)
    lost = dt.timedelta(seconds=lost_after(GRACE, 0))
    second = dt.timedelta(seconds=1)

    def swept(at: dt.datetime) -> set[int]:
        dues = due_timers(s, now=at, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=10)
        return {d.job_id for d in dues}

    assert swept(now) == {late.id, later.id}
    assert swept(now + lost + second) == set()  # still queued behind the backlog, maybe
    assert swept(now + minutes + lost - second) == set()
    first = now + minutes + lost + second
    assert swept(first) == {late.id}  # two minutes late when sent: two minutes more
    late_by = first - (now - minutes)
    assert swept(first + late_by + lost - second) == set()
    assert swept(first + late_by + lost + second) == {late.id}
    cap = dt.timedelta(seconds=GRACE * LATE_CLAIM_CAP)
    assert swept(now + cap + lost - second) == set()
    assert swept(now + cap + lost + second) == {later.id}  # three hours late: the cap


def test_an_unsent_late_claim_is_released_like_any_other(session: Session) -> None:
    """A sweep whose publish failed releases exactly the claims it wrote: a late deadline's
    (now plus how late) as well as an on-time one's (now); another sweep's is left alone."""
    now = clock.now()
    late = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)
    late.timer_at = late.offer_expires_at = now - dt.timedelta(minutes=5)
    on_time = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)
    other = f.job(session, status=f.JobStatus.OFFERED, offer_expires_at=now, timer_at=now)
    session.flush()
    claimed = due_timers(session, now=now, horizon_seconds=HORIZON, grace_seconds=GRACE, batch=10)
    assert {d.job_id for d in claimed} == {late.id, on_time.id, other.id}
    session.execute(
        sa.update(Job)
        .where(Job.id == other.id)
        .values(timer_armed_at=now + dt.timedelta(seconds=1))
    )
    ids = [late.id, on_time.id, other.id]
    assert release(session, timers=ids, claimed_at=now, grace_seconds=GRACE) == 2
    armed = dict(
        session.execute(sa.select(Job.id, Job.timer_armed_at).where(Job.id.in_(ids))).all()
    )
    assert armed[late.id] is None and armed[on_time.id] is None
    assert armed[other.id] is not None


def test_sweeps_run_on_their_own_queue_and_a_plain_worker_consumes_every_queue(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    config = celery_settings(settings)
    assert config["task_routes"][SWEEP_TASK] == {"queue": SWEEPS_QUEUE}
    names = {q.name for q in config["task_queues"]}
    assert config["task_routes"][DELIVER_TASK] == {"queue": WEBHOOK_QUEUE}
    assert names == {config["task_default_queue"], SWEEPS_QUEUE, RECOVERY_QUEUE, WEBHOOK_QUEUE}


LIVE_BACKLOG, FRESH_AHEAD = 1500, 5.0  # two sweep batches; a deadline due after both


def test_a_live_backlog_drains_and_a_new_deadline_still_fires_on_time(
    sessions: sessionmaker[Session],
    committed: None,
    live_worker: subprocess.Popen[bytes],
) -> None:
    """The real worker and beat (sweep every 1 s, batch 1,000): overdue offers drain, and an
    offer expiring a few seconds ahead expires within a second of its deadline meanwhile."""
    with sessions.begin() as s:
        overdue_offers(s, LIVE_BACKLOG, clock.now() - dt.timedelta(minutes=10))
        due = clock.now() + dt.timedelta(seconds=FRESH_AHEAD)
        fresh = f.job(s, status=f.JobStatus.OFFERED, offer_expires_at=due, timer_at=due)

    def fired() -> dt.datetime | None:
        with sessions() as s:
            return s.scalar(
                sa.select(JobEvent.created_at).where(
                    JobEvent.job_id == fresh.id, JobEvent.type == "expired"
                )
            )

    try:
        at = wait_for(fired, timeout=FRESH_AHEAD + 10, every=0.05, what="the fresh offer to expire")
        assert dt.timedelta(0) <= at - due <= dt.timedelta(seconds=1), at - due

        def left() -> int:
            with sessions() as s:
                return (
                    s.scalar(sa.select(sa.func.count()).where(Job.status == f.JobStatus.OFFERED))
                    or 0
                )

        wait_for(lambda: left() == 0, timeout=90, every=0.2, what="the backlog to drain")
    finally:
        # Leave the run's shared worker no queue of steps for rows the fixture truncates.
        from gigco.tasks import app

        app.control.purge()


@pytest.fixture
def sweeping_on_rabbitmq(
    settings: Settings, isolated_sessions: sessionmaker[Session]
) -> Iterator[str]:
    """Sweeps run in this process, inside the test's rolled-back transaction, and publish to
    a fresh RabbitMQ vhost that no worker consumes; yields its URL."""
    with fresh_vhost() as vhost:
        url = rabbitmq_url(vhost)
        app = configure_celery(settings.replace(broker_url=url))
        try:
            with Connection(url) as conn:  # what a worker declares at its start
                for queue in app.amqp.queues.values():
                    queue.bind(conn).declare()
            runtime().__dict__["sessions"] = isolated_sessions
            yield url
        finally:
            runtime().__dict__.pop("sessions", None)
            configure_celery(settings)


def test_a_publish_that_fails_skips_that_send_only_and_the_next_sweep_sends_it(
    session: Session, sweeping_on_rabbitmq: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sweeping_on_rabbitmq
    due = clock.now() - dt.timedelta(seconds=1)  # overdue, within the grace: the steps queue
    jobs = f.jobs(session, 4, status=f.JobStatus.OFFERED, offer_expires_at=due, timer_at=due)
    for n, job in enumerate(jobs):  # claimed in this order
        job.timer_at = job.offer_expires_at = due + dt.timedelta(milliseconds=n)
    victim = jobs[1]
    endpoint = WebhookEndpoint(
        owner_role=Role.CONSUMER, owner_id=victim.consumer_id, url="http://127.0.0.1:9/", secret="s"
    )
    session.add(endpoint)
    session.flush()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        msg_id="msg_unsent_test",
        event_type="ping",
        payload={},
        next_attempt_at=clock.now() - dt.timedelta(minutes=1),  # its task was lost
    )
    session.add(delivery)
    session.flush()

    # The broker fails the victim's publish for real: its message goes to a port where no
    # broker listens (kombu's OperationalError), through the seam GigCo's dispatch owns.
    real_publish = dispatch.publish
    nowhere = Connection("amqp://guest:guest@127.0.0.1:1//", connect_timeout=1)

    def publish(name: str, args: list[Any], **options: Any) -> None:
        if args == [victim.id]:
            celery_app.send_task(name, args=args, connection=nowhere, **options)
        real_publish(name, args, **options)

    monkeypatch.setattr(dispatch, "publish", publish)
    labels = {"queue": "celery"}
    failures = REGISTRY.get_sample_value("gigco_publish_failures_total", labels) or 0
    counts = run_sweep()
    assert counts["timers"] == 4 and counts["deliveries"] == 1
    assert (counts["sent"], counts["unsent"]) == (3 + 1, 1)
    assert REGISTRY.get_sample_value("gigco_publish_failures_total", labels) == failures + 1
    # The rest of the batch, and the delivery after it, reached the broker.
    assert rabbitmq_queue(url, "celery")[0] == 3
    assert rabbitmq_queue(url, WEBHOOK_QUEUE)[0] == 1
    armed = dict(
        session.execute(
            sa.select(Job.id, Job.timer_armed_at).where(Job.id.in_([j.id for j in jobs]))
        ).all()
    )
    assert armed[victim.id] is None  # released: the next sweep claims it again
    assert all(at is not None for job_id, at in armed.items() if job_id != victim.id)

    monkeypatch.setattr(dispatch, "publish", real_publish)  # the broker is whole again
    again = run_sweep()
    assert (again["timers"], again["sent"], again["unsent"]) == (1, 1, 0)
    assert rabbitmq_queue(url, "celery")[0] == 4
    assert session.scalar(sa.select(Job.timer_armed_at).where(Job.id == victim.id)) is not None

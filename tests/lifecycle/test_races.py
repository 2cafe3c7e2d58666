"""Signals that really race: threads released together, exactly one winner."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import actions, matching, steps
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.errors import DomainError
from gigco.lifecycle.principals import Principal
from gigco.models import (
    Job,
    JobEvent,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Role,
    Worker,
)
from tests import factories as f
from tests.harness.http import Api
from tests.harness.polling import race, wait_for

THREADS = 12


def test_many_parallel_accepts_of_one_offer_have_one_winner(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    consumer = api.consumer()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    clients = [app.test_client() for _ in range(THREADS)]
    codes = race(
        THREADS,
        lambda i: (
            clients[i]
            .post(f"/v1/jobs/{job_id}/offer/accept", headers=consumer["headers"])
            .status_code
        ),
    )
    assert Counter(codes) == {200: 1, 409: THREADS - 1}
    accepted = [e for e in api.events(job_id) if e["type"] == "accepted"]
    assert len(accepted) == 1


def test_one_workers_parallel_accepts_of_an_opportunity_have_one_winner(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    consumer, worker = api.consumer(), api.worker()
    job_id = api.post_job(consumer)["id"]
    api.wait_status(job_id, "offered")
    api.signal(job_id, "offer/accept", consumer)
    wait_for(
        lambda: api.client.get("/v1/opportunities", headers=worker["headers"]).json,
        what="an opportunity",
    )
    clients = [app.test_client() for _ in range(THREADS)]
    codes = race(
        THREADS,
        lambda i: (
            clients[i]
            .post(f"/v1/jobs/{job_id}/opportunity/accept", headers=worker["headers"])
            .status_code
        ),
    )
    assert codes.count(200) == 1
    assert set(codes) <= {200, 403, 409}
    assert [e["type"] for e in api.events(job_id)].count("worker_assigned") == 1


def _commit(sessions: sessionmaker[Session], fn: Callable[[Session], Any]) -> Any:
    with sessions() as s, s.begin():
        return fn(s)


def _offer_race(sessions: sessionmaker[Session], settings: Settings) -> None:
    deadline = clock.now() + dt.timedelta(seconds=1)
    job_id = _commit(
        sessions, lambda s: f.job(s, status=JobStatus.OFFERED, offer_expires_at=deadline).id
    )
    owner = _commit(sessions, lambda s: s.get(Job, job_id).consumer_id)  # type: ignore[union-attr]
    before = StepContext(settings=settings, now=deadline - dt.timedelta(microseconds=1))
    after = StepContext(settings=settings, now=deadline)

    def act(i: int) -> str:
        if i % 2:
            return _commit(
                sessions,
                lambda s: (
                    actions.accept_offer(s, job_id, Principal(Role.CONSUMER, owner), before)[
                        0
                    ].status.value
                ),
            )
        _commit(sessions, lambda s: steps.expire_offer(s, job_id, after))
        return "timer"

    results = race(6, act)
    final = _commit(sessions, lambda s: s.get(Job, job_id).status)  # type: ignore[union-attr]
    won = [r for r in results if r == "accepted"]
    losers = [r for r in results if isinstance(r, DomainError)]
    if final == JobStatus.ACCEPTED:
        assert len(won) == 1 and len(losers) == 2
    else:
        assert final == JobStatus.EXPIRED and won == [] and len(losers) == 3
    events = _commit(
        sessions, lambda s: s.scalar(sa.select(sa.func.count()).where(JobEvent.job_id == job_id))
    )
    assert events == 1


def test_an_accept_racing_the_offers_expiry_has_one_outcome(
    sessions: sessionmaker[Session], settings: Settings, committed: None
) -> None:
    for _ in range(10):
        _offer_race(sessions, settings)


def _opportunity_race(sessions: sessionmaker[Session], settings: Settings) -> None:
    expires = clock.now() + dt.timedelta(seconds=1)

    def setup(s: Session) -> tuple[int, int]:
        holder, _next = f.worker(s), f.worker(s)
        job = f.job(s, status=JobStatus.ACCEPTED, match_round=1, timer_at=expires)
        f.opportunity(s, job, holder, expires_at=expires)
        return job.id, holder.id

    job_id, holder = _commit(sessions, setup)
    before = StepContext(settings=settings, now=expires - dt.timedelta(microseconds=1))
    after = StepContext(settings=settings, now=expires)

    def act(i: int) -> str:
        if i % 2:
            return _commit(
                sessions,
                lambda s: (
                    actions.accept_opportunity(s, job_id, Principal(Role.WORKER, holder), before)[
                        0
                    ].status.value
                ),
            )
        _commit(sessions, lambda s: matching.match_job(s, job_id, after))
        return "timer"

    race(4, act)

    def read(s: Session) -> tuple[Job, list[Opportunity]]:
        opps = s.scalars(
            sa.select(Opportunity).where(Opportunity.job_id == job_id).order_by(Opportunity.id)
        ).all()
        return s.get(Job, job_id), list(opps)  # type: ignore[return-value]

    job, opps = _commit(sessions, read)
    first = opps[0].status
    if job.status == JobStatus.WORKER_ASSIGNED:
        assert (job.worker_id, first, len(opps)) == (holder, OpportunityStatus.ACCEPTED, 1)
    else:
        assert job.status == JobStatus.ACCEPTED and first == OpportunityStatus.EXPIRED
        assert [o.status for o in opps[1:]] == [OpportunityStatus.PENDING]


def test_an_opportunity_accept_racing_its_expiry_has_one_outcome(
    sessions: sessionmaker[Session], settings: Settings, committed: None
) -> None:
    for _ in range(5):
        _opportunity_race(sessions, settings)


def _withdraw_race(sessions: sessionmaker[Session], settings: Settings) -> None:
    def setup(s: Session) -> tuple[int, int, dt.datetime]:
        worker = f.worker(s)
        job = f.job(s, status=JobStatus.SCHEDULED, worker_id=worker.id)
        return job.id, worker.id, job.scheduled_start

    job_id, worker_id, start = _commit(sessions, setup)
    # Past the no-show deadline (scheduled_start + the start grace): both may act.
    ctx = StepContext(
        settings=settings, now=start + dt.timedelta(seconds=settings.start_grace_seconds + 1)
    )

    def act(i: int) -> str:
        if i % 2:
            return _commit(
                sessions,
                lambda s: (
                    actions.withdraw(s, job_id, Principal(Role.WORKER, worker_id), ctx)[
                        0
                    ].status.value
                ),
            )
        _commit(sessions, lambda s: steps.mark_no_show(s, job_id, ctx))
        return "timer"

    results = race(4, act)
    won = [r for r in results if r == "accepted"]
    losers = [r for r in results if isinstance(r, DomainError)]
    types = _commit(
        sessions,
        lambda s: list(s.scalars(sa.select(JobEvent.type).where(JobEvent.job_id == job_id))),
    )
    assert len(types) == 1, types  # one move out of scheduled, whoever made it
    if types == ["worker_withdrew"]:
        assert len(won) == 1 and len(losers) == 1, results
    else:
        assert types == ["worker_no_show"] and won == [] and len(losers) == 2, results
    counts = _commit(
        sessions,
        lambda s: s.execute(
            sa.select(Worker.withdrawals, Worker.no_shows).where(Worker.id == worker_id)
        ).one(),
    )
    assert tuple(counts) == ((1, 0) if won else (0, 1))


def test_a_withdrawal_racing_the_no_show_deadline_has_one_outcome(
    sessions: sessionmaker[Session], settings: Settings, committed: None
) -> None:
    for _ in range(10):
        _withdraw_race(sessions, settings)

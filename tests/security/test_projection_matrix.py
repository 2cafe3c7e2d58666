"""What each party sees of a job's history, from one table: gigco.lifecycle.projection.

Real lifecycles (steps and actions over the test's database) write every event type the code
can write; then each party reads ``GET /v1/jobs/<id>/events`` through the real app. For every
event and every party the shown data keys are exactly the table's cell (less the worker ids
the identity rule removes), the operator sees everything, and nobody else ever sees a
distance, a charge id, a refusal's detail or another worker's identity. The table must cover
exactly the event types the lifecycles wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import actions
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import SimulatedGateway
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import EVENT_FIELDS, JOB_FIELDS, Audience
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.models import Consumer, Job, JobEvent, JobStatus, Notification, Role
from tests import factories as f
from tests.harness.env import ADMIN_TOKEN

S = JobStatus
# Somewhere no other test's worker serves, so the candidates are the ones made here.
HERE = (-45.0, -140.0)
NEVER_SHOWN = ("distance_km", "charge_id", "detail")


@dataclass
class Party:
    """A caller: the principal, its bearer headers, and its audience on the job."""

    name: str
    who: Principal
    headers: dict[str, str]
    audience: Audience | None  # None: may not see the job at all


@dataclass
class Built:
    """A driven job and the parties around it."""

    job_id: int
    parties: list[Party] = field(default_factory=list)


class Driver:
    """Drives jobs through the product's own steps and actions at chosen times."""

    def __init__(self, session: Session, settings: Settings, sessions: sessionmaker[Session]):
        self.session = session
        self.settings = dataclasses.replace(
            settings, match_max_rounds=2, payment_max_attempts=2, review_window_seconds=3600
        )
        self.gateway = SimulatedGateway(sessions)
        self.now = clock.now()
        self.place = HERE

    def ctx(self, later: float = 0) -> StepContext:
        return StepContext(
            settings=self.settings,
            gateway=self.gateway,
            now=self.now + dt.timedelta(seconds=later),
        )

    def step(self, step: Step, job_id: int, later: float = 0) -> None:
        run_step(self.session, step, job_id, self.ctx(later))

    def worker(self) -> tuple[Principal, dict[str, str]]:
        w, token = f.signed_up_worker(self.session, at=self.place)
        return Principal(Role.WORKER, w.id), {"Authorization": f"Bearer {token}"}

    def consumer(self, method: str = "pm_card_visa") -> tuple[Principal, dict[str, str]]:
        c, token = f.signed_up_consumer(self.session, payment_method=method)
        return Principal(Role.CONSUMER, c.id), {"Authorization": f"Bearer {token}"}

    def offered(self, consumer: Principal) -> int:
        owner = self.session.get(Consumer, consumer.id)
        job = f.job(self.session, owner, at=self.place)
        self.session.execute(
            sa.insert(JobEvent).values(
                job_id=job.id,
                seq=1,
                type="created",
                to_status=S.DRAFT,
                actor=consumer.actor,
                data={"category": "plumbing", "estimated_hours": 2.0},
                created_at=self.now,
            )
        )
        self.session.execute(sa.update(Job).where(Job.id == job.id).values(event_seq=1))
        self.step(Step.PRICE, job.id)
        self.step(Step.SEND_OFFER, job.id)
        return job.id


def _operator() -> Party:
    return Party(
        "operator",
        Principal(Role.OPERATOR),
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        Audience.OPERATOR,
    )


def full_path(d: Driver) -> Built:
    """Offer accepted; one worker declines, one lets it expire, the third takes it; a flaky
    card is refused once and then paid; both review; closed."""
    consumer, c_headers = d.consumer("pm_card_flaky")
    decliner, dec_headers = d.worker()
    laggard, lag_headers = d.worker()
    taker, taker_headers = d.worker()
    job_id = d.offered(consumer)
    actions.accept_offer(d.session, job_id, consumer, d.ctx())
    d.step(Step.MATCH, job_id)  # offered to the decliner
    actions.decline_opportunity(d.session, job_id, decliner, d.ctx())
    d.step(Step.MATCH, job_id)  # offered to the laggard
    ttl = d.settings.opportunity_ttl_seconds
    d.step(Step.MATCH, job_id, later=ttl + 1)  # expired; offered to the taker
    actions.accept_opportunity(d.session, job_id, taker, d.ctx(ttl + 2))
    d.step(Step.SCHEDULE, job_id, later=ttl + 2)
    actions.start(d.session, job_id, taker, d.ctx(ttl + 3))
    actions.complete(d.session, job_id, taker, d.ctx(ttl + 4))
    d.settings = dataclasses.replace(d.settings, payment_max_attempts=5)
    for attempt in range(3):  # refused twice, then paid
        d.step(Step.PAY, job_id, later=ttl + 5 + attempt * 10_000)
    d.step(Step.REQUEST_REVIEWS, job_id, later=ttl + 40_000)
    d.settings = dataclasses.replace(d.settings, payment_max_attempts=2)
    for who in (consumer, taker):
        actions.submit_review(d.session, job_id, who, d.ctx(ttl + 40_001), rating=4, comment=None)
    d.step(Step.CLOSE, job_id, later=ttl + 40_002)
    return Built(
        job_id,
        [
            Party("consumer", consumer, c_headers, Audience.CONSUMER),
            Party("assigned worker", taker, taker_headers, Audience.ASSIGNED),
            Party("other worker (declined)", decliner, dec_headers, None),
            Party("other worker (expired)", laggard, lag_headers, None),
            _operator(),
        ],
    )


def matching(d: Driver) -> Built:
    """Matching in progress: one worker declined, another holds the opportunity now; the
    operator moves the job to the newest lifecycle policy."""
    consumer, c_headers = d.consumer()
    decliner, dec_headers = d.worker()
    holder, holder_headers = d.worker()
    job_id = d.offered(consumer)
    actions.accept_offer(d.session, job_id, consumer, d.ctx())
    d.step(Step.MATCH, job_id)
    actions.decline_opportunity(d.session, job_id, decliner, d.ctx())
    d.step(Step.MATCH, job_id)
    actions.upgrade_policy(d.session, job_id, Principal(Role.OPERATOR), d.ctx(), reason="rules")
    return Built(
        job_id,
        [
            Party("consumer", consumer, c_headers, Audience.CONSUMER),
            Party("candidate worker", holder, holder_headers, Audience.CANDIDATE),
            Party("other worker", decliner, dec_headers, None),
            _operator(),
        ],
    )


def no_worker(d: Driver) -> Built:
    """Nobody serves the place: two empty rounds, then no_worker."""
    consumer, c_headers = d.consumer()
    owner = d.session.get(Consumer, consumer.id)
    job = f.job(d.session, owner, at=(10.0, -30.0), status=S.OFFERED)
    job.offer_expires_at = d.now + dt.timedelta(hours=1)
    d.session.flush()
    actions.accept_offer(d.session, job.id, consumer, d.ctx())
    d.step(Step.MATCH, job.id)
    d.step(Step.MATCH, job.id, later=3600)
    return Built(job.id, [Party("consumer", consumer, c_headers, Audience.CONSUMER), _operator()])


def payment_failed(d: Driver) -> Built:
    """A card that is always declined: refused, payment_failed, the operator retries."""
    consumer, c_headers = d.consumer("pm_card_chargeDeclined")
    w, w_headers = d.worker()
    owner = d.session.get(Consumer, consumer.id)
    job = f.job(d.session, owner, at=d.place, status=S.IN_PROGRESS, worker_id=w.id)
    actions.complete(d.session, job.id, w, d.ctx())
    d.step(Step.PAY, job.id)
    d.step(Step.PAY, job.id, later=3600)
    actions.retry_payment(d.session, job.id, Principal(Role.OPERATOR), d.ctx(3601))
    return Built(
        job.id,
        [
            Party("consumer", consumer, c_headers, Audience.CONSUMER),
            Party("assigned worker", w, w_headers, Audience.ASSIGNED),
            _operator(),
        ],
    )


def ended_early(d: Driver, how: Callable[[Driver, int, Principal], None]) -> Built:
    consumer, c_headers = d.consumer()
    job_id = d.offered(consumer)
    how(d, job_id, consumer)
    return Built(job_id, [Party("consumer", consumer, c_headers, Audience.CONSUMER), _operator()])


def _expire(d: Driver, job_id: int, _: Principal) -> None:
    d.step(Step.EXPIRE_OFFER, job_id, later=d.settings.offer_ttl_seconds + 1)


def _reject(d: Driver, job_id: int, consumer: Principal) -> None:
    actions.reject_offer(d.session, job_id, consumer, d.ctx())


def _cancel(d: Driver, job_id: int, consumer: Principal) -> None:
    actions.cancel(d.session, job_id, consumer, d.ctx())


JOURNEYS: dict[str, Callable[[Driver], Built]] = {
    "full path": full_path,
    "matching": matching,
    "no worker": no_worker,
    "payment failed": payment_failed,
    "offer expired": lambda d: ended_early(d, _expire),
    "offer rejected": lambda d: ended_early(d, _reject),
    "cancelled": lambda d: ended_early(d, _cancel),
}


@pytest.fixture
def driven(
    session: Session, settings: Settings, isolated_sessions: sessionmaker[Session]
) -> dict[str, Built]:
    d = Driver(session, settings, isolated_sessions)
    built = {}
    for i, (name, journey) in enumerate(JOURNEYS.items()):
        d.place = (HERE[0] + i, HERE[1])  # a degree apart: no journey's workers serve another's
        built[name] = journey(d)
    session.flush()
    return built


def _stored(session: Session, job_id: int) -> list[JobEvent]:
    return list(
        session.scalars(sa.select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
    )


def _known_workers(party: Party, job: Job) -> set[int | None]:
    if party.who.role == Role.WORKER:
        return {party.who.id}
    return {job.worker_id} if job.worker_id is not None else set()


def _expected(event: JobEvent, party: Party, job: Job) -> tuple[dict[str, Any], str]:
    """What the table says ``party`` sees of ``event``: its data and its actor."""
    assert party.audience is not None
    data = dict(event.data or {})
    if party.audience == Audience.OPERATOR:
        return data, event.actor
    cell = EVENT_FIELDS[event.type][party.audience]
    shown = {k: v for k, v in data.items() if k in cell}
    if "worker_id" in shown and shown["worker_id"] not in _known_workers(party, job):
        del shown["worker_id"]
    kind, _, raw = event.actor.partition(":")
    actor = event.actor
    if raw and kind == "worker" and int(raw) not in _known_workers(party, job):
        actor = "worker"
    if raw and kind == "consumer" and party.who.role != Role.CONSUMER:
        actor = "consumer"
    return shown, actor


def test_the_table_covers_exactly_the_event_types_the_lifecycle_writes(
    session: Session, driven: dict[str, Built]
) -> None:
    written = set(
        session.scalars(
            sa.select(JobEvent.type).where(JobEvent.job_id.in_([b.job_id for b in driven.values()]))
        )
    )
    assert written == set(EVENT_FIELDS), written ^ set(EVENT_FIELDS)


def test_every_party_sees_each_event_as_the_table_says(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    client = isolated_app.test_client()
    seen_cells = 0
    for name, built in driven.items():
        job = session.get(Job, built.job_id, populate_existing=True)
        assert job is not None
        stored = _stored(session, built.job_id)
        for party in built.parties:
            r = client.get(f"/v1/jobs/{built.job_id}/events", headers=party.headers)
            if party.audience is None:
                assert r.status_code == 404, (name, party.name)
                continue
            assert r.status_code == 200, (name, party.name, r.get_json())
            shown = r.get_json()
            assert [e["seq"] for e in shown] == [e.seq for e in stored]
            for event, got in zip(stored, shown, strict=True):
                data, actor = _expected(event, party, job)
                where = (name, party.name, event.type)
                assert got["data"] == data, where
                assert got["actor"] == actor, where
                assert got["type"] == event.type
                seen_cells += 1
            if party.audience != Audience.OPERATOR:
                text = json.dumps(shown)
                assert not any(f'"{key}"' in text for key in NEVER_SHOWN), (name, party.name)
                for other in built.parties:
                    if other.who.role == Role.WORKER and other.who.id not in _known_workers(
                        party, job
                    ):
                        assert f"worker:{other.who.id}" not in text, (name, party.name)
    assert seen_cells > 100


def test_the_operator_sees_what_others_may_not(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    """The hidden keys exist in the stored events: the projection hides, not the writer."""
    built = driven["full path"]
    operator = built.parties[-1]
    text = json.dumps(
        isolated_app.test_client()
        .get(f"/v1/jobs/{built.job_id}/events", headers=operator.headers)
        .get_json()
    )
    assert all(f'"{key}"' in text for key in NEVER_SHOWN)


def test_unknown_event_types_fail_closed(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    built = driven["matching"]
    session.execute(
        sa.update(Job).where(Job.id == built.job_id).values(event_seq=Job.event_seq + 1)
    )
    seq = session.scalar(sa.select(Job.event_seq).where(Job.id == built.job_id))
    holder = built.parties[1]
    session.add(
        JobEvent(
            job_id=built.job_id,
            seq=seq,
            type="something_new",
            actor=holder.who.actor,
            data={"secret": 1, "worker_id": holder.who.id},
            created_at=clock.now(),
        )
    )
    session.flush()
    for party in built.parties:
        if party.audience is None:
            continue
        last = (
            isolated_app.test_client()
            .get(f"/v1/jobs/{built.job_id}/events", headers=party.headers)
            .get_json()[-1]
        )
        assert last["type"] == "something_new"
        if party.audience == Audience.OPERATOR:
            assert last["data"] == {"secret": 1, "worker_id": holder.who.id}
        else:
            assert last["data"] == {}, party.name
            assert last["actor"] == (holder.who.actor if party is holder else "worker")


def test_a_consumer_never_learns_distances_or_candidates(
    isolated_app: Flask, session: Session, settings: Settings, isolated_sessions: sessionmaker
) -> None:
    """The trilateration attack's precondition: post, accept, read the history, cancel."""
    d = Driver(session, settings, isolated_sessions)
    consumer, headers = d.consumer()
    candidates = [d.worker()[0] for _ in range(2)]
    client = isolated_app.test_client()
    for _ in range(3):
        job_id = d.offered(consumer)
        actions.accept_offer(session, job_id, consumer, d.ctx())
        d.step(Step.MATCH, job_id)
        session.flush()
        for path in (f"/v1/jobs/{job_id}/events", f"/v1/jobs/{job_id}", "/v1/notifications"):
            r = client.get(path, headers=headers)
            assert r.status_code == 200, r.get_json()
            text = json.dumps(r.get_json())
            assert "distance" not in text, path
            for worker in candidates:
                assert f"worker:{worker.id}" not in text
                assert f'"worker_id": {worker.id}' not in text, path
        actions.cancel(session, job_id, consumer, d.ctx())
    offered = session.scalars(
        sa.select(JobEvent).where(JobEvent.type == "opportunity_offered")
    ).all()
    assert offered and all("distance_km" in e.data for e in offered)  # stored, never shown


def test_replies_and_the_opportunity_listing_agree_with_the_job_projection(
    isolated_app: Flask, session: Session, settings: Settings, isolated_sessions: sessionmaker
) -> None:
    d = Driver(session, settings, isolated_sessions)
    d.place = (-20.0, -120.0)
    consumer, c_headers = d.consumer()
    worker, w_headers = d.worker()
    job_id = d.offered(consumer)
    actions.accept_offer(session, job_id, consumer, d.ctx())
    d.step(Step.MATCH, job_id)
    session.flush()
    client = isolated_app.test_client()
    (listed,) = client.get("/v1/opportunities", headers=w_headers).get_json()
    assert "distance_km" in listed  # the worker's own distance, from their own location
    hidden = {"consumer_id", "price_cents", "fee_cents", "offer_expires_at", "match_round"}
    assert not hidden & set(listed["job"])
    before = client.get(f"/v1/jobs/{job_id}", headers=w_headers).get_json()
    reply = client.post(f"/v1/jobs/{job_id}/opportunity/accept", headers=w_headers)
    assert reply.status_code == 200, reply.get_json()
    for shown in (before, reply.get_json()):
        assert set(shown) == JOB_FIELDS[Audience.ASSIGNED], (
            set(shown) ^ JOB_FIELDS[Audience.ASSIGNED]
        )
    assert reply.get_json()["subtotal_cents"] == listed["job"]["earnings_cents"]
    owner_view = client.get(f"/v1/jobs/{job_id}", headers=c_headers).get_json()
    assert hidden <= set(owner_view) and owner_view["worker_id"] == worker.id
    notes = client.get("/v1/notifications", headers=c_headers).get_json()
    assignment = next(n for n in notes if n["kind"] == "assignment")
    assert assignment["data"] == {"worker_id": worker.id}


def test_a_notification_of_an_unknown_kind_shows_no_data(
    isolated_app: Flask, session: Session, settings: Settings, isolated_sessions: sessionmaker
) -> None:
    d = Driver(session, settings, isolated_sessions)
    worker, w_headers = d.worker()
    session.add(
        Notification(worker_id=worker.id, kind="brand_new", message="Hi.", data={"lat": 1.0})
    )
    session.flush()
    (note,) = isolated_app.test_client().get("/v1/notifications", headers=w_headers).get_json()
    assert (note["kind"], note["data"]) == ("brand_new", {})

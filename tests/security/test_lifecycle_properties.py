"""Random interleavings of every signal, by every party, with the system's steps on a driven clock.

Signals go through HTTP (the Flask test client), so the web error mapping is under test too;
steps are called directly with ``StepContext(now=...)`` on a driven clock that jumps forward
when the machine says so (and never lags the real time that signals stamp), so offer,
opportunity, payment and review timers fire at random points. After every step the job's
history must be a gap-free sequence of moves that the transitions table allows, at most one
payment may have succeeded, at most one worker may hold the job, and no answer may be a 5xx.
Each example runs in a savepoint of the test's rolled-back transaction: a live worker that
gets the tasks the signals send finds no such job and does nothing.
"""

from __future__ import annotations

import datetime as dt

import hypothesis
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import PAYMENT_METHODS, SimulatedGateway
from gigco.lifecycle.schedule import STEP_FOR_STATUS, Step
from gigco.lifecycle.steps import run_step
from gigco.lifecycle.transitions import TRANSITIONS
from gigco.models import (
    AttemptOutcome,
    Job,
    JobEvent,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    SimulatedCharge,
)
from tests.harness.bodies import job_body
from tests.security.worlds import ASSIGNED_STATES, build

S = JobStatus
ACTIONS = (
    "offer/accept",
    "offer/reject",
    "cancel",
    "opportunity/accept",
    "opportunity/decline",
    "start",
    "complete",
    "withdraw",
    "reviews",
    "payment/retry",
)
# Who would plausibly act next in each state; the machine also sends every action as anyone.
NEXT_MOVES: dict[JobStatus, tuple[tuple[str, str], ...]] = {
    S.DRAFT: (("cancel", "owner"),),
    S.PRICED: (("cancel", "owner"),),
    S.OFFERED: (("offer/accept", "owner"), ("offer/reject", "owner"), ("cancel", "owner")),
    S.ACCEPTED: (
        ("opportunity/accept", "holder"),
        ("opportunity/decline", "holder"),
        ("cancel", "owner"),
    ),
    S.WORKER_ASSIGNED: (("cancel", "owner"), ("withdraw", "assigned")),
    S.SCHEDULED: (("start", "assigned"), ("cancel", "owner"), ("withdraw", "assigned")),
    S.IN_PROGRESS: (("complete", "assigned"),),
    S.PAYMENT_FAILED: (("payment/retry", "operator"),),
    S.REVIEW_PENDING: (("reviews", "owner"), ("reviews", "assigned")),
}
# The moves that take a job from draft to closed, the system's and the people's.
HAPPY_PATH: tuple[Step | tuple[str, str], ...] = (
    Step.PRICE,
    Step.SEND_OFFER,
    ("offer/accept", "owner"),
    Step.MATCH,
    ("opportunity/accept", "holder"),
    Step.SCHEDULE,
    ("start", "assigned"),
    ("complete", "assigned"),
    Step.PAY,
    Step.REQUEST_REVIEWS,
    ("reviews", "owner"),
)
# Seconds the clock may jump: around each of the test settings' timers (tests/harness/env.py).
JUMPS = (0.0, 0.1, 0.3, 0.7, 1.0, 2.0, 3.0, 4.5, 6.0, 30.0)
ANSWERS = {200, 201, 401, 403, 404, 409, 422}
# Callers: the two plumbers who could take the job are w1 and w2; "holder" and "assigned" in
# NEXT_MOVES name whichever of them holds the pending opportunity or has the job.
CALLERS = ("none", "bad", "owner", "other", "w1", "w2", "unrelated", "operator")


class LifecycleMachine(RuleBasedStateMachine):
    """One job, poked at random by people over HTTP and by the system's steps."""

    app: Flask
    connection: Connection
    sessions: sessionmaker[Session]
    settings: Settings

    def __init__(self) -> None:
        super().__init__()
        # Each example starts from the same database and leaves nothing behind.
        self.savepoint = self.connection.begin_nested()
        self.client: FlaskClient = self.app.test_client()
        self.gateway = SimulatedGateway(self.sessions)
        self.now = clock.now()
        self.job_id = 0
        self.headers: dict[str, dict[str, str]] = {}
        self.workers: dict[int, str] = {}

    def teardown(self) -> None:
        """Undo the example."""
        self.savepoint.rollback()

    @initialize(method=st.sampled_from(PAYMENT_METHODS), depth=st.integers(0, len(HAPPY_PATH)))
    def post_a_job(self, method: str, depth: int) -> None:
        """A consumer paying with ``method`` posts a job, taken ``depth`` moves down the happy path.

        Starting examples at every depth lets 25 random steps reach payment and reviews too.
        """
        with self.sessions() as s:
            world = build(s, S.DRAFT, payment_method=method)  # its own job stays a draft
            s.commit()
        self.headers = {
            **world.headers,
            "w1": world.headers["assigned"],
            "w2": world.headers["holder"],
        }
        self.workers = {world.ids["assigned"]: "w1", world.ids["holder"]: "w2"}
        r = self.client.post("/v1/jobs", json=job_body(), headers=self.headers["owner"])
        assert r.status_code == 201, r.json
        self.job_id = r.json["id"]
        for move in HAPPY_PATH[:depth]:
            if isinstance(move, Step):
                self._run(move)
            else:
                action, party = move
                self._send(action, party, 5)

    # --- people, over HTTP ----------------------------------------------------------------

    @rule(action=st.sampled_from(ACTIONS), party=st.sampled_from(CALLERS), rating=st.integers(1, 5))
    def anyone_does_anything(self, action: str, party: str, rating: int) -> None:
        """Any party sends any action, allowed or not."""
        self._send(action, party, rating)

    @rule(data=st.data())
    def the_right_party_acts(self, data: st.DataObject) -> None:
        """Someone entitled to move the job on in its current state tries to."""
        moves = NEXT_MOVES.get(self._status())
        if moves:
            action, party = data.draw(st.sampled_from(moves))
            self._send(action, party, data.draw(st.integers(1, 5)))

    @rule(party=st.sampled_from(CALLERS))
    def someone_reads(self, party: str) -> None:
        """Reads never fail with a 5xx either, whoever asks."""
        for tail in ("", "/events", "/payment", "/reviews"):
            r = self.client.get(f"/v1/jobs/{self.job_id}{tail}", headers=self._headers(party))
            assert r.status_code in {200, 401, 404}, (tail, party, r.status_code, r.json)

    # --- the system, on the driven clock ----------------------------------------------------

    @rule(seconds=st.sampled_from(JUMPS))
    def time_passes(self, seconds: float) -> None:
        """The clock moves on."""
        self.now += dt.timedelta(seconds=seconds)

    @rule()
    def the_due_step_runs(self) -> None:
        """What the worker would run next for the job's state."""
        step = STEP_FOR_STATUS.get(self._status())
        if step is not None:
            self._run(step)

    @rule(step=st.sampled_from(list(Step)))
    def any_step_runs(self, step: Step) -> None:
        """A step at any time (a redelivery, a sweeper re-kick) breaks no rule."""
        self._run(step)

    @rule()
    def the_next_timer_fires(self) -> None:
        """The clock jumps to the job's deadline and its step runs, as beat would make it."""
        with self.sessions() as s:
            job = s.get(Job, self.job_id)
            assert job is not None
            timer, status = job.timer_at, job.status
        if timer is not None and status in STEP_FOR_STATUS:
            self.now = max(self.now, timer)
            self._run(STEP_FOR_STATUS[status])

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def history_is_gap_free_and_follows_the_table(self) -> None:
        """Seqs run 1..n; each move is in TRANSITIONS; the moves chain to the job's status."""
        if not self.job_id:
            return
        with self.sessions() as s:
            job = s.get(Job, self.job_id)
            assert job is not None
            events = s.scalars(
                sa.select(JobEvent).where(JobEvent.job_id == self.job_id).order_by(JobEvent.id)
            ).all()
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert job.event_seq == len(events)
            moves = [e for e in events if e.to_status is not None]
            assert (moves[0].type, moves[0].from_status, moves[0].to_status) == (
                "created",
                None,
                S.DRAFT,
            )
            current = S.DRAFT
            for e in moves[1:]:
                assert e.from_status == current, (e.seq, e.type, current)
                assert e.to_status in TRANSITIONS[current], (e.seq, current, e.to_status)
                current = e.to_status
            assert job.status == current

    @invariant()
    def money_is_taken_at_most_once(self) -> None:
        """At most one succeeded attempt, one payment, one charge; a paid job has exactly one."""
        if not self.job_id:
            return
        with self.sessions() as s:
            succeeded = s.scalar(
                sa.select(sa.func.count()).where(
                    PaymentAttempt.job_id == self.job_id,
                    PaymentAttempt.outcome == AttemptOutcome.SUCCEEDED,
                )
            )
            payments = s.scalars(sa.select(Payment).where(Payment.job_id == self.job_id)).all()
            charges = s.scalars(
                sa.select(SimulatedCharge.charge_id).where(
                    SimulatedCharge.reference == f"job-{self.job_id}",
                    SimulatedCharge.charge_id.is_not(None),
                )
            ).all()
            status = s.scalar(sa.select(Job.status).where(Job.id == self.job_id))
        assert succeeded in (0, 1) and len(payments) <= 1
        if status in (S.PAID, S.REVIEW_PENDING, S.CLOSED):
            assert succeeded == 1 and payments[0].status == PaymentStatus.SUCCEEDED
            assert len(charges) == 1
        if succeeded == 0:
            assert charges == []

    @invariant()
    def one_worker_at_most(self) -> None:
        """One pending opportunity at a time; one accepted per assignment (a worker who
        withdrew or did not come keeps the opportunity they accepted, and the job goes back
        to matching); an assigned job has the worker of the latest accepted one."""
        if not self.job_id:
            return
        with self.sessions() as s:
            opps = s.scalars(sa.select(Opportunity).where(Opportunity.job_id == self.job_id)).all()
            job = s.get(Job, self.job_id)
            assert job is not None
            let_go = s.scalar(
                sa.select(sa.func.count()).where(
                    JobEvent.job_id == self.job_id,
                    JobEvent.type.in_(["worker_withdrew", "worker_no_show"]),
                )
            )
        pending = [o for o in opps if o.status == OpportunityStatus.PENDING]
        accepted = [o for o in opps if o.status == OpportunityStatus.ACCEPTED]
        assert len(pending) <= 1 and len(accepted) <= 1 + (let_go or 0)
        if job.status != S.ACCEPTED:
            assert pending == []
        if job.status in ASSIGNED_STATES:
            latest = max(accepted, key=lambda o: (o.responded_at, o.id))
            assert latest.worker_id == job.worker_id
        elif job.status != S.CANCELLED:
            assert job.worker_id is None

    # --- helpers ---------------------------------------------------------------------------

    def _status(self) -> JobStatus:
        with self.sessions() as s:
            status = s.scalar(sa.select(Job.status).where(Job.id == self.job_id))
        assert status is not None
        return status

    def _headers(self, party: str) -> dict[str, str]:
        """The caller's headers; "holder" and "assigned" are resolved from the database."""
        if party not in ("holder", "assigned"):
            return self.headers[party]
        with self.sessions() as s:
            if party == "holder":
                worker = s.scalar(
                    sa.select(Opportunity.worker_id).where(
                        Opportunity.job_id == self.job_id,
                        Opportunity.status == OpportunityStatus.PENDING,
                    )
                )
            else:
                worker = s.scalar(sa.select(Job.worker_id).where(Job.id == self.job_id))
        return self.headers[self.workers.get(worker or 0, "w1")]

    def _send(self, action: str, party: str, rating: int) -> None:
        path = f"/v1/jobs/{self.job_id}/{action}"
        body = {"rating": rating, "comment": "<b>ok</b>'; --"} if action == "reviews" else None
        r = self.client.post(path, json=body, headers=self._headers(party))
        assert r.status_code in ANSWERS, (action, party, r.status_code, r.get_data(as_text=True))
        if r.status_code == 200:
            assert r.json["status"] == self._status()

    def _run(self, step: Step) -> None:
        # Signals stamp the real time; the driven clock never runs behind it.
        self.now = max(self.now, clock.now())
        ctx = StepContext(settings=self.settings, gateway=self.gateway, now=self.now)
        with self.sessions() as s:
            run_step(s, step, self.job_id, ctx)
            s.commit()


@pytest.mark.timeout(300)
def test_no_interleaving_breaks_the_lifecycle(
    isolated_app: Flask,
    session: Session,
    isolated_sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    class Machine(LifecycleMachine):
        pass

    Machine.app, Machine.sessions, Machine.settings = isolated_app, isolated_sessions, settings
    Machine.connection = session.connection()
    run_state_machine_as_test(
        Machine,
        settings=hypothesis.settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

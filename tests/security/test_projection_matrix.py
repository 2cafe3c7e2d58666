"""What each party receives of a job, checked against expectations written here by hand.

Real lifecycles (steps and actions over the test's database) write every event type the code
can write, while every party has a webhook endpoint; then each party reads the job, its
history and its notifications over HTTP through the real app, and the webhook payloads the
outbox wrote for them are read back. Each must show a party exactly the fields this file's
tables say that role sees (what the spec asks: nobody but the operator sees a distance, a
charge id, a refusal's detail, a worker they may not know or another party's consumer id),
with the stored values; the operator sees everything. The tables are deliberately not the
product's (gigco.lifecycle.projection): a change there must be made here too, on purpose.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, joinedload, sessionmaker

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle import actions, disputes, policies
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.gateway import SimulatedGateway
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import (
    project_event,
    project_job,
    project_notification,
    project_opportunity,
    project_payment,
    project_review,
)
from gigco.lifecycle.schedule import Step
from gigco.lifecycle.steps import run_step
from gigco.models import (
    Consumer,
    Job,
    JobEvent,
    JobStatus,
    Notification,
    Opportunity,
    Payment,
    Review,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests import factories as f
from tests.harness.env import ADMIN_TOKEN

S = JobStatus
# Somewhere no other test's worker serves, so the candidates are the ones made here.
HERE = (-45.0, -140.0)
NEVER_SHOWN = ("distance_km", "charge_id", "detail", "refund_id")


def _keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The data keys of each history event type a role sees. A type not listed for a role shows
# that role no data; a worker id among them only when the role may know that worker.
_EVERY_WORKER_SEES = {
    "created": _keys("category estimated_hours"),
    "priced": _keys("subtotal_cents"),  # a worker's earnings: no fee, no price
    "matching_round_started": _keys("round"),
    "matching_round_ended": _keys("round next_round_at"),
    "opportunity_offered": _keys("worker_id round expires_at"),
    "opportunity_declined": _keys("worker_id round"),
    "opportunity_expired": _keys("worker_id round"),
    "no_worker": _keys("rounds"),
    "policy_upgraded": _keys("from_version to_version"),  # not the operator's reason
}
_SPLIT = "refund_cents refund_fee_cents refund_earnings_cents"
_DISPUTE_SEES = {
    "dispute_opened": _keys("dispute_id reason"),
    "dispute_resolved": _keys(f"dispute_id note {_SPLIT}"),
    "refunded": _keys(f"dispute_id {_SPLIT}"),  # not the processor's refund id
}
SEES: dict[str, dict[str, frozenset[str]]] = {
    "consumer": {
        "created": _keys("category estimated_hours"),
        "priced": _keys("subtotal_cents fee_cents price_cents"),
        "offered": _keys("offer_expires_at"),
        "expired": _keys("late_by_seconds"),
        "matching_round_started": _keys("round"),
        "matching_round_ended": _keys("round next_round_at"),
        "opportunity_offered": _keys("round expires_at"),  # not which worker, nor how far
        "opportunity_declined": _keys("round"),
        "opportunity_expired": _keys("round"),
        "no_worker": _keys("rounds"),
        "policy_upgraded": _keys("from_version to_version"),
        "worker_assigned": _keys("worker_id"),
        "worker_no_show": _keys("late_by_seconds"),  # not who (it names them to the operator)
        "overrun_flagged": _keys("expected_end late_by_seconds"),
        "payment_attempt_refused": _keys("attempt outcome"),  # not the gateway's detail
        "payment_failed": _keys("attempts"),
        "cancelled": _keys("late_cancel_fee_cents"),  # what a late cancel costs
        "late_cancel_fee_charged": _keys("amount_cents attempt"),  # not the charge id
        "late_cancel_fee_refused": _keys("attempt outcome"),  # not the gateway's detail
        "late_cancel_fee_failed": _keys("amount_cents attempts"),
        "paid": _keys("amount_cents attempt"),  # not the charge id
        "review_pending": _keys("review_deadline"),
        "review_received": _keys("rating author_role"),
        "closed": _keys("reviews"),
        **_DISPUTE_SEES,
    },
    "assigned": {
        **_EVERY_WORKER_SEES,
        "worker_assigned": _keys("worker_id opportunity_id"),
        "overrun_flagged": _keys("expected_end late_by_seconds"),
        "payment_attempt_refused": _keys("attempt"),
        "payment_failed": _keys("attempts"),
        "paid": _keys("attempt"),
        # A late cancel's fee is the assigned worker's earnings: they see it, not the outcome.
        "cancelled": _keys("late_cancel_fee_cents"),
        "late_cancel_fee_charged": _keys("earnings_cents attempt"),
        "late_cancel_fee_refused": _keys("attempt"),
        "late_cancel_fee_failed": _keys("earnings_cents attempts"),
        "review_pending": _keys("review_deadline"),
        "review_received": _keys("rating author_role"),
        "closed": _keys("reviews"),
        **_DISPUTE_SEES,  # how a refund splits is shown to both sides
    },
    "candidate": _EVERY_WORKER_SEES,
}
# Every event type the lifecycle writes; the journeys below write each of them.
EVENT_TYPES = set(SEES["consumer"]) | _keys(
    "rejected accepted cancelled scheduled in_progress completed payment_retry worker_withdrew"
)

# The job resource: its consumer and the operator see all of it; a worker sees what the
# opportunity listing shows (no consumer id, no price or fee, no offer, no matching round,
# no test clock).
JOB_FIELDS = _keys(
    "id consumer_id worker_id title description category location scheduled_start "
    "estimated_hours status subtotal_cents fee_cents price_cents currency offer_expires_at "
    "review_deadline match_round policy_version test_clock created_at updated_at"
)
WORKER_JOB_FIELDS = JOB_FIELDS - _keys(
    "consumer_id fee_cents price_cents offer_expires_at match_round test_clock"
)

# The data keys each notification kind shows its recipient (a worker id: see SEES).
NOTIFICATION_SEES = {
    "offer": _keys("price_cents offer_expires_at"),
    "opportunity": _keys("expires_at"),
    "assignment": _keys("worker_id"),
    "schedule": _keys("worker_id scheduled_start"),
    "payment_receipt": _keys("amount_cents earnings_cents"),
    "dispute_opened": _keys("reason"),
    "dispute_resolved": _keys(f"note {_SPLIT}"),
    "refund": _keys(_SPLIT),
    "withdrawal": frozenset(),  # not who withdrew
    "no_show": frozenset(),
    "overrun": _keys("expected_end"),
    "cancellation": _keys("late_cancel_fee_cents"),
    "late_cancel_fee": _keys("amount_cents earnings_cents"),
    "late_cancel_fee_failed": _keys("amount_cents earnings_cents"),
}


@dataclass
class Party:
    """A caller: who they are, their bearer headers, their role on the job (None: may not see
    it), the worker ids they may know, and their webhook endpoint."""

    name: str
    who: Principal
    headers: dict[str, str]
    role: str | None
    knows: frozenset[int] = frozenset()
    endpoint_id: int | None = None


@dataclass
class Built:
    """A driven job and the parties around it."""

    job_id: int
    parties: list[Party] = field(default_factory=list)


class Driver:
    """Drives jobs through the product's own steps and actions at chosen times; every party
    it makes registers a webhook endpoint first (over HTTP)."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: FlaskClient,
    ):
        self.session = session
        self.settings = dataclasses.replace(
            settings, match_max_rounds=2, payment_max_attempts=2, review_window_seconds=3600
        )
        self.gateway = SimulatedGateway(sessions)
        self.client = client
        self.now = clock.now()
        self.place = HERE
        self.endpoints: dict[Principal, int] = {}

    def ctx(self, later: float = 0) -> StepContext:
        return StepContext(
            settings=self.settings,
            gateway=self.gateway,
            now=self.now + dt.timedelta(seconds=later),
        )

    def step(self, step: Step, job_id: int, later: float = 0) -> None:
        run_step(self.session, step, job_id, self.ctx(later))

    def listen(self, who: Principal, headers: dict[str, str]) -> None:
        r = self.client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=headers
        )
        assert r.status_code == 201, r.get_json()
        self.endpoints[who] = r.get_json()["id"]

    def worker(self) -> tuple[Principal, dict[str, str]]:
        w, token = f.signed_up_worker(self.session, at=self.place)
        who, headers = Principal(Role.WORKER, w.id), {"Authorization": f"Bearer {token}"}
        self.listen(who, headers)
        return who, headers

    def consumer(self, method: str = "pm_card_visa") -> tuple[Principal, dict[str, str]]:
        c, token = f.signed_up_consumer(self.session, payment_method=method)
        who, headers = Principal(Role.CONSUMER, c.id), {"Authorization": f"Bearer {token}"}
        self.listen(who, headers)
        return who, headers

    def party(
        self,
        name: str,
        who: Principal,
        headers: dict[str, str],
        role: str | None,
        knows: set[int] | None = None,
    ) -> Party:
        return Party(name, who, headers, role, frozenset(knows or ()), self.endpoints.get(who))

    def operator(self) -> Party:
        who = Principal(Role.OPERATOR)
        return self.party("operator", who, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "operator")

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
            d.party("consumer", consumer, c_headers, "consumer", {taker.id}),
            d.party("assigned worker", taker, taker_headers, "assigned", {taker.id}),
            d.party("other worker (declined)", decliner, dec_headers, None, {decliner.id}),
            d.party("other worker (expired)", laggard, lag_headers, None, {laggard.id}),
            d.operator(),
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
            d.party("consumer", consumer, c_headers, "consumer"),
            d.party("candidate worker", holder, holder_headers, "candidate", {holder.id}),
            d.party("other worker", decliner, dec_headers, None, {decliner.id}),
            d.operator(),
        ],
    )


def withdrawn(d: Driver) -> Built:
    """Scheduled, then its worker withdraws: matching again offers it to another."""
    consumer, c_headers = d.consumer()
    quitter, q_headers = d.worker()
    holder, holder_headers = d.worker()
    job_id = d.offered(consumer)
    actions.accept_offer(d.session, job_id, consumer, d.ctx())
    d.step(Step.MATCH, job_id)  # offered to the quitter (ranked first: the lower id)
    actions.accept_opportunity(d.session, job_id, quitter, d.ctx(1))
    d.step(Step.SCHEDULE, job_id, later=1)
    actions.withdraw(d.session, job_id, quitter, d.ctx(2))
    d.step(Step.MATCH, job_id, later=2)  # offered to the other worker
    return Built(
        job_id,
        [
            # The consumer was told who the quitter was, and keeps knowing them in its history.
            d.party("consumer", consumer, c_headers, "consumer", {quitter.id}),
            d.party("candidate worker", holder, holder_headers, "candidate", {holder.id}),
            d.party("worker who withdrew", quitter, q_headers, None, {quitter.id}),
            d.operator(),
        ],
    )


def no_show(d: Driver) -> Built:
    """Scheduled, its worker never starts: past the start grace it is matched again."""
    consumer, c_headers = d.consumer()
    absent, a_headers = d.worker()
    holder, holder_headers = d.worker()
    job_id = d.offered(consumer)
    actions.accept_offer(d.session, job_id, consumer, d.ctx())
    d.step(Step.MATCH, job_id)  # offered to the absent worker (ranked first: the lower id)
    actions.accept_opportunity(d.session, job_id, absent, d.ctx(1))
    d.step(Step.SCHEDULE, job_id, later=1)
    job = d.session.get(Job, job_id)
    assert job is not None and job.timer_at is not None
    late = (job.timer_at - d.now).total_seconds() + 5
    d.step(Step.NO_SHOW, job_id, later=late)
    d.step(Step.MATCH, job_id, later=late)  # offered to the other worker
    return Built(
        job_id,
        [
            d.party("consumer", consumer, c_headers, "consumer", {absent.id}),
            d.party("candidate worker", holder, holder_headers, "candidate", {holder.id}),
            d.party("worker who did not come", absent, a_headers, None, {absent.id}),
            d.operator(),
        ],
    )


def overrun(d: Driver) -> Built:
    """Work runs past its expected end (flagged once), then completes."""
    consumer, c_headers = d.consumer()
    w, w_headers = d.worker()
    owner = d.session.get(Consumer, consumer.id)
    job = f.job(d.session, owner, at=d.place, status=S.IN_PROGRESS, worker_id=w.id)
    late = (job.scheduled_start - d.now).total_seconds() + float(job.estimated_hours) * 7200
    d.step(Step.OVERRUN, job.id, later=late)
    d.step(Step.OVERRUN, job.id, later=late + 60)  # run again: still flagged once
    actions.complete(d.session, job.id, w, d.ctx(late + 120))
    return Built(
        job.id,
        [
            d.party("consumer", consumer, c_headers, "consumer", {w.id}),
            d.party("assigned worker", w, w_headers, "assigned", {w.id}),
            d.operator(),
        ],
    )


def late_cancel(d: Driver, method: str) -> Built:
    """Scheduled; its consumer cancels an hour before the start: the fee is charged (a card
    that pays), or refused for the whole budget (one that declines) and the cancel stands."""
    consumer, c_headers = d.consumer(method)
    w, w_headers = d.worker()
    owner = d.session.get(Consumer, consumer.id)
    # On the policy a job created now gets: the fee is one of its rules.
    policy = policies.current(d.session, d.ctx().settings).version
    job = f.job(
        d.session, owner, at=d.place, status=S.SCHEDULED, worker_id=w.id, policy_version=policy
    )
    late = (job.scheduled_start - d.now).total_seconds() - 3600
    actions.cancel(d.session, job.id, consumer, d.ctx(late))
    d.step(Step.LATE_CANCEL_FEE, job.id, later=late + 1)
    d.step(Step.LATE_CANCEL_FEE, job.id, later=late + 600)  # the backoff's retry, if refused
    return Built(
        job.id,
        [
            d.party("consumer", consumer, c_headers, "consumer", {w.id}),
            d.party("assigned worker", w, w_headers, "assigned", {w.id}),
            d.operator(),
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
    return Built(job.id, [d.party("consumer", consumer, c_headers, "consumer"), d.operator()])


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
            d.party("consumer", consumer, c_headers, "consumer", {w.id}),
            d.party("assigned worker", w, w_headers, "assigned", {w.id}),
            d.operator(),
        ],
    )


def disputed(d: Driver) -> Built:
    """Paid, disputed by the consumer, resolved by the operator with a refund, refunded."""
    consumer, c_headers = d.consumer()
    w, w_headers = d.worker()
    owner = d.session.get(Consumer, consumer.id)
    job = f.job(d.session, owner, at=d.place, status=S.IN_PROGRESS, worker_id=w.id)
    actions.complete(d.session, job.id, w, d.ctx())
    d.step(Step.PAY, job.id)
    d.step(Step.REQUEST_REVIEWS, job.id)
    disputes.open_dispute(d.session, job.id, consumer, d.ctx(1), reason="Left a mess.")
    dispute = disputes.resolve_dispute(
        d.session, job.id, Principal(Role.OPERATOR), d.ctx(2), refund_cents=500, note="Cleaning."
    )
    assert disputes.take_refund(d.session, dispute.id, d.ctx(3))
    return Built(
        job.id,
        [
            d.party("consumer", consumer, c_headers, "consumer", {w.id}),
            d.party("assigned worker", w, w_headers, "assigned", {w.id}),
            d.operator(),
        ],
    )


def ended_early(d: Driver, how: Callable[[Driver, int, Principal], None]) -> Built:
    consumer, c_headers = d.consumer()
    job_id = d.offered(consumer)
    how(d, job_id, consumer)
    return Built(job_id, [d.party("consumer", consumer, c_headers, "consumer"), d.operator()])


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
    "withdrawn": withdrawn,
    "no show": no_show,
    "overrun": overrun,
    "payment failed": payment_failed,
    "cancelled late": lambda d: late_cancel(d, "pm_card_visa"),
    "late fee refused": lambda d: late_cancel(d, "pm_card_chargeDeclined"),
    "disputed": disputed,
    "offer expired": lambda d: ended_early(d, _expire),
    "offer rejected": lambda d: ended_early(d, _reject),
    "cancelled": lambda d: ended_early(d, _cancel),
}


@pytest.fixture
def driver(
    isolated_app: Flask,
    session: Session,
    settings: Settings,
    isolated_sessions: sessionmaker[Session],
) -> Driver:
    d = Driver(session, settings, isolated_sessions, isolated_app.test_client())
    d.listen(Principal(Role.OPERATOR), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return d


@pytest.fixture
def driven(session: Session, driver: Driver) -> dict[str, Built]:
    built = {}
    for i, (name, journey) in enumerate(JOURNEYS.items()):
        # A degree apart: no journey's workers serve another's.
        driver.place = (HERE[0] + i, HERE[1])
        built[name] = journey(driver)
    session.flush()
    return built


def _stored(session: Session, job_id: int) -> list[JobEvent]:
    return list(
        session.scalars(sa.select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
    )


def _check_data(
    party: Party, shown: dict[str, Any], stored: dict[str, Any], sees: frozenset[str], where: Any
) -> None:
    """``shown`` holds the stored values of the keys the table says the role sees, nothing
    else, and a worker id exactly when ``party`` may know that worker."""
    sees = sees & set(stored)
    assert set(shown) <= sees, (where, set(shown) - sees)  # must not see
    for key in sees - {"worker_id"}:  # must see
        assert shown.get(key, "missing") == stored[key], (*where, key)
    if "worker_id" in sees:
        assert ("worker_id" in shown) == (stored["worker_id"] in party.knows), where
        assert shown.get("worker_id", stored["worker_id"]) == stored["worker_id"], where


def _check_actor(party: Party, shown: str, stored: str, where: Any) -> None:
    """An actor's id shows only to a party who may know it: the worker ids it knows, a
    consumer's own."""
    kind, _, number = stored.partition(":")
    may_know = number != "" and (
        (kind == "worker" and int(number) in party.knows)
        or (kind == "consumer" and party.who == Principal(Role.CONSUMER, int(number)))
    )
    assert shown == (stored if not number or may_know else kind), where


def _check_event(party: Party, role: str, shown: dict[str, Any], event: JobEvent) -> None:
    """``shown`` is ``event`` as ``role`` may see it."""
    where = (party.name, role, event.type)
    stored = dict(event.data or {})
    assert (shown["seq"], shown["type"]) == (event.seq, event.type), where
    if role == "operator":
        assert (shown["data"], shown["actor"]) == (stored, event.actor), where
        return
    _check_data(party, shown["data"], stored, SEES[role].get(event.type, frozenset()), where)
    _check_actor(party, shown["actor"], event.actor, where)


def _check_job(role: str, job: dict[str, Any], where: Any) -> None:
    expected = JOB_FIELDS if role in ("operator", "consumer") else WORKER_JOB_FIELDS
    assert set(job) == expected, (where, set(job) ^ expected)


def test_the_journeys_write_every_event_type_the_expectations_cover(
    session: Session, driven: dict[str, Built]
) -> None:
    written = set(
        session.scalars(
            sa.select(JobEvent.type).where(JobEvent.job_id.in_([b.job_id for b in driven.values()]))
        )
    )
    assert written == EVENT_TYPES, written ^ EVENT_TYPES


def test_every_party_reads_the_job_and_its_history_as_its_role_may(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    client = isolated_app.test_client()
    seen_cells = 0
    for name, built in driven.items():
        stored = _stored(session, built.job_id)
        for party in built.parties:
            history = client.get(f"/v1/jobs/{built.job_id}/events", headers=party.headers)
            job = client.get(f"/v1/jobs/{built.job_id}", headers=party.headers)
            if party.role is None:
                assert (history.status_code, job.status_code) == (404, 404), (name, party.name)
                continue
            assert history.status_code == 200, (name, party.name, history.get_json())
            shown = history.get_json()
            assert len(shown) == len(stored), (name, party.name)
            for got, event in zip(shown, stored, strict=True):
                _check_event(party, party.role, got, event)
                seen_cells += 1
            _check_job(party.role, job.get_json(), (name, party.name))
            if party.role != "operator":
                assert job.get_json()["worker_id"] in party.knows | {None}, (name, party.name)
    assert seen_cells > 100


def test_every_party_s_webhooks_show_what_its_history_shows(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    """The outbox's payloads for each party's endpoint: the event as that party's history
    shows it (a worker no longer on the job: as the candidate, or the assigned worker, they
    were when it was sent), and the job."""
    client = isolated_app.test_client()
    for name, built in driven.items():
        stored = {e.seq: e for e in _stored(session, built.job_id)}
        for party in built.parties:
            assert party.endpoint_id is not None
            payloads = session.scalars(
                sa.select(WebhookDelivery.payload)
                .where(
                    WebhookDelivery.endpoint_id == party.endpoint_id,
                    WebhookDelivery.job_id == built.job_id,
                )
                .order_by(WebhookDelivery.seq)
            ).all()
            assert payloads, (name, party.name)
            if party.role in ("consumer", "operator"):
                # Every event but ``created``, which the driver writes by hand, not the product.
                written = sorted(seq for seq, e in stored.items() if e.type != "created")
                assert [p["data"]["seq"] for p in payloads] == written, (name, party.name)
            history = {}
            if party.role is not None:
                r = client.get(f"/v1/jobs/{built.job_id}/events", headers=party.headers)
                history = {e["seq"]: e for e in r.get_json()}
            for payload in payloads:
                sent = payload["data"]
                event = stored[sent["seq"]]
                assert payload["type"] == f"job.{event.type}"
                # A worker no longer on the job: as they were then (assigned, or a candidate).
                then = "assigned" if sent["job"]["worker_id"] == party.who.id else "candidate"
                _check_event(party, party.role or then, sent["event"], event)
                _check_job(party.role or then, sent["job"], (name, party.name))
                if party.role != "operator":
                    assert sent["job"]["worker_id"] in party.knows | {None}, (name, party.name)
                if party.role is not None:
                    assert sent["event"] == history[sent["seq"]], (name, party.name, event.type)


def test_every_party_s_notifications_show_only_what_their_kind_allows(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    """Read through the list: the feed hands out only rows of settled transactions, and this
    test's transaction is never committed (both show a notification through one projection)."""
    client = isolated_app.test_client()
    checked = 0
    for name, built in driven.items():
        for party in built.parties:
            if party.role is None or party.role == "operator":
                continue
            listed = client.get("/v1/notifications?page_size=100", headers=party.headers)
            assert listed.status_code == 200, listed.get_json()
            for note in listed.get_json():
                row = session.get(Notification, note["id"])
                assert row is not None
                sees = NOTIFICATION_SEES.get(note["kind"], frozenset())
                where = (name, party.name, note["kind"])
                _check_data(party, note["data"], dict(row.data or {}), sees, where)
                checked += 1
    assert checked > 10


def test_the_operator_sees_what_others_may_not(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    """The hidden keys exist in the stored events: the projection hides, not the writer."""
    text = ""
    for name in ("full path", "disputed"):
        built = driven[name]
        operator = built.parties[-1]
        text += json.dumps(
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
        if party.role is None:
            continue
        last = (
            isolated_app.test_client()
            .get(f"/v1/jobs/{built.job_id}/events", headers=party.headers)
            .get_json()[-1]
        )
        assert last["type"] == "something_new"
        if party.role == "operator":
            assert last["data"] == {"secret": 1, "worker_id": holder.who.id}
        else:
            assert last["data"] == {}, party.name
            assert last["actor"] == (holder.who.actor if party is holder else "worker")


def test_a_consumer_never_learns_distances_or_candidates(
    isolated_app: Flask, session: Session, driver: Driver
) -> None:
    """The trilateration attack's precondition: post, accept, read the history, cancel."""
    d = driver
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
    isolated_app: Flask, session: Session, driver: Driver
) -> None:
    d = driver
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
    assert not (JOB_FIELDS - WORKER_JOB_FIELDS) & set(listed["job"])
    before = client.get(f"/v1/jobs/{job_id}", headers=w_headers).get_json()
    reply = client.post(f"/v1/jobs/{job_id}/opportunity/accept", headers=w_headers)
    assert reply.status_code == 200, reply.get_json()
    for shown in (before, reply.get_json()):
        assert set(shown) == WORKER_JOB_FIELDS, set(shown) ^ WORKER_JOB_FIELDS
    assert reply.get_json()["subtotal_cents"] == listed["job"]["earnings_cents"]
    owner_view = client.get(f"/v1/jobs/{job_id}", headers=c_headers).get_json()
    assert set(owner_view) == JOB_FIELDS and owner_view["worker_id"] == worker.id
    notes = client.get("/v1/notifications", headers=c_headers).get_json()
    assignment = next(n for n in notes if n["kind"] == "assignment")
    assert assignment["data"] == {"worker_id": worker.id}


def test_a_notification_of_an_unknown_kind_shows_no_data(
    isolated_app: Flask, session: Session, driver: Driver
) -> None:
    worker, w_headers = driver.worker()
    session.add(
        Notification(worker_id=worker.id, kind="brand_new", message="Hi.", data={"lat": 1.0})
    )
    session.flush()
    (note,) = isolated_app.test_client().get("/v1/notifications", headers=w_headers).get_json()
    assert (note["kind"], note["data"]) == ("brand_new", {})


READERS = ("owner", "other consumer", "assigned", "candidate", "unrelated", "operator", "anon")


@dataclass
class Scene:
    """Two jobs of one consumer, the webhook endpoint of that consumer, and the readers.

    ``done``: paid after two refused attempts (the gateway's text names the card), reviewed
    by both sides, closed. ``open``: matching, ``candidate`` holds its opportunity.
    ``unrelated`` declined the done job's opportunity and holds nothing.
    """

    jobs: dict[str, int]
    endpoint: int
    who: dict[str, Principal | None]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def scene(session: Session, driver: Driver) -> Scene:
    d = driver
    d.place = (HERE[0] + 10, HERE[1])
    done = full_path(d)
    owner, assigned, decliner = done.parties[0], done.parties[1], done.parties[2]
    d.place = (HERE[0] + 11, HERE[1])
    open_id = d.offered(owner.who)
    actions.accept_offer(session, open_id, owner.who, d.ctx())
    candidate, candidate_headers = d.worker()
    d.step(Step.MATCH, open_id)
    other, other_headers = d.consumer()
    endpoint = WebhookEndpoint(
        owner_role=Role.CONSUMER, owner_id=owner.who.id, url="http://127.0.0.1:9/hook", secret="s"
    )
    session.add(endpoint)
    session.flush()
    session.add(
        WebhookDelivery(endpoint_id=endpoint.id, msg_id="msg_scene", event_type="ping", payload={})
    )
    session.flush()
    operator = d.operator()
    return Scene(
        jobs={"done": done.job_id, "open": open_id},
        endpoint=endpoint.id,
        who={
            "owner": owner.who,
            "other consumer": other,
            "assigned": assigned.who,
            "candidate": candidate,
            "unrelated": decliner.who,
            "operator": operator.who,
            "anon": None,
        },
        headers={
            "owner": owner.headers,
            "other consumer": other_headers,
            "assigned": assigned.headers,
            "candidate": candidate_headers,
            "unrelated": decliner.headers,
            "operator": operator.headers,
            "anon": {},
        },
    )


Shows = Callable[[Session, Job | None, Principal, Any], None]


def _a_job(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    assert job is not None
    assert body == project_job(job, who)


def _history(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    assert job is not None
    assert body == [project_event(e, job, who) for e in _stored(session, job.id)]


def _payment(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    assert job is not None
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == job.id))
    assert payment is not None
    assert body == project_payment(payment, job, who)


def _reviews(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    assert job is not None
    reviews = session.scalars(sa.select(Review).where(Review.job_id == job.id).order_by(Review.id))
    assert body == [project_review(r, job, who) for r in reviews]


def _jobs(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    for shown in body:
        listed = session.get(Job, shown["id"])
        assert listed is not None
        assert shown == project_job(listed, who)


def _opportunities(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    for shown in body:
        loads = [joinedload(Opportunity.job), joinedload(Opportunity.worker)]
        opp = session.get(Opportunity, shown["id"], options=loads)
        assert opp is not None
        projected = project_opportunity(opp, who)
        assert {k: v for k, v in shown.items() if k != "job"} == {
            k: v for k, v in projected.items() if k != "job"
        }
        renamed = {"earnings_cents": "subtotal_cents"}
        summary = {renamed.get(k, k): v for k, v in shown["job"].items()}
        assert summary.items() <= projected["job"].items()


def _notifications(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    for shown in body:
        note = session.get(Notification, shown["id"])
        assert note is not None
        assert shown["data"] == project_notification(note, who)


def _nothing_more(session: Session, job: Job | None, who: Principal, body: Any) -> None:
    """Not about one job: only the leak check below applies."""


@dataclass(frozen=True)
class Read:
    """One GET route (as the URL map spells it), the job its path names, and each reader's
    status code; ``shows`` checks a 200's body against the projection."""

    rule: str
    job: str | None
    codes: dict[str, int]
    shows: Shows | None

    @property
    def id(self) -> str:
        return f"{self.rule} [{self.job}]" if self.job else self.rule


def read(rule: str, job: str | None, codes: str, shows: Shows | None = _nothing_more) -> Read:
    """A row: ``codes`` in the order of READERS."""
    parsed = [int(c) for c in codes.split()]
    assert len(parsed) == len(READERS), rule
    return Read(rule, job, dict(zip(READERS, parsed, strict=True)), shows)


RJ = "/v1/jobs/<id:job_id>"
RW = "/v1/webhook-endpoints/<id:endpoint_id>"
# fmt: off
READS = [
    #    rule                          job     own oth asg cnd unr op  anon
    read("/v1/jobs",                   None,   "200 200 200 200 200 200 401", _jobs),
    read(RJ,                           "done", "200 404 200 404 404 200 401", _a_job),
    read(RJ,                           "open", "200 404 404 200 404 200 401", _a_job),
    read(RJ + "/events",               "done", "200 404 200 404 404 200 401", _history),
    read(RJ + "/events",               "open", "200 404 404 200 404 200 401", _history),
    read(RJ + "/payment",              "done", "200 404 200 404 404 200 401", _payment),
    read(RJ + "/payment",              "open", "404 404 404 404 404 404 401", _payment),
    read(RJ + "/reviews",              "done", "200 404 200 404 404 200 401", _reviews),
    read(RJ + "/reviews",              "open", "200 404 404 200 404 200 401", _reviews),
    # Neither job is disputed (tests/api/test_disputes.py reads a dispute as each party).
    read(RJ + "/dispute",              "done", "404 404 404 404 404 404 401"),
    read("/v1/opportunities",          None,   "403 403 200 200 200 403 401", _opportunities),
    read("/v1/notifications",          None,   "200 200 200 200 200 403 401", _notifications),
    read("/v1/notifications/feed",     None,   "200 200 200 200 200 403 401", _notifications),
    read("/v1/me",                     None,   "200 200 200 200 200 200 401"),
    read("/v1/workers/<id:worker_id>", None,   "200 200 200 200 200 200 401"),
    read("/v1/categories",             None,   "200 200 200 200 200 200 200"),
    read("/v1/webhook-endpoints",      None,   "200 200 200 200 200 200 401"),
    read(RW,                           None,   "200 404 404 404 404 404 401"),
    read(RW + "/deliveries",           None,   "200 404 404 404 404 404 401"),
    read("/livez",                     None,   "200 200 200 200 200 200 200"),
    read("/readyz",                    None,   "200 200 200 200 200 200 200"),
    # The console answers a bearer token, the operator's too, with its login page.
    read("/ops/",                      None,   "302 302 302 302 302 302 302", None),
    read("/ops/jobs",                  None,   "302 302 302 302 302 302 302", None),
    read("/ops/jobs/find",             None,   "302 302 302 302 302 302 302", None),
    read("/ops/jobs/<int:job_id>",     "done", "302 302 302 302 302 302 302", None),
    read("/ops/system",                None,   "302 302 302 302 302 302 302", None),
    read("/ops/finance.csv",           None,   "302 302 302 302 302 302 302", None),
    read("/ops/webhooks",              None,   "302 302 302 302 302 302 302", None),
    read("/ops/webhooks/<id:endpoint_id>", None, "302 302 302 302 302 302 302", None),
]
# fmt: on

# GET routes that show nothing about any job, and why they are not rows of READS.
NO_JOB_DATA = {
    "/docs": "Swagger UI: public",
    "/docs/assets/<path:filename>": "Swagger UI's JS and CSS: public",
    "/v1/openapi.json": "the public description of the API (its schemas: test below)",
    "/static/<path:filename>": "Flask's static files: public",
    "/ops/static/<path:filename>": "the console's stylesheet: public",
    "/ops/login": "the console's login form",
    "/healthz": "the system's progress, not a job's; its code depends on a live worker and "
    "beat (tests/api/test_health.py)",
    "/metrics": "counts per status, no job's data; who may scrape: tests/test_metrics.py",
    "/v1/policies/<id:version>": "the marketplace's rules, no job's data: any signed-in party "
    "(tests/security/test_authz_matrix.py)",
}

# What only the operator may see, wherever it would appear: keys of any object in a body.
HIDDEN_KEYS = {
    Role.CONSUMER: {"idempotency_key", "detail", "charge_id", "author_id", "distance_km"},
    Role.WORKER: {
        *("idempotency_key", "detail", "charge_id", "author_id"),
        *("consumer_id", "price_cents", "fee_cents", "amount_cents"),
    },
}


def _walk(body: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) of a JSON body, nested ones included (key None in lists)."""
    if isinstance(body, dict):
        for key, value in body.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(body, list):
        for value in body:
            yield None, value
            yield from _walk(value)


def _secrets(session: Session, scene: Scene) -> tuple[set[str], str]:
    """The done job's idempotency key and gateway texts; its consumer's payment method."""
    payment = session.scalar(sa.select(Payment).where(Payment.job_id == scene.jobs["done"]))
    assert payment is not None
    details = {a.detail for a in payment.attempts if a.detail}
    assert details, "the scene's card was never refused"
    owner = session.get(Consumer, scene.who["owner"].id)  # type: ignore[union-attr]
    assert owner is not None and owner.payment_method
    return {payment.idempotency_key, *details}, owner.payment_method


def _leaks(session: Session, scene: Scene, reader: str, body: Any) -> list[str]:
    """What ``reader`` was shown that only the operator may see."""
    who = scene.who[reader]
    if who is not None and who.role == Role.OPERATOR:
        return []
    role = Role.WORKER if who is None else who.role
    hidden_texts, method = _secrets(session, scene)
    owner = scene.who["owner"]
    assert owner is not None
    found = []
    for key, value in _walk(body):
        if key in HIDDEN_KEYS[role]:
            found.append(f"key {key!r}")
        if isinstance(value, str):
            if any(text in value for text in hidden_texts):
                found.append(f"text {value!r}")
            if role == Role.WORKER and (owner.actor in value or method in value):
                found.append(f"the consumer in {value!r}")
    return found


def _fill(rule: str, scene: Scene, job: str | None) -> str:
    assigned = scene.who["assigned"]
    assert assigned is not None
    values = {
        "job_id": scene.jobs[job or "done"],
        "worker_id": assigned.id,
        "endpoint_id": scene.endpoint,
    }
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule)


def test_every_get_route_is_a_read_of_the_matrix(app: Flask) -> None:
    """A new GET route fails here until it is a row of READS (or has a reason not to be)."""
    routes = {rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}
    covered = {r.rule for r in READS} | set(NO_JOB_DATA)
    assert sorted(routes - covered) == [], "GET routes without a row in READS or NO_JOB_DATA"
    assert sorted(covered - routes) == [], "rows for GET routes the app does not have"


def test_every_read_shows_each_party_what_the_projection_does(
    isolated_app: Flask, session: Session, scene: Scene
) -> None:
    client = isolated_app.test_client()
    session.expire_all()  # as stored: the database wrote some columns (updated_at)
    failures = []
    for row in READS:
        path = _fill(row.rule, scene, row.job)
        job = session.get(Job, scene.jobs[row.job]) if row.job else None
        for reader in READERS:
            r = client.get(path, headers=scene.headers[reader])
            where = f"{row.id} as {reader}"
            if r.status_code != row.codes[reader]:
                failures.append(f"{where}: {r.status_code}, expected {row.codes[reader]}")
                continue
            if not r.is_json:
                continue
            body = r.get_json()
            if leaks := _leaks(session, scene, reader, body):
                failures.append(f"{where} shows {', '.join(sorted(set(leaks)))}")
            who = scene.who[reader]
            if r.status_code == 200 and row.shows is not None and who is not None:
                try:
                    row.shows(session, job, who, body)
                except AssertionError as error:
                    failures.append(f"{where} is not the projection: {error}")
    assert failures == [], "\n".join(failures)


def test_the_operator_reads_what_the_parties_may_not(
    isolated_app: Flask, session: Session, scene: Scene
) -> None:
    """The hidden values are there to hide: the operator's reads show every one of them."""
    client = isolated_app.test_client()
    operator = scene.headers["operator"]
    done = scene.jobs["done"]
    payment = client.get(f"/v1/jobs/{done}/payment", headers=operator).get_json()
    hidden_texts, method = _secrets(session, scene)
    shown = {v for _, v in _walk(payment) if isinstance(v, str)}
    assert hidden_texts <= shown and any(method in text for text in shown)
    assert {"amount_cents", "fee_cents", "worker_earnings_cents"} <= set(payment)
    reviews = client.get(f"/v1/jobs/{done}/reviews", headers=operator).get_json()
    owner, assigned = scene.who["owner"], scene.who["assigned"]
    assert owner is not None and assigned is not None
    assert {(r["author_role"], r["author_id"]) for r in reviews} == {
        ("consumer", owner.id),
        ("worker", assigned.id),
    }


def test_each_side_reads_the_money_it_is_owed(
    isolated_app: Flask, session: Session, scene: Scene
) -> None:
    """The consumer reads the charge and its split, the worker their earnings (the amount
    less the platform fee); each sees how many attempts were made, neither the gateway's text."""
    client = isolated_app.test_client()
    done = session.get(Job, scene.jobs["done"])
    assert done is not None and done.price_cents and done.fee_cents and done.subtotal_cents
    path = f"/v1/jobs/{done.id}/payment"
    mine = client.get(path, headers=scene.headers["owner"]).get_json()
    assert (mine["amount_cents"], mine["fee_cents"], mine["worker_earnings_cents"]) == (
        done.price_cents,
        done.fee_cents,
        done.price_cents - done.fee_cents,
    )
    assert [(a["number"], a["outcome"]) for a in mine["attempts"]] == [
        (1, "declined"),
        (2, "declined"),
        (3, "succeeded"),
    ]
    theirs = client.get(path, headers=scene.headers["assigned"]).get_json()
    assert theirs["worker_earnings_cents"] == done.subtotal_cents == mine["worker_earnings_cents"]
    assert theirs["status"] == "succeeded"
    assert [sorted(a) for a in theirs["attempts"]] == [["attempted_at", "number"]] * 3
    reviews = client.get(f"/v1/jobs/{done.id}/reviews", headers=scene.headers["assigned"])
    assert sorted(r["author_role"] for r in reviews.get_json()) == ["consumer", "worker"]


# Where each role sees the job: the consumer, the assigned worker and the operator exactly; a
# worker who has not taken it (a candidate) only the centre of its ~1 km cell.
EXACT_PLACE = {"consumer": True, "assigned": True, "operator": True, "candidate": False}


def test_every_party_sees_the_place_as_its_role_may(
    isolated_app: Flask, session: Session, driven: dict[str, Built]
) -> None:
    """Exact for the consumer, the assigned worker and the operator; a candidate gets the
    ~1 km cell's centre, marked approximate, within a kilometre of the truth."""
    client = isolated_app.test_client()
    seen = set()
    for name, built in driven.items():
        job = session.get(Job, built.job_id)
        assert job is not None
        exact = {"lat": job.lat, "lng": job.lng}
        for party in built.parties:
            if party.role is None:
                continue
            shown = client.get(f"/v1/jobs/{built.job_id}", headers=party.headers).get_json()
            place = shown["location"]
            if EXACT_PLACE[party.role]:
                assert place == exact, (name, party.name)
            else:
                assert place["approximate"] is True and place != exact, (name, party.name)
                north = (place["lat"] - job.lat) * 111.2
                east = (place["lng"] - job.lng) * 111.2 * math.cos(math.radians(job.lat))
                assert math.hypot(north, east) <= 0.75, (name, party.name, place)
            seen.add(party.role)
    assert seen == set(EXACT_PLACE)

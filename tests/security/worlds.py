"""A job in a chosen state and every kind of caller around it, in the test's transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco import clock
from gigco.models import (
    AttemptOutcome,
    Dispute,
    Job,
    JobStatus,
    OpportunityStatus,
    PaymentStatus,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests import factories as f
from tests.harness.database import row_counts
from tests.harness.env import ADMIN_TOKEN

S = JobStatus

# Who may call: nobody, a stranger with a made-up token, the job's consumer, another consumer,
# the assigned worker, a worker holding a pending opportunity on the job, a worker with
# nothing to do with it, and the operator.
PARTIES = ("none", "bad", "owner", "other", "assigned", "holder", "unrelated", "operator")

# States in which the job has an assigned worker.
ASSIGNED_STATES = frozenset(
    {
        S.WORKER_ASSIGNED,
        S.SCHEDULED,
        S.IN_PROGRESS,
        S.COMPLETED,
        S.PAYMENT_FAILED,
        S.PAID,
        S.REVIEW_PENDING,
        S.CLOSED,
    }
)


@dataclass
class World:
    """One job and the callers around it; ``headers[party]`` authenticates as that party."""

    job_id: int
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]
    absent: frozenset[str] = field(default_factory=frozenset)

    def exists(self, party: str) -> bool:
        """False for the assigned worker of a job that has none (that worker is a bystander)."""
        return party not in self.absent


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def build(session: Session, status: JobStatus, *, payment_method: str = "pm_card_visa") -> World:
    """A job in ``status`` as the lifecycle would leave it, and one caller of each kind.

    The holder's opportunity is pending only while the job is ``accepted`` (matching); in
    later states it has lapsed, as it would have when another worker took the job. A job
    before ``worker_assigned`` has no assigned worker, so that party does not exist.
    """
    now = clock.now()
    owner, owner_token = f.signed_up_consumer(session, payment_method=payment_method)
    other, other_token = f.signed_up_consumer(session)
    assigned, assigned_token = f.signed_up_worker(session)
    holder, holder_token = f.signed_up_worker(session)
    unrelated, unrelated_token = f.signed_up_worker(session, skills=("gardening",))
    values: dict[str, object] = {}
    if status == S.OFFERED:
        values = {"offer_expires_at": now + dt.timedelta(hours=1)}
    if status == S.ACCEPTED:
        values = {"match_round": 1}
    if status in ASSIGNED_STATES:
        values = {"worker_id": assigned.id, "match_round": 1}
    if status in (S.REVIEW_PENDING, S.CLOSED):  # closed by both reviews, window still open
        values["review_deadline"] = now + dt.timedelta(days=7)
    job = f.job(session, owner, status=status, event_seq=1, **values)
    if status in (S.ACCEPTED, *ASSIGNED_STATES):
        f.opportunity(
            session,
            job,
            holder,
            status=OpportunityStatus.PENDING if status == S.ACCEPTED else OpportunityStatus.EXPIRED,
            expires_at=now + dt.timedelta(minutes=15),
        )
    if status == S.PAYMENT_FAILED:
        f.payment(session, job)
    if status in (S.PAID, S.REVIEW_PENDING, S.CLOSED):
        f.payment(
            session,
            job,
            status=PaymentStatus.SUCCEEDED,
            attempts=[(AttemptOutcome.SUCCEEDED, None)],
        )
    if status == S.CLOSED:  # its consumer disputed it
        session.add(Dispute(job_id=job.id, reason="Not done."))
    endpoint = WebhookEndpoint(
        owner_role=Role.CONSUMER, owner_id=owner.id, url="http://127.0.0.1:9/hook", secret="s"
    )
    session.add(endpoint)
    session.flush()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id, msg_id=f"msg_{secrets.token_hex(8)}", event_type="ping", payload={}
    )
    session.add(delivery)
    session.flush()
    ids = {
        "endpoint": endpoint.id,
        "delivery": delivery.id,
        "owner": owner.id,
        "other": other.id,
        "assigned": assigned.id,
        "holder": holder.id,
        "unrelated": unrelated.id,
    }
    headers = {
        "none": {},
        "bad": {"Authorization": "Bearer gc_" + secrets.token_urlsafe(32)},
        "owner": _bearer(owner_token),
        "other": _bearer(other_token),
        "assigned": _bearer(assigned_token),
        "holder": _bearer(holder_token),
        "unrelated": _bearer(unrelated_token),
        "operator": _bearer(ADMIN_TOKEN),
    }
    session.flush()
    absent = frozenset() if status in ASSIGNED_STATES else frozenset({"assigned"})
    return World(job_id=job.id, ids=ids, headers=headers, absent=absent)


def snapshot(session: Session, job_id: int) -> tuple[object, ...]:
    """The job's status and history length, and the number of rows in every table."""
    job = session.execute(
        sa.select(Job.status, Job.event_seq, Job.worker_id).where(Job.id == job_id)
    ).one()
    return (*job, *row_counts(session).values())

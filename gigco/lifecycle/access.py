"""Which jobs a caller may see, and who may act on one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.lifecycle.errors import Forbidden, NotFound
from gigco.lifecycle.locks import remember_lock
from gigco.lifecycle.principals import Principal
from gigco.models import Job, Opportunity, OpportunityStatus, Role


def visible_job_lists(principal: Principal) -> list[sa.Select[Job]]:
    """The jobs ``principal`` may see, as SELECTs each served by one index; their union.

    A worker's are two: the jobs they hold (``ix_jobs_worker_id_id``) and the jobs they hold
    a pending opportunity on (``ix_opportunities_worker_id_status``). One ``OR`` over both
    would defeat every index and scan the jobs table.
    """
    return _visible_lists(principal.role, principal.id)


def _visible_lists(role: Role, viewer: int | sa.BindParameter[int] | None) -> list[sa.Select[Job]]:
    if role == Role.OPERATOR:
        return [sa.select(Job)]
    if role == Role.CONSUMER:
        return [sa.select(Job).where(Job.consumer_id == viewer)]
    offered = sa.select(Opportunity.job_id).where(
        Opportunity.worker_id == viewer,
        Opportunity.status == OpportunityStatus.PENDING,
    )
    return [
        sa.select(Job).where(Job.worker_id == viewer),
        sa.select(Job).where(Job.id.in_(offered)),
    ]


def _visible_filter(
    role: Role, viewer: int | sa.BindParameter[int] | None
) -> sa.ColumnElement[bool]:
    if role == Role.OPERATOR:
        return sa.true()
    if role == Role.CONSUMER:
        return Job.consumer_id == viewer
    lists = _visible_lists(role, viewer)
    return Job.id.in_(sa.union(*(q.with_only_columns(Job.id) for q in lists)))


@built_once
def _visible_job_statement(role: Role, lock: bool) -> sa.Select[Job]:
    """One job if a viewer of ``role`` may see it; built once per role (the viewer and the
    job are parameters), as building it cost more than running it."""
    viewer = sa.bindparam("viewer_id", type_=sa.Integer())
    stmt = sa.select(Job).where(Job.id == sa.bindparam("job_id"), _visible_filter(role, viewer))
    if lock:  # OF jobs: not the category's row (see locks.lock_job)
        return stmt.with_for_update(of=Job).execution_options(populate_existing=True)
    return stmt


def visible_job(session: Session, job_id: int, principal: Principal, *, lock: bool = False) -> Job:
    """The job if ``principal`` may see it; NotFound otherwise (existence is not revealed).

    With ``lock``, read under the job's row lock, held to the end of the transaction (as
    ``lock_job``, in the same round trip).
    """
    params = {"job_id": job_id}
    if principal.role != Role.OPERATOR:
        params["viewer_id"] = principal.id or 0
    job = session.scalar(_visible_job_statement(principal.role, lock), params)
    if job is None:
        raise NotFound(f"Job {job_id} not found.")
    if lock:
        remember_lock(session, job)
    return job


def require_consumer_of(job: Job, principal: Principal) -> None:
    """Only the job's own consumer may act."""
    if not (principal.role == Role.CONSUMER and principal.id == job.consumer_id):
        raise Forbidden("Only the consumer who posted this job may do that.")


def require_assigned_worker(job: Job, principal: Principal) -> None:
    """Only the job's assigned worker may act."""
    if not (principal.role == Role.WORKER and principal.id == job.worker_id):
        raise Forbidden("Only the worker assigned to this job may do that.")


def require_operator(principal: Principal) -> None:
    """Only the operator may act."""
    if principal.role != Role.OPERATOR:
        raise Forbidden("Only an operator may do that.")

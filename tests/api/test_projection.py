"""The projection entry point: JSON-ready values, the full job for its consumer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from gigco.lifecycle.history import record_event
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import JOB_FIELDS, Audience, project_event, project_job
from gigco.models import JobStatus, Role
from gigco.web.resources.jobs.schemas import EventSchema, JobSchema
from tests import factories


def test_project_job_is_the_whole_job_resource_for_its_consumer(session: Session) -> None:
    job = factories.job(
        session,
        status=JobStatus.OFFERED,
        offer_expires_at=dt.datetime.now(dt.UTC),
        description="It drips.",
    )
    shown = project_job(job, Principal(Role.CONSUMER, job.consumer_id))
    assert set(shown) == set(JobSchema().fields)
    assert JobSchema().dump(shown) == shown
    assert shown["location"] == {"lat": job.lat, "lng": job.lng}
    assert shown["offer_expires_at"] == job.offer_expires_at.isoformat()
    worker = factories.worker(session)
    assert (
        set(project_job(job, Principal(Role.WORKER, worker.id))) == JOB_FIELDS[Audience.CANDIDATE]
    )


def test_project_event_is_json_ready(session: Session) -> None:
    job = factories.job(session)
    event = record_event(session, job.id, "note", actor="system", data={"k": 1})
    session.flush()
    shown = project_event(event, job, Principal(Role.OPERATOR))
    assert shown == {
        "seq": event.seq,
        "type": "note",
        "from_status": None,
        "to_status": None,
        "actor": "system",
        "data": {"k": 1},
        "created_at": event.created_at.isoformat(),
    }
    assert EventSchema().dump(shown) == shown

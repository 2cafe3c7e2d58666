"""The projection entry point agrees with what the API shows today."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from gigco.lifecycle.access import Principal
from gigco.lifecycle.projection import project_event, project_job
from gigco.lifecycle.transitions import record_event
from gigco.models import JobStatus, Role
from gigco.web.resources.jobs.schemas import EventSchema, JobSchema
from tests import factories


def test_project_job_is_the_job_resource(session: Session) -> None:
    job = factories.job(
        session,
        status=JobStatus.OFFERED,
        offer_expires_at=dt.datetime.now(dt.UTC),
        description="It drips.",
    )
    viewer = Principal(Role.CONSUMER, job.consumer_id)
    assert project_job(job, viewer) == JobSchema().dump(job)


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

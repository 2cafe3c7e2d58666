"""The projection entry point: JSON-ready values, the full job for its consumer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from gigco.lifecycle.history import record_event
from gigco.lifecycle.principals import Principal
from gigco.lifecycle.projection import (
    JOB_FIELDS,
    Audience,
    project_event,
    project_job,
    project_payment,
    project_review,
)
from gigco.models import AttemptOutcome, JobStatus, PaymentStatus, Review, Role
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


def test_the_openapi_schemas_document_every_projection(app: Flask, session: Session) -> None:
    """Each projected resource's schema lists what the operator sees; a field some party
    does not see is never required and says who sees it."""
    schemas = app.test_client().get("/v1/openapi.json").get_json()["components"]["schemas"]
    job = factories.job(session, status=JobStatus.PAID, worker_id=factories.worker(session).id)
    payment = factories.payment(
        session,
        job,
        status=PaymentStatus.SUCCEEDED,
        attempts=(factories.DECLINED, (AttemptOutcome.SUCCEEDED, None)),
    )
    review = Review(job_id=job.id, author_role=Role.CONSUMER, author_id=job.consumer_id, rating=5)
    session.add(review)
    session.flush()
    assert job.worker_id is not None
    viewers = {
        Audience.OPERATOR: Principal(Role.OPERATOR),
        Audience.CONSUMER: Principal(Role.CONSUMER, job.consumer_id),
        Audience.ASSIGNED: Principal(Role.WORKER, job.worker_id),
        Audience.CANDIDATE: Principal(Role.WORKER, factories.worker(session).id),
    }
    shows: dict[str, Callable[[Principal], dict[str, Any]]] = {
        "Job": lambda who: project_job(job, who),
        "Payment": lambda who: project_payment(payment, job, who),
        "Attempt": lambda who: project_payment(payment, job, who)["attempts"][0],
        "Review": lambda who: project_review(review, job, who),
    }
    for name, show in shows.items():
        seen = {a: set(show(who)) for a, who in viewers.items()}
        assert seen[Audience.OPERATOR] == set(schemas[name]["properties"]), name
        everyone = set.intersection(*seen.values())
        assert set(schemas[name].get("required", ())) <= everyone, name
        for field in seen[Audience.OPERATOR] - everyone:
            assert schemas[name]["properties"][field].get("description"), (name, field)

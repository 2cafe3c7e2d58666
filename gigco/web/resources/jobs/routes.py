"""Posting, listing and reading jobs and their history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify, make_response, request
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from gigco import clock
from gigco.lifecycle import jobs
from gigco.lifecycle.access import visible_job, visible_job_lists
from gigco.lifecycle.errors import Invalid
from gigco.lifecycle.projection import project_event, project_job
from gigco.models import IdempotencyKey, Job, JobEvent, Role
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, reads_replica, session
from gigco.web.pagination import Listing, SqlPage
from gigco.web.resources.jobs.schemas import (
    EventSchema,
    IdempotencyHeaderSchema,
    JobCreateSchema,
    JobQuerySchema,
    JobSchema,
)
from gigco.web.schemas import errors

blp = Blueprint("jobs", __name__, url_prefix="/v1", description="Jobs and their history")


def _replayed(stored: IdempotencyKey) -> Response:
    response = make_response(jsonify(stored.response_body), stored.response_status)
    response.headers["Idempotent-Replayed"] = "true"
    return response


@blp.route("/jobs")
class JobViews(MethodView):
    @reads_replica
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(JobQuerySchema(), location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate(SqlPage)
    @errors(blp, 401, 422)
    def get(self, query: dict[str, Any]) -> Listing:
        """Jobs the caller may see, newest first; filter by ``status``.

        Page by number (``page``, ``page_size``; ``X-Pagination`` counts at most 10,000) or
        by cursor (``starting_after``/``ending_before`` a job id; no count is made).
        """
        lists = visible_job_lists(current_principal())
        if "status" in query:
            lists = [q.where(Job.status == query["status"]) for q in lists]
        return Listing.of(Job, *lists, query=query)

    @login_required(Role.CONSUMER)
    @blp.doc(security=BEARER)
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.arguments(JobCreateSchema())
    @blp.response(201, JobSchema)
    @errors(blp, 400, 401, 403, 409, 413, 422)
    def post(self, headers: dict[str, Any], data: dict[str, Any]) -> Any:
        """Post a job. A repeat with the same Idempotency-Key and body returns the first answer."""
        who = current_principal()
        key = headers.get("idempotency_key")
        fingerprint = jobs.request_fingerprint(request.get_json())
        if key and (stored := jobs.replay(session(), who, key, fingerprint)):
            return _replayed(stored)
        location = data.pop("location")
        if data["test_clock"] is None:
            del data["test_clock"]
        elif not current_app.config["GIGCO"].test_clocks:
            raise Invalid(
                "Test clocks are off on this server.",
                errors={"test_clock": ["test clocks are off (GIGCO_TEST_CLOCKS)"]},
            )
        else:
            data["test_clock_id"] = data.pop("test_clock")
        job, dues = jobs.create_job(
            session(),
            who,
            lat=location["lat"],
            lng=location["lng"],
            now=clock.now(),
            settings=current_app.config["GIGCO"],
            **data,
        )
        body = project_job(job, who)
        if key:
            try:
                jobs.remember_response(session(), who, key, fingerprint, job, 201, body)
            except IntegrityError:
                # A concurrent request with the same key won; answer as it did.
                session().rollback()
                stored = jobs.replay(session(), who, key, fingerprint)
                assert stored is not None
                return _replayed(stored)
        commit(dues)
        return job


@blp.route("/jobs/<id:job_id>")
class JobByIdViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, JobSchema)
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> Job:
        """One job."""
        return visible_job(session(), job_id, current_principal())


@blp.route("/jobs/<id:job_id>/events")
class JobEventViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, EventSchema(many=True))
    @errors(blp, 401, 404)
    def get(self, job_id: int) -> list[dict[str, Any]]:
        """The job's full history, oldest first, as the caller may see it."""
        who = current_principal()
        job = visible_job(session(), job_id, who)
        events = session().scalars(
            sa.select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
        )
        return [project_event(event, job, who) for event in events]

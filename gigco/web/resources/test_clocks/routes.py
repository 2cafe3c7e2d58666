"""Test clocks (the Stripe convention): simulated time for a sandbox's jobs, per party."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from gigco import clock
from gigco.db import enqueue_after_commit
from gigco.lifecycle import test_clocks
from gigco.models import TestClock
from gigco.tasks.app import app as celery_app
from gigco.tasks.names import ADVANCE_TASK
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, session, step_context
from gigco.web.resources.test_clocks.schemas import (
    TestClockAdvanceSchema,
    TestClockCreateSchema,
    TestClockSchema,
)
from gigco.web.schemas import errors

blp = Blueprint(
    "test_clocks",
    __name__,
    url_prefix="/v1",
    description="Test clocks: run a job's deadlines on simulated time (GIGCO_TEST_CLOCKS=1)",
)


@blp.route("/test_clocks")
class TestClockViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, TestClockSchema(many=True))
    @errors(blp, 401)
    def get(self) -> list[TestClock]:
        """The caller's test clocks."""
        return test_clocks.list_test_clocks(session(), current_principal())

    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(TestClockCreateSchema())
    @blp.response(201, TestClockSchema)
    @errors(blp, 401, 422)
    def post(self, data: dict[str, Any]) -> TestClock:
        """A test clock standing at ``frozen_time``; jobs posted with ``test_clock`` run on it."""
        made = test_clocks.create_test_clock(
            session(), current_principal(), now=clock.now(), **data
        )
        commit()
        return made


@blp.route("/test_clocks/<id:clock_id>")
class TestClockByIdViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, TestClockSchema)
    @errors(blp, 401, 404)
    def get(self, clock_id: int) -> TestClock:
        """One of the caller's test clocks."""
        return test_clocks.owned_test_clock(session(), current_principal(), clock_id)

    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(204)
    @errors(blp, 401, 404)
    def delete(self, clock_id: int) -> None:
        """Delete a test clock; its open jobs are cancelled."""
        test_clocks.delete_test_clock(session(), current_principal(), clock_id, step_context())
        commit()


@blp.route("/test_clocks/<id:clock_id>/advance")
class AdvanceViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.arguments(TestClockAdvanceSchema())
    @blp.response(202, TestClockSchema)
    @errors(blp, 401, 404, 409, 422)
    def post(self, data: dict[str, Any], clock_id: int) -> TestClock:
        """Move the clock to ``frozen_time``: every deadline of its jobs up to then runs, in
        due order; ``status`` is ``advancing`` until done, then ``ready``."""
        advancing = test_clocks.request_advance(
            session(), current_principal(), clock_id, to=data["frozen_time"]
        )
        enqueue_after_commit(session(), lambda: celery_app.send_task(ADVANCE_TASK, args=[clock_id]))
        commit()
        return advancing

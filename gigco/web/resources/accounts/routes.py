"""Sign-up, the caller's own profile, and public worker profiles."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from gigco.lifecycle import accounts
from gigco.lifecycle.errors import NotFound
from gigco.models import Consumer, Role, Worker
from gigco.web.auth import BEARER, current_principal, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import commit, session
from gigco.web.resources.accounts.schemas import (
    ConsumerSchema,
    ConsumerSignUpSchema,
    ConsumerUpdateSchema,
    ConsumerWithTokenSchema,
    MeSchema,
    PublicWorkerSchema,
    RotatedTokenSchema,
    WorkerSchema,
    WorkerSignUpSchema,
    WorkerUpdateSchema,
    WorkerWithTokenSchema,
)
from gigco.web.schemas import errors

blp = Blueprint("accounts", __name__, url_prefix="/v1", description="Sign-up and profiles")


@blp.route("/consumers")
class ConsumerViews(MethodView):
    @blp.arguments(ConsumerSignUpSchema())
    @blp.response(201, ConsumerWithTokenSchema)
    @errors(blp, 400, 409, 413, 422)
    def post(self, data: dict[str, Any]) -> Consumer:
        """Sign up as a consumer; the token is shown only here."""
        consumer, token = accounts.sign_up_consumer(session(), **data)
        commit()
        consumer.token = token  # type: ignore[attr-defined]
        return consumer


@blp.route("/workers")
class WorkerViews(MethodView):
    @blp.arguments(WorkerSignUpSchema())
    @blp.response(201, WorkerWithTokenSchema)
    @errors(blp, 400, 409, 413, 422)
    def post(self, data: dict[str, Any]) -> Worker:
        """Sign up as a worker; the token is shown only here."""
        location = data.pop("location")
        worker, token = accounts.sign_up_worker(
            session(), lat=location["lat"], lng=location["lng"], **data
        )
        commit()
        worker.token = token  # type: ignore[attr-defined]
        return worker


@blp.route("/me")
class MeViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, MeSchema)
    @errors(blp, 401)
    def get(self) -> Response:
        """Who am I: role and profile."""
        # The body depends on the role, so it is dumped here rather than through MeSchema.
        who = current_principal()
        if who.role == Role.CONSUMER:
            return jsonify(ConsumerSchema().dump(session().get(Consumer, who.id)))
        if who.role == Role.WORKER:
            return jsonify(WorkerSchema().dump(session().get(Worker, who.id)))
        return jsonify({"role": "operator"})


@blp.route("/consumers/me")
class ConsumerMeViews(MethodView):
    @login_required(Role.CONSUMER)
    @blp.doc(security=BEARER)
    @blp.arguments(ConsumerUpdateSchema())
    @blp.response(200, ConsumerSchema)
    @errors(blp, 400, 401, 403, 413, 422)
    def patch(self, changes: dict[str, Any]) -> Consumer:
        """Change my name or payment method (a new card for the next payment attempt)."""
        consumer = session().get(Consumer, current_principal().id)
        assert consumer is not None
        accounts.update_consumer(session(), consumer, changes)
        commit()
        return consumer


@blp.route("/workers/me")
class WorkerMeViews(MethodView):
    @login_required(Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.arguments(WorkerUpdateSchema())
    @blp.response(200, WorkerSchema)
    @errors(blp, 400, 401, 403, 413, 422)
    def patch(self, changes: dict[str, Any]) -> Worker:
        """Change my availability, location, radius or skills."""
        worker = session().get(Worker, current_principal().id)
        assert worker is not None
        accounts.update_worker(session(), worker, changes)
        commit()
        return worker


@blp.route("/tokens/rotate")
class TokenRotateViews(MethodView):
    @login_required(Role.CONSUMER, Role.WORKER)
    @blp.doc(security=BEARER)
    @blp.response(200, RotatedTokenSchema)
    @errors(blp, 401, 403)
    def post(self) -> dict[str, Any]:
        """Replace my token: the new one is shown only here, the old one is refused at once."""
        who = current_principal()
        token = accounts.rotate_token(session(), who)
        commit()
        return {"role": who.role.value, "id": who.id, "token": token}


@blp.route("/workers/<id:worker_id>")
class WorkerByIdViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, PublicWorkerSchema)
    @errors(blp, 401, 404)
    def get(self, worker_id: int) -> Worker:
        """A worker's public profile."""
        worker = session().get(Worker, worker_id)
        if worker is None:
            raise NotFound(f"Worker {worker_id} not found.")
        return worker

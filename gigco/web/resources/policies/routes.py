"""Lifecycle policies: the immutable, numbered rules each job is pinned to."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from gigco.lifecycle import policies
from gigco.lifecycle.errors import NotFound
from gigco.models import LifecyclePolicy
from gigco.web.auth import BEARER, login_required
from gigco.web.blueprint import Blueprint
from gigco.web.db import session
from gigco.web.resources.policies.schemas import PolicySchema
from gigco.web.schemas import errors

blp = Blueprint("policies", __name__, url_prefix="/v1", description="Lifecycle policies")

# The version column is a 32-bit integer: a larger number names no policy.
_MAX_VERSION = 2**31 - 1


@blp.route("/policies/<id:version>")
class PolicyViews(MethodView):
    @login_required()
    @blp.doc(security=BEARER)
    @blp.response(200, PolicySchema)
    @errors(blp, 401, 404)
    def get(self, version: int) -> dict[str, Any]:
        """A lifecycle policy's values (any signed-in party: they are the marketplace's rules,
        the same for every job pinned to them; a job shows its ``policy_version``)."""
        row = session().get(LifecyclePolicy, version) if version <= _MAX_VERSION else None
        if row is None:
            raise NotFound(f"Policy {version} not found.")
        values = policies.Policy.of(row.version, row.values).values()
        return {"version": row.version, **values, "created_at": row.created_at.isoformat()}

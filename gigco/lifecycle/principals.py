"""Who acts on a job: the authenticated caller, and the actor names history records."""

from __future__ import annotations

from dataclasses import dataclass

from gigco.models import Role

SYSTEM = "system"
OPERATOR = "operator"


def consumer_actor(consumer_id: int) -> str:
    """The actor string of a consumer."""
    return f"consumer:{consumer_id}"


def worker_actor(worker_id: int) -> str:
    """The actor string of a worker."""
    return f"worker:{worker_id}"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a consumer, a worker or the operator."""

    role: Role
    id: int | None = None

    @property
    def actor(self) -> str:
        """The caller as it appears in job history."""
        if self.role == Role.CONSUMER:
            return consumer_actor(self.id or 0)
        if self.role == Role.WORKER:
            return worker_actor(self.id or 0)
        return OPERATOR

"""What a step or an action runs with besides the session: settings, the gateway, the time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.gateway import PaymentGateway
from gigco.lifecycle.policies import Policy, job_policy


@dataclass(frozen=True)
class StepContext:
    """What a step needs besides the session: settings, the gateway and the time."""

    settings: Settings
    gateway: PaymentGateway | None = None
    now: dt.datetime = field(default_factory=clock.now)

    def after(self, seconds: float) -> dt.datetime:
        """``now`` plus ``seconds``."""
        return self.now + dt.timedelta(seconds=seconds)

    def policy(self, session: Session, job_id: int) -> Policy:
        """The lifecycle policy job ``job_id`` runs under (not these settings' values)."""
        return job_policy(session, job_id, self.settings)

"""What a step or an action runs with besides the session: settings, the gateway, the time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gigco import clock
from gigco.config import Settings
from gigco.lifecycle.gateway import PaymentGateway


@dataclass(frozen=True)
class StepContext:
    """What a step needs besides the session: settings, the gateway and the time."""

    settings: Settings
    gateway: PaymentGateway | None = None
    now: dt.datetime = field(default_factory=clock.now)

    def after(self, seconds: float) -> dt.datetime:
        """``now`` plus ``seconds``."""
        return self.now + dt.timedelta(seconds=seconds)

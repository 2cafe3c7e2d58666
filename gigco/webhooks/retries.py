"""When a delivery is tried again, and how long one attempt may hold its claim."""

from __future__ import annotations

import datetime as dt

from gigco.config import Settings

GONE = 410  # the receiver says the endpoint is gone: no retry, the endpoint is disabled


def lease_seconds(settings: Settings) -> float:
    """How long a claimed delivery stays ours: the connect and read timeouts, and a margin."""
    return 2 * settings.webhook_timeout_seconds + 5


def retry_at(
    settings: Settings, tries: int, status: int | None, now: dt.datetime
) -> dt.datetime | None:
    """When to try again after the failed try number ``tries`` (1 for the first), answered
    with ``status`` (None: no answer); None when the schedule is spent or the receiver is
    gone."""
    schedule = settings.webhook_retry_schedule
    if status == GONE or tries > len(schedule):
        return None
    return now + dt.timedelta(seconds=schedule[tries - 1])

"""The one door to the time: every lifecycle decision reads "now" here.

Deadlines are written and judged against this clock (the lifecycle, its sweeps, the webhook
leases, the health checks), so that one place decides which clock
that is (a host's today; the database's, or a job's test clock, can be put behind it).
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)

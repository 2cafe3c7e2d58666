"""How the console's templates show times, durations, money and JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from gigco import clock
from gigco.models import Job, JobStatus, Opportunity, OpportunityStatus

# What the deadline each status waits on means, besides timer_at/step_due_at themselves.
DEADLINE_OF_STATUS = {
    JobStatus.OFFERED: "offer expires",
    JobStatus.ACCEPTED: "next matching round",
    JobStatus.COMPLETED: "next payment attempt",
    JobStatus.REVIEW_PENDING: "review deadline",
    JobStatus.CANCELLED: "next late-cancellation fee attempt",
}


def count(n: int, cap: int = 10_000) -> str:
    """A count the console made with a cap (``queries.COUNT_CAP``): ``10000+`` past it."""
    return f"{cap}+" if n > cap else str(n)


def when(value: dt.datetime | None) -> str:
    """A moment in UTC to the millisecond, or a dash."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``3.0 min ago`` or ``in 1.5 h``, relative to ``now``."""
    if value is None:
        return ""
    seconds = ((now or clock.now()) - value).total_seconds()
    amount = abs(seconds)
    if amount < 60:
        text = f"{amount:.1f} s"
    elif amount < 3600:
        text = f"{amount / 60:.0f} min"
    elif amount < 86400:
        text = f"{amount / 3600:.1f} h"
    else:
        text = f"{amount / 86400:.1f} d"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def money(cents: int | None, currency: str = "USD") -> str:
    """``19800`` as ``198.00 USD``, or a dash."""
    return "—" if cents is None else f"{cents / 100:,.2f} {currency}"


def as_json(data: Any) -> str:
    """``data`` as sorted JSON, or nothing when empty."""
    # A plain string: Jinja escapes it like any other text.
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str) if data else ""


def pending_deadlines(
    job: Job, opportunities: Iterable[Opportunity]
) -> list[tuple[str, dt.datetime | None]]:
    """The one deadline the job's status waits on, if any (a past offer's expiry is not
    shown on a job that has moved on). An accepted job's deadline is the next round's only
    between rounds (no opportunity pending); a payment due now is due since step_due_at."""
    label = DEADLINE_OF_STATUS.get(job.status)
    if label is None:
        return []
    if job.status == JobStatus.CANCELLED:  # only while a late cancel's fee is being charged
        fee_due = job.timer_at or job.step_due_at
        return [] if fee_due is None else [(label, fee_due)]
    pending = any(o.status == OpportunityStatus.PENDING for o in opportunities)
    when = {
        JobStatus.OFFERED: job.offer_expires_at,
        JobStatus.ACCEPTED: None if pending else job.timer_at,
        JobStatus.COMPLETED: job.timer_at or job.step_due_at,
        JobStatus.REVIEW_PENDING: job.review_deadline,
    }[job.status]
    return [(label, when)]


def coords(lat: float, lng: float) -> str:
    """A location to five decimals (about a metre)."""
    return f"{lat:.5f}, {lng:.5f}"

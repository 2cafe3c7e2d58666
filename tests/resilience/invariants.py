"""The checks every scenario ends with, as SQL over the tables a fault could corrupt.

``violations`` is the one shared invariants check: each job closed, its history gap-free
and free of doubles, one payment taken once, every notification sent once and none lost.
``step_timings`` reads from the history how long each system step took after it became due.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from tests.resilience.topology import TIMERS

PAYMENT_BACKOFF = float(TIMERS["GIGCO_PAYMENT_RETRY_BASE_SECONDS"])

HAPPY_PATH = [
    "draft", "priced", "offered", "accepted", "worker_assigned", "scheduled",
    "in_progress", "completed", "paid", "review_pending", "closed",
]  # fmt: skip
CONSUMER_KINDS = sorted(
    ["offer", "assignment", "schedule", "payment_receipt", "review_request", "closure"]
)
WORKER_KINDS = sorted(
    ["opportunity", "assignment", "schedule", "payment_receipt", "review_request", "closure"]
)

# Each check: a query returning offending rows, and what such a row means.
CHECKS: list[tuple[str, str]] = [
    (
        "job not closed, or closed with a deadline or step still pending",
        """SELECT id, status, timer_at, step_due_at FROM jobs WHERE id = ANY(:ids)
           AND (status <> 'closed' OR timer_at IS NOT NULL OR step_due_at IS NOT NULL)""",
    ),
    (
        "event seq is not 1..n without gaps (or jobs.event_seq disagrees)",
        """SELECT j.id, j.event_seq, count(e.id), min(e.seq), max(e.seq)
           FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id WHERE j.id = ANY(:ids)
           GROUP BY j.id, j.event_seq
           HAVING count(e.id) = 0 OR min(e.seq) <> 1 OR max(e.seq) <> count(e.id)
              OR count(DISTINCT e.seq) <> count(e.id) OR j.event_seq <> max(e.seq)""",
    ),
    (
        "transition recorded twice",
        """SELECT job_id, from_status, to_status, count(*) FROM job_events
           WHERE job_id = ANY(:ids) AND to_status IS NOT NULL
           GROUP BY job_id, from_status, to_status HAVING count(*) > 1""",
    ),
    (
        "step event recorded twice (same round, worker, author or attempt)",
        """SELECT job_id, type, data->>'round', data->>'worker_id', data->>'author_role',
                  data->>'attempt', count(*) FROM job_events
           WHERE job_id = ANY(:ids) AND to_status IS NULL
           GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1""",
    ),
    (
        "not exactly one succeeded payment attempt",
        """SELECT j.id, count(a.id) FILTER (WHERE a.outcome = 'succeeded')
           FROM jobs j LEFT JOIN payment_attempts a ON a.job_id = j.id WHERE j.id = ANY(:ids)
           GROUP BY j.id HAVING count(a.id) FILTER (WHERE a.outcome = 'succeeded') <> 1""",
    ),
    (
        "gateway ledger: not one charge of the job's price under its reference, or payment"
        " disagrees",
        # A job's intents are rows under its reference (the previous release wrote none: its
        # one key per job is the reference); only the one that took money has a charge id
        # (declined intents are stored too, as Stripe stores a declined key).
        """SELECT j.id, count(c.charge_id), min(c.amount_cents) FILTER (WHERE c.charge_id
                  IS NOT NULL), j.price_cents, min(p.status),
                  min(p.gateway_charge_id) = min(c.charge_id)
           FROM jobs j
           LEFT JOIN simulated_charges c
             ON coalesce(c.reference, c.idempotency_key) = 'job-' || j.id
           LEFT JOIN payments p ON p.job_id = j.id
           WHERE j.id = ANY(:ids) GROUP BY j.id, j.price_cents
           HAVING count(c.charge_id) <> 1 OR count(DISTINCT p.id) <> 1
              OR min(c.amount_cents) FILTER (WHERE c.charge_id IS NOT NULL) <> j.price_cents
              OR min(p.status) <> 'succeeded'
              OR min(p.gateway_charge_id) IS DISTINCT FROM min(c.charge_id)""",
    ),
    (
        "money moved that no job asked for",
        """SELECT idempotency_key, charge_id FROM simulated_charges
           WHERE charge_id IS NOT NULL AND coalesce(reference, idempotency_key) NOT IN
             (SELECT 'job-' || id FROM jobs WHERE id = ANY(:ids))""",
    ),
    (
        "more charge attempts than the card needs (flaky: 2 refusals, then success)",
        """SELECT j.id, c.payment_method, count(a.id) FROM jobs j
           JOIN consumers c ON c.id = j.consumer_id
           LEFT JOIN payment_attempts a ON a.job_id = j.id WHERE j.id = ANY(:ids)
           GROUP BY j.id, c.payment_method
           HAVING count(a.id) > CASE c.payment_method WHEN 'pm_card_flaky' THEN 3 ELSE 1 END""",
    ),
    (
        "a payment attempt came sooner than its backoff allows (a doubled retry)",
        """SELECT job_id, number, attempted_at - previous FROM (
             SELECT job_id, number, attempted_at,
                    lag(attempted_at) OVER (PARTITION BY job_id ORDER BY number) AS previous
             FROM payment_attempts WHERE job_id = ANY(:ids)) a
           WHERE previous IS NOT NULL AND attempted_at - previous
                 < make_interval(secs => :backoff * 2 ^ (number - 2))""",
    ),
    (
        "notification of one kind sent twice to one recipient for one job",
        """SELECT job_id, kind, consumer_id, worker_id, count(*) FROM notifications
           WHERE job_id = ANY(:ids)
           GROUP BY job_id, kind, consumer_id, worker_id HAVING count(*) > 1""",
    ),
]


def violations(
    engine: sa.Engine, job_ids: Collection[int], *, payment_backoff: float = PAYMENT_BACKOFF
) -> list[str]:
    """Everything wrong with jobs ``job_ids`` after a fault; empty when all is well."""
    ids = sorted(job_ids)
    found: list[str] = []
    with engine.connect() as conn:
        for meaning, query in CHECKS:
            params = {"ids": ids, "backoff": payment_backoff}
            for row in conn.execute(sa.text(query), params):
                found.append(f"{meaning}: {tuple(row)}")
        histories = conn.execute(
            sa.text(
                """SELECT job_id, array_agg(to_status ORDER BY seq) FROM job_events
                   WHERE job_id = ANY(:ids) AND to_status IS NOT NULL GROUP BY job_id"""
            ),
            {"ids": ids},
        ).all()
        for job_id, path in histories:
            if list(path) != HAPPY_PATH:
                found.append(f"job {job_id} took the path {path}")
        kinds = conn.execute(
            sa.text(
                """SELECT j.id,
                     array_agg(n.kind ORDER BY n.kind) FILTER (WHERE n.consumer_id = j.consumer_id),
                     array_agg(n.kind ORDER BY n.kind) FILTER (WHERE n.worker_id = j.worker_id)
                   FROM jobs j LEFT JOIN notifications n ON n.job_id = j.id
                   WHERE j.id = ANY(:ids) GROUP BY j.id"""
            ),
            {"ids": ids},
        ).all()
        for job_id, to_consumer, to_worker in kinds:
            if list(to_consumer or []) != CONSUMER_KINDS or list(to_worker or []) != WORKER_KINDS:
                found.append(f"job {job_id} notified consumer {to_consumer}, worker {to_worker}")
    if len(histories) != len(ids):
        found.append(f"{len(ids) - len(histories)} jobs have no history at all")
    return found


# step: (event that makes it due, event that says it is done)
STEPS = {
    "price_job": ("created", "priced"),
    "send_offer": ("priced", "offered"),
    "match_job": ("accepted", "matching_round_started"),
    "schedule_job": ("worker_assigned", "scheduled"),
    "process_payment": ("completed", "paid"),  # or its first attempt, refused
    "request_reviews": ("paid", "review_pending"),
    "close_job": ("review_received", "closed"),  # due at the second review
}
# A payment attempt ran: the step's first run, or a retry due at the refusal + its backoff.
PAYMENT_RAN = ("payment_attempt_refused", "paid")


@dataclass(frozen=True)
class StepTiming:
    """When one system step on one job became due and when it ran (event times, UTC)."""

    job_id: int
    step: str
    due_at: dt.datetime
    done_at: dt.datetime

    @property
    def seconds(self) -> float:
        """How long the step waited after it became due."""
        return (self.done_at - self.due_at).total_seconds()


def step_timings(
    engine: sa.Engine, job_ids: Collection[int], *, payment_backoff: float = PAYMENT_BACKOFF
) -> list[StepTiming]:
    """Every system step of ``job_ids`` with its due and done times, from the history.

    ``process_payment`` is done when its first attempt ran (a flaky card's refusal too); each
    retry is a ``payment_retry`` due when its backoff (``base × 2^(n−1)`` after attempt n)
    ran out, so a card's own backoff never counts as a delay and a late retry still does.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT job_id, type, created_at, data FROM job_events
                   WHERE job_id = ANY(:ids) ORDER BY job_id, seq"""
            ),
            {"ids": sorted(job_ids)},
        ).all()
    due_by_done = {done: (step, due) for step, (due, done) in STEPS.items()}
    timings: list[StepTiming] = []
    last: dict[tuple[int, str], dt.datetime] = {}
    retry_due: dict[int, dt.datetime] = {}
    for job_id, type_, at, data in rows:
        if type_ in PAYMENT_RAN:
            if (job_id, "completed") in last:
                timings.append(
                    StepTiming(job_id, "process_payment", last.pop((job_id, "completed")), at)
                )
            elif job_id in retry_due:
                timings.append(StepTiming(job_id, "payment_retry", retry_due.pop(job_id), at))
            if type_ == "payment_attempt_refused":
                backoff = payment_backoff * 2 ** (int((data or {})["attempt"]) - 1)
                retry_due[job_id] = at + dt.timedelta(seconds=backoff)
        elif type_ in due_by_done:
            step, due = due_by_done[type_]
            if (job_id, due) in last:
                timings.append(StepTiming(job_id, step, last.pop((job_id, due)), at))
        last[(job_id, type_)] = at
    return timings


@dataclass(frozen=True)
class Recovery:
    """How the steps around a fault fared; times are seconds."""

    pending_at_fault: int  # steps due before the fault and done after it
    stranded: int  # steps due by ``healthy_at`` and done after the fault: what the fault held up
    recovery_seconds: float  # fault -> the last stranded step is done
    worst_delay_seconds: float  # max over steps done after the fault of done - max(due, healthy)
    worst_step: StepTiming | None
    healthy_p50_seconds: float  # median step latency before the fault, for comparison

    def summary(self) -> str:
        """One line for the report."""
        worst = self.worst_step
        where = f" ({worst.step} of job {worst.job_id})" if worst else ""
        p50 = self.healthy_p50_seconds
        return (
            f"{self.pending_at_fault} steps pending at the fault, {self.stranded} held up by it,"
            f" all done {self.recovery_seconds:.2f}s after the fault; worst delay after healthy"
            f" {self.worst_delay_seconds:.2f}s{where}; step latency before the fault: p50 "
            + ("n/a" if math.isnan(p50) else f"{p50 * 1000:.0f}ms")
        )


def recovery(timings: Sequence[StepTiming], *, fault_at: float, healthy_at: float) -> Recovery:
    """Measure the steps around a fault at ``fault_at``, whole again at ``healthy_at``."""
    fault = dt.datetime.fromtimestamp(fault_at, dt.UTC)
    healthy = dt.datetime.fromtimestamp(healthy_at, dt.UTC)
    before = [t.seconds for t in timings if t.done_at < fault]
    after = [t for t in timings if t.done_at >= fault]
    delays = [((t.done_at - max(t.due_at, healthy)).total_seconds(), t) for t in after]
    worst_delay, worst = max(delays, key=lambda d: d[0], default=(0.0, None))
    stranded = [t.done_at for t in after if t.due_at <= healthy]
    return Recovery(
        pending_at_fault=sum(1 for t in after if t.due_at <= fault),
        stranded=len(stranded),
        recovery_seconds=(max(stranded, default=fault) - fault).total_seconds(),
        worst_delay_seconds=worst_delay,
        worst_step=worst,
        healthy_p50_seconds=statistics.median(before) if before else float("nan"),
    )


def in_flight(engine: sa.Engine) -> dict[str, int]:
    """Jobs by status right now, and ``in_flight``: created and not yet closed."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM jobs GROUP BY status")).all()
    counts = {status: n for status, n in rows}
    counts["in_flight"] = sum(n for status, n in rows if status != "closed")
    return counts


def mid_flight(engine: sa.Engine, *, created: int, assigned: int) -> dict[str, int] | None:
    """Job counts once ``created`` jobs exist and ``assigned`` have a worker; else None."""
    counts = in_flight(engine)
    total = sum(n for status, n in counts.items() if status != "in_flight")
    past_matching = sum(
        n
        for status, n in counts.items()
        if status in HAPPY_PATH[HAPPY_PATH.index("worker_assigned") :]
    )
    return counts if total >= created and past_matching >= assigned else None


def overdue_steps(engine: sa.Engine, grace_seconds: float) -> int:
    """Jobs whose pending step is overdue past the grace (a sweep would re-kick them)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace_seconds)
    with engine.connect() as conn:
        found = conn.scalar(
            sa.text("SELECT count(*) FROM jobs WHERE step_due_at <= :cutoff"), {"cutoff": cutoff}
        )
    return int(found or 0)

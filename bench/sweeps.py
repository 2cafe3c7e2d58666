"""One sweep's cost with 10k and with 1M jobs in the table and the same 1,000 due.

    .venv/bin/python -m bench.sweeps [--small 10000] [--large 1000000] [--due 1000]

Bulk-loads with COPY: the due jobs (half with a passed deadline, half with a step overdue
past the grace), plus filler jobs that are closed, waiting on a person, or waiting on a
deadline far in the future. Times the sweep's two queries (``due_timers`` and
``stuck_steps``, rolled back so every repetition sees the same rows), prints the median
of 25 runs at each size, their ratio, and both query plans.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

import sqlalchemy as sa

from bench.seed import JOB_COLUMNS, analyze, copy_rows, job_row, one_consumer_and_worker
from bench.topology import fresh_database
from gigco import clock
from gigco.db import make_engine
from gigco.lifecycle.timers import due_timers, stuck_steps
from gigco.models import Job

GRACE = 60.0


def filler(consumer: int, worker: int, n: int, now: dt.datetime):  # type: ignore[no-untyped-def]
    """Jobs the sweep must not touch: 80 % closed, 10 % in progress, 10 % far deadlines."""
    far = now + dt.timedelta(days=1)
    for i in range(n):
        if i % 10 == 8:
            yield job_row(consumer_id=consumer, worker_id=worker, status="in_progress", now=now)
        elif i % 10 == 9:
            yield job_row(
                consumer_id=consumer, status="offered", offer_expires_at=far, timer_at=far, now=now
            )
        else:
            yield job_row(consumer_id=consumer, worker_id=worker, status="closed", now=now)


def due(consumer: int, n: int, now: dt.datetime):  # type: ignore[no-untyped-def]
    """N jobs the sweep must act on: passed offer deadlines and stuck pricing steps."""
    for i in range(n):
        if i % 2:
            past = now - dt.timedelta(seconds=5)
            yield job_row(
                consumer_id=consumer,
                status="offered",
                offer_expires_at=past,
                timer_at=past,
                now=now,
            )
        else:
            yield job_row(
                consumer_id=consumer,
                status="draft",
                step_due_at=now - dt.timedelta(seconds=GRACE * 2),
                now=now,
            )


def time_sweep(engine: sa.Engine, now: dt.datetime, runs: int = 25) -> tuple[float, int]:
    """Median milliseconds of one sweep's queries, and how many jobs it found."""
    times, found = [], 0
    for _ in range(runs):
        with engine.connect() as conn:
            tx = conn.begin()
            session = sa.orm.Session(bind=conn)
            t0 = time.perf_counter()
            found = len(
                due_timers(session, now=now, horizon_seconds=45, grace_seconds=GRACE, batch=1000)
            )
            found += len(stuck_steps(session, now=now, grace_seconds=GRACE, batch=1000))
            times.append((time.perf_counter() - t0) * 1000)
            session.close()
            tx.rollback()
    return statistics.median(times), found


def plans(engine: sa.Engine, now: dt.datetime) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of both sweep queries."""
    horizon = now + dt.timedelta(seconds=45)
    timers = (
        sa.select(Job.id, Job.status, Job.timer_at)
        .where(Job.timer_at.is_not(None), Job.timer_at <= horizon)
        .order_by(Job.timer_at, Job.id)
        .limit(1000)
    )
    stuck = (
        sa.select(Job.id)
        .where(Job.step_due_at.is_not(None), Job.step_due_at <= now - dt.timedelta(seconds=GRACE))
        .order_by(Job.step_due_at)
        .limit(1000)
    )
    out = {}
    with engine.connect() as conn:
        for name, stmt in (("due_timers", timers), ("stuck_steps", stuck)):
            sql = stmt.compile(engine, compile_kwargs={"literal_binds": True})
            rows = conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars()
            out[name] = list(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=1000)
    a = ap.parse_args()
    url = fresh_database("gigco_bench_sweeps")
    engine = make_engine(url)
    consumer, worker = one_consumer_and_worker(url)
    now = clock.now()
    copy_rows(url, "jobs", JOB_COLUMNS, due(consumer, a.due, now))
    copy_rows(url, "jobs", JOB_COLUMNS, filler(consumer, worker, a.small - a.due, now))
    analyze(url)
    small_ms, small_found = time_sweep(engine, now)
    small_plans = plans(engine, now)
    t0 = time.perf_counter()
    copy_rows(url, "jobs", JOB_COLUMNS, filler(consumer, worker, a.large - a.small, now))
    analyze(url)
    load_s = time.perf_counter() - t0
    large_ms, large_found = time_sweep(engine, now)
    large_plans = plans(engine, now)
    engine.dispose()
    seq_scans = [
        line
        for p in (*small_plans.values(), *large_plans.values())
        for line in p
        if "Seq Scan" in line
    ]
    print(
        json.dumps(
            {
                "small": {"jobs": a.small, "due": small_found, "sweep_ms": round(small_ms, 2)},
                "large": {
                    "jobs": a.large,
                    "due": large_found,
                    "sweep_ms": round(large_ms, 2),
                    "load_s": round(load_s, 1),
                },
                "ratio": round(large_ms / small_ms, 2),
                "seq_scans": seq_scans,
                "plans_large": large_plans,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

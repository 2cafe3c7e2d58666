"""Deadlines of every kind, spread over two minutes: how late does each fire? Never early?

    .venv/bin/python -m bench.timers [--n 2000] [--spread 120] [--kill-at 60]

Writes N jobs whose only pending work is one deadline (offer expiry, opportunity expiry,
next matching round, next payment attempt, review deadline), due uniformly over
``--spread`` seconds, straight into the database: no task is sent, so every one is armed
by the sweeper exactly as a 24-hour timer would be. Lateness is the history event's time
minus the deadline. With ``--kill-at`` the worker's process group is SIGKILLed then and a
new worker started ``--down`` seconds later; deadlines due in that window are reported
apart, against the bound of one sweep interval plus grace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import time
from typing import Any

import psycopg2

from bench.lifecycle import pct
from bench.seed import JOB_COLUMNS, analyze, copy_rows, dsn, job_row, one_consumer_and_worker
from bench.topology import production
from gigco import clock

KINDS = {  # kind: (status, the event that says it fired)
    "offer_expiry": ("offered", "expired"),
    "opportunity_expiry": ("accepted", "opportunity_expired"),
    "next_round": ("accepted", "matching_round_started"),
    "payment_retry": ("completed", "payment_attempt_refused"),
    "review_deadline": ("review_pending", "closed"),
}
TIMERS = {
    "GIGCO_SWEEP_INTERVAL_SECONDS": "5",
    "GIGCO_STUCK_STEP_GRACE_SECONDS": "10",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "3600",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "3600",
    "GIGCO_PAYMENT_RETRY_BASE_SECONDS": "3600",
}


def seed(url: str, n: int, spread: float, lead: float) -> dict[int, tuple[str, dt.datetime]]:
    """N jobs, each with one deadline; returns job id -> (kind, due)."""
    consumer, worker = one_consumer_and_worker(url)
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE consumers SET payment_method='pm_card_chargeDeclined' WHERE id=%s", (consumer,)
        )
    now = clock.now()
    rng = random.Random(7)
    plan = []
    for i in range(n):
        kind = list(KINDS)[i % len(KINDS)]
        due = now + dt.timedelta(seconds=lead + rng.uniform(0, spread))
        status = KINDS[kind][0]
        fields: dict[str, Any] = {"timer_at": due}
        if kind == "offer_expiry":
            fields["offer_expires_at"] = due
        elif kind == "next_round":
            fields["match_round"] = 1  # between rounds: no pending opportunity
        elif kind == "opportunity_expiry":
            fields["match_round"] = 1
        elif kind == "payment_retry":
            fields["worker_id"] = worker
        else:
            fields.update(review_deadline=due, worker_id=worker)
        plan.append((kind, due, job_row(consumer_id=consumer, status=status, now=now, **fields)))
    ids = copy_rows(url, "jobs", JOB_COLUMNS, (row for _, _, row in plan), returning_ids=True)
    # Opportunities for the opportunity-expiry jobs: held by a worker with no other claim.
    opp_rows = [
        (job_id, worker, 1, "pending", 1.0, now, due)
        for job_id, (kind, due, _) in zip(ids, plan, strict=True)
        if kind == "opportunity_expiry"
    ]
    copy_rows(
        url,
        "opportunities",
        ("job_id", "worker_id", "round", "status", "distance_km", "offered_at", "expires_at"),
        opp_rows,
    )
    analyze(url)
    return {job_id: (kind, due) for job_id, (kind, due, _) in zip(ids, plan, strict=True)}


def fired(url: str) -> dict[tuple[int, str], dt.datetime]:
    """The first time each (job, event type) happened."""
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT job_id, type, min(created_at) FROM job_events GROUP BY 1, 2")
        return {(j, t): at for j, t, at in cur.fetchall()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--spread", type=float, default=120)
    ap.add_argument("--lead", type=float, default=10, help="seconds before the first is due")
    ap.add_argument("--kill-at", type=float, default=0, help="SIGKILL the worker after s")
    ap.add_argument("--down", type=float, default=5, help="seconds the worker stays dead")
    a = ap.parse_args()
    with production(timers=TIMERS, database="gigco_bench_timers") as topo:
        url = topo.env["GIGCO_DATABASE_URL"]
        plan = seed(url, a.n, a.spread, a.lead)
        t0 = time.monotonic()
        window: tuple[dt.datetime, dt.datetime] | None = None
        if a.kill_at:
            while time.monotonic() - t0 < a.kill_at:
                time.sleep(0.2)
            killed = clock.now()
            os.killpg(topo.procs["worker"].pid, signal.SIGKILL)
            time.sleep(a.down)
            topo.restart("worker")
            window = (killed, clock.now())
        last_due = max(due for _, due in plan.values())
        bound = int(TIMERS["GIGCO_SWEEP_INTERVAL_SECONDS"]) + int(
            TIMERS["GIGCO_STUCK_STEP_GRACE_SECONDS"]
        )
        while clock.now() < last_due + dt.timedelta(seconds=bound + 2):
            time.sleep(0.5)
        events = fired(url)
    late: dict[str, list[float]] = {"healthy": [], "outage": []}
    missing, early = 0, 0
    per_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    for job_id, (kind, due) in plan.items():
        at = events.get((job_id, KINDS[kind][1]))
        if at is None:
            missing += 1
            continue
        seconds = (at - due).total_seconds()
        early += seconds < 0
        in_outage = window is not None and window[0] <= due <= window[1] + dt.timedelta(
            seconds=bound
        )
        late["outage" if in_outage else "healthy"].append(seconds)
        per_kind[kind].append(seconds)

    def summary(xs: list[float]) -> dict[str, Any]:
        if not xs:
            return {"n": 0}
        return {
            "n": len(xs),
            "p50_ms": round(pct(xs, 50) * 1000, 1),
            "p99_ms": round(pct(xs, 99) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1),
        }

    print(
        json.dumps(
            {
                "n": a.n,
                "missing": missing,
                "early": early,
                "healthy": summary(late["healthy"]),
                "outage": summary(late["outage"]),
                "outage_bound_s": bound if window else None,
                "per_kind": {k: summary(v) for k, v in per_kind.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

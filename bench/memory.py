"""100,000 jobs waiting on 24-hour offers: does the worker or Redis grow? (It must not.)

    .venv/bin/python -m bench.memory [--n 100000]

Writes N draft jobs by COPY, then sends each one's real ``price_job`` task, so every job
goes draft → priced → offered through the production steps and ends waiting on a 24-hour
offer deadline. Reads the Celery worker's RSS (whole process tree) and Redis
``used_memory`` before, and again after every job is offered and two sweeps have run.
No long timer is a broker message, so both must stay flat (within 10 %).
"""

from __future__ import annotations

import argparse
import json
import time

import psutil
import psycopg2
import redis

from bench.seed import JOB_COLUMNS, copy_rows, dsn, job_row, one_consumer_and_worker
from bench.topology import REDIS_URL, production
from gigco import clock
from gigco.lifecycle.schedule import Step
from gigco.tasks import app as celery_app
from gigco.tasks.names import step_task_name

PRICE_TASK = step_task_name(Step.PRICE)


def rss_mb(pid: int) -> float:
    """Resident memory of a process tree in MiB."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def offered(url: str) -> int:
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM jobs WHERE status = 'offered'")
        return cur.fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    a = ap.parse_args()
    timers = {"GIGCO_OFFER_TTL_SECONDS": "86400", "GIGCO_SWEEP_INTERVAL_SECONDS": "5"}
    with production(timers=timers, database="gigco_bench_memory") as topo:
        url = topo.env["GIGCO_DATABASE_URL"]
        broker = redis.Redis.from_url(REDIS_URL)
        consumer, _ = one_consumer_and_worker(url)
        now = clock.now()
        # Warm the worker with a few real jobs first, so "before" is a worker that has run.
        warm = copy_rows(
            url,
            "jobs",
            JOB_COLUMNS,
            (job_row(consumer_id=consumer, status="draft", now=now) for _ in range(200)),
            returning_ids=True,
        )
        celery_app.conf.broker_url = REDIS_URL
        for job_id in warm:
            celery_app.send_task(PRICE_TASK, args=[job_id])
        while offered(url) < len(warm):
            time.sleep(0.5)
        time.sleep(11)  # two sweeps on an idle system
        before = {
            "worker_rss_mb": rss_mb(topo.procs["worker"].pid),
            "redis_used_mb": broker.info("memory")["used_memory"] / 2**20,
        }
        ids = copy_rows(
            url,
            "jobs",
            JOB_COLUMNS,
            (job_row(consumer_id=consumer, status="draft", now=now) for _ in range(a.n)),
            returning_ids=True,
        )
        t0 = time.perf_counter()
        with celery_app.producer_or_acquire() as producer:
            for job_id in ids:
                celery_app.send_task(PRICE_TASK, args=[job_id], producer=producer)
        peak_redis = broker.info("memory")["used_memory"] / 2**20
        while (done := offered(url)) < len(ids) + len(warm):
            time.sleep(1)
        drained_s = time.perf_counter() - t0
        time.sleep(11)  # two more sweeps, which must arm nothing 24 hours out
        after = {
            "worker_rss_mb": rss_mb(topo.procs["worker"].pid),
            "redis_used_mb": broker.info("memory")["used_memory"] / 2**20,
        }
        queued = broker.llen("celery")
    growth = {k: round(after[k] / before[k] - 1, 3) for k in before}
    print(
        json.dumps(
            {
                "n": a.n,
                "offered": done,
                "seconds_to_offer_all": round(drained_s, 1),
                "before": {k: round(v, 1) for k, v in before.items()},
                "after": {k: round(v, 1) for k, v in after.items()},
                "growth": growth,
                "redis_peak_while_queued_mb": round(peak_redis, 1),
                "messages_left_in_queue": queued,
                "flat": all(abs(g) <= 0.10 for g in growth.values()),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

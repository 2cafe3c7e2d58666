"""Does a step or a request cost the same in a small marketplace as in a large one?

    .venv/bin/python -m bench.scale [--scale 0.01] [--jobs N --events N --workers N]
                                    [--city-workers N] [--repeat 50] [--keep] [--reuse]

Seeds two fresh databases by COPY (rows made by generators and streamed, never held in
memory): a small world (10k jobs, 100k events, 1k workers, 100 plumbers around Berlin) and
a large one (1M jobs, 10M events, 100k workers, 10k plumbers around Berlin), ANALYZEs them,
and measures p50/p99 of the same calls in both. Each party measured has the same amount of
its own data in both worlds (100 jobs per consumer, 10 per worker, 10 events per job), so
only the size of everybody else's data differs. Prints one JSON line per measurement,
``{"name", "small_ms", "large_ms", "ratio", "small_p99_ms", "large_p99_ms"}`` (ratio of
p50s), then one JSON line per distinct statement with its plan in the large world, flagging
any Seq Scan on a table that grows. Target: every ratio <= 1.5, index scans only.

/metrics is measured uncached: the collector's TTL is set to 0 so every scrape reads the
database (a real scrape reads it at most once per 15 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.orm import Session

from bench.seed import analyze, dsn
from gigco import clock, db_wait
from gigco.config import Settings, load_settings
from gigco.db import make_engine
from gigco.lifecycle.accounts import hash_token
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.matching import match_job
from gigco.lifecycle.timers import due_timers, stuck_steps
from gigco.migrate import alembic_config
from gigco.models import JobEventCount, JobStatusCount
from tests.harness import database
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN, live_env, redis_url, server_url
from tests.harness.http import auth

CITY = (52.52, 13.405)
CONSUMER_TOKEN, WORKER_TOKEN = "bench-scale-consumer-token", "bench-scale-worker-token"
JOBS_PER_CONSUMER = 100
NULL = "\\N"  # COPY's text format
DUE = 1000  # the sweep measured claims this many overdue deadlines
PENDING = 3  # pending opportunities of the measured worker
# Tables whose size differs between the worlds: a Seq Scan on one of them is a finding.
LARGE_TABLES = frozenset(
    {"jobs", "job_events", "notifications", "opportunities", "workers", "worker_skills"}
    | {"consumers"}
)
EVENT_TYPES = (
    ("created", None, "draft"),
    ("priced", "draft", "priced"),
    ("offered", "priced", "offered"),
    ("accepted", "offered", "accepted"),
    ("matching_round_started", None, None),
    ("opportunity_offered", None, None),
    ("worker_assigned", "accepted", "worker_assigned"),
    ("scheduled", "worker_assigned", "scheduled"),
    ("in_progress", "scheduled", "in_progress"),
    ("completed", "in_progress", "completed"),
    ("paid", "completed", "paid"),
    ("review_pending", "paid", "review_pending"),
    ("closed", "review_pending", "closed"),
)


@dataclass(frozen=True)
class World:
    """The sizes of one seeded marketplace."""

    name: str
    jobs: int
    events: int
    workers: int
    city_workers: int

    @property
    def consumers(self) -> int:
        return max(1, self.jobs // JOBS_PER_CONSUMER)


# --- seeding: COPY from generators ------------------------------------------------------


class LineStream:
    """A read()-able file over text lines made on demand, for ``copy_expert``."""

    def __init__(self, lines: Iterable[str], batch: int = 2000):
        self._lines = iter(lines)
        self._batch = batch
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = "".join(line for _, line in zip(range(self._batch), self._lines, strict=False))
            if not chunk:
                break
            self._buffer += chunk.encode()
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readline(self, size: int = -1) -> bytes:  # psycopg2 does not call it; files have it
        return self.read(size)


COUNTED = ("jobs", "job_events")


def _copy(cur: Any, table: str, columns: str, lines: Iterable[str]) -> None:
    with db_wait.suspended():
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", LineStream(lines), size=1 << 16)


def _ts(value: dt.datetime) -> str:
    return value.isoformat()


def recount(connection: sa.Connection) -> None:
    """Count the counters afresh from ``jobs`` and ``job_events`` with migration 0008's own
    backfill (full scans: for a bulk load made with the triggers disabled)."""
    connection.execute(sa.delete(JobStatusCount))
    connection.execute(sa.delete(JobEventCount))
    counters = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for statement in counters.get_revision("0008").module.BACKFILL:
        connection.execute(sa.text(statement))


def seed(url: str, world: World, *, now: dt.datetime, rng: random.Random) -> None:
    """Fill ``world`` into the migrated database at ``url``, then VACUUM ANALYZE it.

    The counting triggers (migration 0008) are off during the COPY (one upsert per row of
    11M would be most of the seeding) and the counters are counted once afterwards."""
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name FROM categories ORDER BY id")
        categories = {name: id_ for id_, name in cur.fetchall()}
        _seed_parties(cur, world, categories, now=now, rng=rng)
        for table in COUNTED:
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        _seed_jobs(cur, world, categories["plumbing"], now=now)
        for table in COUNTED:
            cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            recount(connection)
    finally:
        engine.dispose()
    analyze(url)


def _seed_parties(
    cur: Any, world: World, categories: dict[str, int], *, now: dt.datetime, rng: random.Random
) -> None:
    past = _ts(now - dt.timedelta(days=90))
    plumbing, kinds = categories["plumbing"], list(categories.values())
    _copy(
        cur,
        "consumers",
        "id, name, email, payment_method, rating_sum, rating_count, completed_jobs, created_at",
        (
            f"{i}\tc{i}\tc{i}@scale.io\tpm_card_visa\t0\t0\t0\t{past}\n"
            for i in range(1, world.consumers + 1)
        ),
    )

    def workers() -> Iterator[str]:
        for i in range(1, world.workers + 1):
            if i <= world.city_workers:  # plumbers within ~17 km of the city centre
                lat = CITY[0] + rng.uniform(-0.15, 0.15)
                lng = CITY[1] + rng.uniform(-0.25, 0.25)
                radius = 25
            else:
                lat, lng, radius = rng.uniform(-60, 70), rng.uniform(-180, 180), 20
            count = rng.randint(0, 20)
            total = sum(rng.randint(3, 5) for _ in range(count))
            yield (
                f"{i}\tw{i}\tw{i}@scale.io\t{lat:.6f}\t{lng:.6f}\t{radius}\tt\t{total}"
                f"\t{count}\t{count}\t{past}\t{past}\n"
            )

    _copy(
        cur,
        "workers",
        "id, name, email, lat, lng, service_radius_km, available, rating_sum, "
        "rating_count, completed_jobs, created_at, updated_at",
        workers(),
    )
    _copy(
        cur,
        "worker_skills",
        "worker_id, category_id",
        (
            f"{i}\t{plumbing if i <= world.city_workers else rng.choice(kinds)}\n"
            for i in range(1, world.workers + 1)
        ),
    )


def _job_lines(world: World, plumbing: int, *, now: dt.datetime, per_job: int) -> Iterator[str]:
    past, future = _ts(now - dt.timedelta(days=90)), now + dt.timedelta(days=30)
    closed = world.jobs - DUE - PENDING - 1
    due = _ts(now - dt.timedelta(minutes=10))
    start = future
    end = start + dt.timedelta(hours=2)
    sched = f"{_ts(now - dt.timedelta(days=60))}\t{_ts(now - dt.timedelta(days=60, hours=-2))}"
    for i in range(1, world.jobs + 1):
        consumer = (i - 1) % world.consumers + 1
        if i <= closed:
            worker, status, timer = (i - 1) % world.workers + 1, "closed", NULL
            when = sched
        elif i <= closed + DUE:
            worker, status, timer, when = NULL, "offered", due, sched
        elif i <= closed + DUE + PENDING:
            worker, status, timer = NULL, "accepted", _ts(future)
            when = f"{_ts(start)}\t{_ts(end)}"
        else:
            worker, status, timer = NULL, "accepted", NULL
            when = f"{_ts(start)}\t{_ts(end)}"
        offer = timer if status == "offered" else "\\N"
        yield (
            f"{i}\t{consumer}\t{worker}\t{plumbing}\tjob {i}\t{CITY[0]}\t{CITY[1]}\t{when}"
            f"\t2\t{status}\t18000\t1800\t19800\tUSD\t{offer}\t\\N\t0\t0"
            f"\t{timer}\t\\N\t{per_job}\t{past}\t{past}\n"
        )


def _seed_jobs(cur: Any, world: World, plumbing: int, *, now: dt.datetime) -> None:
    past, future = _ts(now - dt.timedelta(days=90)), now + dt.timedelta(days=30)
    # Jobs: all closed but the last few — DUE overdue offers (the sweep's backlog),
    # PENDING offered jobs holding worker 1's pending opportunities, one accepted job
    # in the city for the matching step.
    closed = world.jobs - DUE - PENDING - 1
    per_job = max(1, world.events // world.jobs)  # every job's history has this many

    _copy(
        cur,
        "jobs",
        "id, consumer_id, worker_id, category_id, title, lat, lng, scheduled_start, "
        "scheduled_end, estimated_hours, status, subtotal_cents, fee_cents, price_cents, "
        "currency, offer_expires_at, review_deadline, match_round, payment_attempts, "
        "timer_at, step_due_at, event_seq, created_at, "
        "updated_at",
        _job_lines(world, plumbing, now=now, per_job=per_job),
    )

    def events() -> Iterator[str]:
        n = 0
        for job in range(1, world.jobs + 1):
            for seq in range(1, per_job + 1):
                n += 1
                type_, from_, to = EVENT_TYPES[(seq - 1) % len(EVENT_TYPES)]
                yield (
                    f"{n}\t{job}\t{seq}\t{type_}\t{from_ or NULL}\t{to or NULL}\tsystem"
                    f"\t{{}}\t{past}\n"
                )

    _copy(
        cur,
        "job_events",
        "id, job_id, seq, type, from_status, to_status, actor, data, created_at",
        events(),
    )

    def opportunities() -> Iterator[str]:
        expires = _ts(future)
        for i in range(1, closed + 1):
            worker = (i - 1) % world.workers + 1
            yield f"{i}\t{i}\t{worker}\t1\taccepted\t3.5\t{past}\t{past}\t{past}\n"
        for k in range(PENDING):
            job = closed + DUE + k + 1
            yield f"{closed + k + 1}\t{job}\t1\t1\tpending\t2.5\t{past}\t{expires}\t\\N\n"

    _copy(
        cur,
        "opportunities",
        "id, job_id, worker_id, round, status, distance_km, offered_at, expires_at, responded_at",
        opportunities(),
    )

    def notifications() -> Iterator[str]:
        for i in range(1, world.jobs + 1):  # one to the job's consumer, one to a worker
            consumer, worker = (i - 1) % world.consumers + 1, (i - 1) % world.workers + 1
            about = f"{i}\tA message about job {i}.\t{{}}\t{past}\t1\n"
            yield f"{2 * i - 1}\t{consumer}\t{NULL}\toffer\t{about}"
            yield f"{2 * i}\t{NULL}\t{worker}\tassignment\t{about}"

    _copy(
        cur,
        "notifications",
        "id, consumer_id, worker_id, kind, job_id, message, data, created_at, tx",
        notifications(),
    )
    cur.execute(
        "INSERT INTO api_tokens (token_hash, consumer_id, worker_id, created_at) VALUES "
        "(%s, 1, NULL, now()), (%s, NULL, 1, now())",
        (hash_token(CONSUMER_TOKEN), hash_token(WORKER_TOKEN)),
    )
    for table in ("consumers", "workers", "jobs", "job_events", "opportunities"):
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    cur.execute(
        "SELECT setval(pg_get_serial_sequence('notifications', 'id'), "
        "(SELECT max(id) FROM notifications))"
    )


# --- measuring --------------------------------------------------------------------------


class Statements:
    """The statements every engine runs while ``name`` is being measured."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.seen: dict[str, dict[str, Any]] = {}
        sa.event.listen(sa.Engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if self.current and verb in ("SELECT", "UPDATE", "WITH", "(SELECT"):
            self.seen.setdefault(self.current, {}).setdefault(sql, params)

    @contextmanager
    def measuring(self, name: str) -> Iterator[None]:
        self.current = name
        try:
            yield
        finally:
            self.current = None


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    """Wall times of ``repeat`` calls in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def p50_p99(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _ok(response: Any) -> None:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))


def calls(app: Flask, settings: Settings, engine: sa.Engine, ids: dict[str, int]) -> dict:
    """The measured calls, by name, against one world."""
    client = app.test_client()
    console = Ops(app.test_client())
    assert console.login().status_code == 303
    app.extensions["gigco_metrics_database"].ttl = 0.0  # every scrape reads the database

    def get(path: str, token: str) -> Callable[[], None]:
        return lambda: _ok(client.get(path, headers=auth(token)))

    def match_step() -> None:
        with Session(engine) as s:
            dues = match_job(s, ids["match_job"], StepContext(settings))
            assert dues, "the matching step offered nobody"
            s.rollback()

    def sweep() -> None:
        with Session(engine) as s:
            now = clock.now()
            dues = due_timers(
                s,
                now=now,
                horizon_seconds=settings.sweep_interval_seconds * 2,
                grace_seconds=settings.stuck_step_grace_seconds,
                batch=DUE,
            )
            dues += stuck_steps(
                s, now=now, grace_seconds=settings.stuck_step_grace_seconds, batch=DUE - len(dues)
            )
            assert len(dues) == DUE, len(dues)
            s.rollback()

    return {
        "matching_step": match_step,
        "worker_jobs": get("/v1/jobs", WORKER_TOKEN),
        "consumer_jobs": get("/v1/jobs", CONSUMER_TOKEN),
        "job_events": get(f"/v1/jobs/{ids['consumer_job']}/events", CONSUMER_TOKEN),
        "feed_poll": get("/v1/notifications/feed", CONSUMER_TOKEN),
        "opportunities": get("/v1/opportunities", WORKER_TOKEN),
        "sweep_1000_due": sweep,
        "metrics_uncached": get("/metrics", ADMIN_TOKEN),
        "ops_dashboard": lambda: console.page("/ops/"),
        "ops_stuck_jobs": lambda: console.page("/ops/jobs"),
    }


def plan_lines(engine: sa.Engine, sql: str, params: Any) -> tuple[list[str], list[str]]:
    """EXPLAIN (no ANALYZE: nothing runs) of ``sql``: its text, and its Seq Scans on large
    tables."""
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).scalar()
        text = [
            r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params).all()
        ]  # the readable form
        conn.rollback()
    plan = (raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]
    seq: list[str] = []

    def walk(node: dict[str, Any], limited: bool) -> None:
        limited = limited or node["Node Type"] == "Limit"
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE_TABLES:
            # Under a LIMIT (a capped count) the scan stops early; still worth a look.
            seq.append(node["Relation Name"] + (" (under a Limit)" if limited else ""))
        for child in node.get("Plans", []):
            walk(child, limited)

    walk(plan, False)
    return text, seq


def measure(
    urls: dict[str, str], worlds: list[World], repeat: int, recorder: Statements
) -> dict[str, dict[str, list[float]]]:
    """Times of every call in every world, the worlds taking turns call by call (so a busy
    machine slows both alike)."""
    from gigco.web import create_app

    engines, called = [], {}
    for world in worlds:
        settings = load_settings(live_env(urls[world.name], redis_url()))
        engines.append(make_engine(settings.database_url))
        ids = {"match_job": world.jobs, "consumer_job": 1}
        called[world.name] = calls(create_app(settings), settings, engines[-1], ids)
    results: dict[str, dict[str, list[float]]] = {w.name: {} for w in worlds}
    try:
        for name in called[worlds[0].name]:
            for world in worlds:  # warm up
                with recorder.measuring(f"{world.name}:{name}"):
                    timed(called[world.name][name], 3)
            for _ in range(repeat):
                for world in worlds:
                    times = results[world.name].setdefault(name, [])
                    times += timed(called[world.name][name], 1)
    finally:
        for engine in engines:
            engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the large world")
    parser.add_argument("--events", type=int, default=10_000_000, help="its history events")
    parser.add_argument("--workers", type=int, default=100_000, help="its workers")
    parser.add_argument("--city-workers", type=int, default=10_000, help="its city plumbers")
    parser.add_argument("--small", type=float, default=0.01, help="small world / large world")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--reuse", action="store_true", help="reuse kept databases (migrated)")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("BENCH_SCALE_PREFIX", PREFIX),
        help=f"database name prefix (env BENCH_SCALE_PREFIX; default {PREFIX}), so that two "
        "people's kept worlds on one server do not collide",
    )
    args = parser.parse_args()

    def sized(name: str, factor: float) -> World:
        f = args.scale * factor
        jobs = max(DUE + PENDING + 100, int(args.jobs * f))
        return World(
            name,
            jobs=jobs,
            events=jobs * max(1, args.events // args.jobs),  # the same history per job
            workers=max(20, int(args.workers * f)),
            city_workers=max(10, int(args.city_workers * f)),
        )

    worlds = [sized("small", args.small), sized("large", 1.0)]
    rng = random.Random(12)
    now = clock.now()
    recorder = Statements()
    urls = _prepare(worlds, reuse=args.reuse, now=now, rng=rng, prefix=args.prefix)
    try:
        times = measure(urls, worlds, args.repeat, recorder)
        _report(times, recorder, urls["large"])
    finally:
        if not args.keep:
            for world in worlds:
                database.drop_database(server_url(), _name(world, args.prefix))


PREFIX = "gigco_bench_scale"


def _name(world: World, prefix: str = PREFIX) -> str:
    return f"{prefix}_{world.name}_{world.jobs}"


def _prepare(
    worlds: list[World], *, reuse: bool, now: dt.datetime, rng: random.Random, prefix: str
) -> dict[str, str]:
    """Each world's database URL: seeded afresh, or kept from an earlier run and migrated."""
    urls = {}
    for world in worlds:
        name = _name(world, prefix)
        exists = reuse and _exists(name)
        t0 = time.perf_counter()
        if exists:
            urls[world.name] = database.url_of(server_url(), name)
            from gigco import migrate

            migrate.upgrade(urls[world.name])
        else:
            urls[world.name] = database.create_database(server_url(), name, replace=True)
            seed(urls[world.name], world, now=now, rng=rng)
        print(
            json.dumps(
                {
                    "seeded": world.name,
                    "reused": exists,
                    **world.__dict__,
                    "consumers": world.consumers,
                }
                | {"seconds": round(time.perf_counter() - t0, 1)}
            ),
            flush=True,
        )
    return urls


def _report(times: dict[str, dict[str, list[float]]], recorder: Statements, large: str) -> None:
    """One JSON line per measurement, then one per statement with its plan (large world)."""
    for name in times["small"]:
        (s50, s99), (l50, l99) = p50_p99(times["small"][name]), p50_p99(times["large"][name])
        print(
            json.dumps(
                {
                    "name": name,
                    "small_ms": round(s50, 3),
                    "large_ms": round(l50, 3),
                    "ratio": round(l50 / s50, 2),
                    "small_p99_ms": round(s99, 3),
                    "large_p99_ms": round(l99, 3),
                }
            ),
            flush=True,
        )
    engine = make_engine(large)
    try:
        for key, statements in recorder.seen.items():
            world, name = key.split(":", 1)
            if world != "large":
                continue
            for sql, params in statements.items():
                text, seq = plan_lines(engine, sql, params)
                print(
                    json.dumps(
                        {"plan": name, "seq_scans": seq, "sql": " ".join(sql.split())[:300]}
                        | {"explain": text}
                    )
                )
    finally:
        engine.dispose()


def _exists(name: str) -> bool:
    engine = make_engine(server_url(), pool_size=1)
    try:
        with engine.connect() as conn:
            return bool(
                conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            )
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()

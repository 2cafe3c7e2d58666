"""What each write path costs, measured in-process so that a loaded machine does not skew it.

    .venv/bin/python -m bench.profile [--n 30] [--warmup 3] [--cprofile 25]

Drives whole lifecycles through the Flask test client (the real app, real PostgreSQL) and
runs every step task the app publishes (to the real broker) in this process, through
``LifecycleTask`` as the worker would. For each action and each step it prints:
statements, round trips (statements plus BEGIN, COMMIT, ROLLBACK and pool pre-pings that
reach the server), this process's CPU (``time.process_time``), the PostgreSQL backends'
CPU, and ratios to the peers' ``flask_floor`` write (one guarded ``UPDATE … RETURNING`` +
one ``INSERT`` in one transaction: 2 statements, 4 round trips), whose CPU is measured here
too through its own Flask app. Also the broker messages per lifecycle. None of these depend
on how busy the machine is (CPU time does a little, through caches; compare in one run).
With ``--cprofile N`` a second pass prints the top N functions by own time for the actions
and for the steps. With ``--endpoints`` every party and the operator has a webhook endpoint
first (on 127.0.0.1; deliveries are published, not sent): the outbox's cost on this path.
With ``--deliveries N`` it last sends N webhook pings to a receiver on 127.0.0.1 that answers
204 at once, each through the ``deliver`` task's body as the webhooks worker runs it, and
prints their cost split into claim, send and record.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from celery.signals import before_task_publish
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from gigco.config import load_settings
from gigco.db import checkout_checks
from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.database import create_database, url_of
from tests.harness.env import UNMET_LIMITS
from tests.harness.http import auth

PEERS = Path(
    os.environ.get("BENCH_PEERS", Path(__file__).resolve().parents[2] / "shared" / "peers")
)
SERVER_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/4")
ADMIN_TOKEN = "bench-operator-token-0123456789"
FLOOR_STATEMENTS, FLOOR_ROUND_TRIPS = 2, 4


@dataclass
class Cost:
    """What one label cost, summed over its calls."""

    calls: int = 0
    statements: int = 0
    round_trips: int = 0
    cpu: float = 0.0
    pg_cpu: float = 0.0


@dataclass
class Meter:
    """Counts statements and round trips on every engine while ``on``; CPU per label."""

    on: bool = False
    statements: int = 0
    round_trips: int = 0
    costs: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    backends: set[int] = field(default_factory=set)
    profiler: cProfile.Profile | None = None
    depth: int = 0
    trace: list[str] | None = None  # the statements, when kept

    def install(self) -> None:
        """Listen on every engine and pool of the process."""
        event.listen(Engine, "before_cursor_execute", self._execute)
        event.listen(Engine, "commit", self._end)
        event.listen(Engine, "rollback", self._end)
        event.listen(Pool, "reset", self._reset)
        event.listen(Pool, "connect", self._connect)

    def _execute(self, conn: Any, *_: Any) -> None:
        if not self.on:
            return
        self.statements += 1
        self.round_trips += 1
        if self.trace is not None:
            sql = " ".join(str(_[1]).split())
            self.trace.append(sql if len(sql) < 260 else f"{sql[:200]} … {sql[-60:]}")
        raw = conn.connection.dbapi_connection
        # psycopg2 sends BEGIN on its own before a transaction's first statement.
        if not getattr(raw, "autocommit", True) and raw.status == 1:  # STATUS_READY
            self.round_trips += 1

    def _end(self, conn: Any) -> None:
        raw = conn.connection.dbapi_connection
        if self.on and not getattr(raw, "autocommit", True) and raw.status == 2:  # IN_TRANSACTION
            self.round_trips += 1

    def _reset(self, dbapi: Any, _record: Any, _state: Any) -> None:
        if self.on and not dbapi.autocommit and dbapi.status == 2:
            self.round_trips += 1  # the pool's ROLLBACK of an open transaction on return

    def _connect(self, dbapi: Any, _record: Any) -> None:
        with dbapi.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.backends.add(cur.fetchone()[0])
        if not dbapi.autocommit:
            dbapi.rollback()

    def _pg_cpu(self) -> float:
        total = 0.0
        for pid in list(self.backends):
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                self.backends.discard(pid)
                continue
            total += times.user + times.system
        return total

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        """Charge what the block costs to ``label`` (nested blocks charge the outer too)."""
        if self.trace is not None:
            self.trace.append(f"-- {label}")
        pg0 = self._pg_cpu()
        # gigco.db's checkout checks (SELECT clock_timestamp(), in autocommit: no BEGIN),
        # sent unless the connection answered a moment ago.
        s0, r0, was = self.statements, self.round_trips + checkout_checks(), self.on
        self.on = True
        self.depth += 1
        if self.profiler is not None and self.depth == 1:
            self.profiler.enable()
        cpu0 = time.process_time()
        try:
            yield
        finally:
            cpu = time.process_time() - cpu0
            if self.profiler is not None and self.depth == 1:
                self.profiler.disable()
            self.depth -= 1
            self.on = was
            cost = self.costs[label]
            cost.calls += 1
            cost.statements += self.statements - s0
            cost.round_trips += self.round_trips + checkout_checks() - r0
            cost.cpu += cpu
            cost.pg_cpu += self._pg_cpu() - pg0


@dataclass
class Published:
    """Step tasks the app and the steps published, in order."""

    tasks: list[tuple[str, int, Any]] = field(default_factory=list)
    count: int = 0

    def __call__(self, sender: str | None = None, body: Any = None, headers: Any = None, **_: Any):
        self.count += 1
        args = body[0] if isinstance(body, tuple) else []
        if sender and sender.startswith("gigco.tasks.steps.") and args:
            self.tasks.append((sender, args[0], (headers or {}).get("eta")))

    def take(self) -> list[tuple[str, int, Any]]:
        taken, self.tasks = self.tasks, []
        return taken


def _floor_app(database_url: str) -> Any:
    """The peers' flask_floor module (its app and pool) on tables of our database."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS floor_jobs, floor_events"))
        conn.execute(
            sa.text(
                "CREATE TABLE floor_jobs (id bigserial primary key, status text, title text,"
                " price_cents int, seq int default 0)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE floor_events (id bigserial primary key, job_id bigint, note text)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO floor_jobs (status, title, price_cents)"
                " SELECT 'a', 'job ' || g, 1000 FROM generate_series(1, 1000) g"
            )
        )
    engine.dispose()
    dsn = sa.make_url(database_url).set(drivername="postgresql")
    os.environ["FLOOR_DSN"] = dsn.render_as_string(hide_password=False)
    spec = importlib.util.spec_from_file_location("flask_floor", PEERS / "flask_floor" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(  # noqa: C901
    n: int,
    warmup: int,
    cprofile: int,
    database: str,
    sql: bool,
    focus: str | None = None,
    endpoints: bool = False,
    deliveries: int = 0,
) -> None:
    """Drive ``warmup`` + ``n`` lifecycles and print their costs."""
    url = url_of(SERVER_URL, database)
    create_database(SERVER_URL, database, replace=True)
    env = {
        "GIGCO_DATABASE_URL": url,
        "GIGCO_BROKER_URL": REDIS_URL,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
        **UNMET_LIMITS,
        # GIGCO_RATE_LIMIT_*=off in the environment measures the path without the limits
        **{name: os.environ[name] for name in UNMET_LIMITS if name in os.environ},
    }
    settings = load_settings(env)
    meter = Meter()
    meter.install()
    published = Published()
    before_task_publish.connect(published, weak=False)

    from gigco.tasks import app as celery_app
    from gigco.tasks import steps as _steps  # noqa: F401 registers the step tasks
    from gigco.tasks.base import LifecycleTask
    from gigco.web import create_app

    app = create_app(settings)
    celery_app.control.purge()
    original = LifecycleTask._run_one

    def metered_run_one(self: LifecycleTask, step: Any, job_id: int) -> Any:
        with meter.measure(f"step {step.value}"):
            return original(self, step, job_id)

    LifecycleTask._run_one = metered_run_one  # type: ignore[method-assign]
    client = app.test_client()
    consumers = [client.post("/v1/consumers", json=consumer_body()).json for _ in range(10)]
    workers = [client.post("/v1/workers", json=worker_body()).json for _ in range(10)]
    token_of_worker = {w["id"]: w["token"] for w in workers}
    if endpoints:
        for token in [ADMIN_TOKEN] + [p["token"] for p in consumers + workers]:
            r = client.post(
                "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=auth(token)
            )
            assert r.status_code == 201, r.json
    engine = sa.create_engine(url)
    messages_per_lifecycle: list[int] = []

    def act(label: str, method: str, path: str, token: str, **kw: Any) -> Any:
        with meter.measure(label):
            r = client.open(path, method=method, headers=auth(token), **kw)
        assert r.status_code < 300, (label, r.status_code, r.json)
        return r.json

    def run_tasks() -> None:
        while due := [(name, job_id) for name, job_id, eta in published.take() if eta is None]:
            for name, job_id in due:
                celery_app.tasks[name](job_id)

    def lifecycle(i: int) -> None:
        consumer = consumers[i % len(consumers)]
        start = published.count
        job = act("POST /v1/jobs", "POST", "/v1/jobs", consumer["token"], json=job_body())
        job_id = job["id"]
        run_tasks()
        act("GET /v1/jobs/<id>", "GET", f"/v1/jobs/{job_id}", consumer["token"])
        act("POST offer/accept", "POST", f"/v1/jobs/{job_id}/offer/accept", consumer["token"])
        run_tasks()
        with engine.connect() as conn:
            worker_id = conn.execute(
                sa.text(
                    "SELECT worker_id FROM opportunities WHERE job_id = :j AND status = 'pending'"
                ),
                {"j": job_id},
            ).scalar_one()
        wt = token_of_worker[worker_id]
        act("POST opportunity/accept", "POST", f"/v1/jobs/{job_id}/opportunity/accept", wt)
        run_tasks()
        act("POST start", "POST", f"/v1/jobs/{job_id}/start", wt)
        act("POST complete", "POST", f"/v1/jobs/{job_id}/complete", wt)
        run_tasks()
        act(
            "POST reviews",
            "POST",
            f"/v1/jobs/{job_id}/reviews",
            consumer["token"],
            json={"rating": 5},
        )
        act("POST reviews", "POST", f"/v1/jobs/{job_id}/reviews", wt, json={"rating": 4})
        run_tasks()
        with engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM jobs WHERE id = :j"), {"j": job_id})
            assert status.scalar_one() == "closed", job_id
        messages_per_lifecycle.append(published.count - start)

    floor_app = _floor_app(url)
    floor = floor_app.app.test_client()

    def floor_write(i: int) -> None:
        with meter.measure("floor write (flask_floor)"):
            r = floor.post(f"/jobs/{i % 1000 + 1}/move")
        assert r.status_code == 200

    for i in range(warmup):
        lifecycle(i)
        floor_write(i)
    meter.backends.update(c.info.backend_pid for c in floor_app.pool._pool)
    meter.costs.clear()
    for i in range(n):
        lifecycle(warmup + i)
        for _ in range(8):
            floor_write(i)
    _report(meter, messages_per_lifecycle[warmup:], n)
    if sql:
        meter.trace = []
        lifecycle(warmup + n)
        print("\n== the statements of one lifecycle\n" + "\n".join(meter.trace))
        meter.trace = None

    if cprofile:
        passes = [(focus, focus)] if focus else [("actions", "POST"), ("steps", "step")]
        for name, labels in passes:
            meter.profiler = cProfile.Profile(time.process_time)
            original_measure = meter.measure

            @contextmanager
            def only(label: str, _m: Callable[..., Any] = original_measure, _p: str = labels):
                profiler = meter.profiler
                if not label.startswith(_p):
                    meter.profiler = None
                try:
                    with _m(label):
                        yield
                finally:
                    meter.profiler = profiler

            meter.measure = only  # type: ignore[method-assign]
            for i in range(n):
                lifecycle(warmup + n + i)
            meter.measure = original_measure  # type: ignore[method-assign]
            out = io.StringIO()
            stats = pstats.Stats(meter.profiler, stream=out)
            stats.sort_stats("tottime").print_stats(cprofile)
            print(f"\n== cProfile, {name} of {n} lifecycles, by own time")
            print(_trim(out.getvalue()))
            out = io.StringIO()
            pstats.Stats(meter.profiler, stream=out).sort_stats("cumulative").print_stats(cprofile)
            print(f"\n== cProfile, {name} of {n} lifecycles, cumulative")
            print(_trim(out.getvalue()))
            meter.profiler = None
    if deliveries:
        _deliveries(meter, client, engine, deliveries)
    celery_app.control.purge()
    engine.dispose()


def _deliveries(meter: Meter, client: Any, engine: sa.Engine, n: int) -> None:
    """Send ``n`` pings (after 20 not counted), then ``n`` more split into claim, send and
    record, and print what each costs."""
    from gigco import webhooks
    from gigco.tasks.webhooks import deliver
    from tests.harness.webhooks import receiving

    parts = {"claim": webhooks.claim, "send": webhooks.send, "record": webhooks.record_attempt}

    def metered(label: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            with meter.measure(f"deliver: {label}"):
                return f(*args, **kw)

        return call

    with receiving() as receiver:
        r = client.post(
            "/v1/webhook-endpoints", json={"url": receiver.url("/h")}, headers=auth(ADMIN_TOKEN)
        )
        assert r.status_code == 201, r.json
        ping = f"/v1/webhook-endpoints/{r.json['id']}/ping"
        for _ in range(20 + 2 * n):
            assert client.post(ping, headers=auth(ADMIN_TOKEN)).status_code == 202
        with engine.connect() as conn:
            ids = conn.scalars(
                sa.text("SELECT id FROM webhook_deliveries WHERE status = 'pending' ORDER BY id")
            ).all()
        for delivery_id in ids[:20]:
            assert deliver.run(delivery_id) == "delivered"
        meter.costs.clear()
        for delivery_id in ids[20 : 20 + n]:
            with meter.measure("deliver (the whole task)"):
                assert deliver.run(delivery_id) == "delivered"
        # A second batch split into its parts (measuring adds its own cost to an outer label).
        webhooks.claim = metered("claim", parts["claim"])  # type: ignore[assignment]
        webhooks.send = metered("send", parts["send"])  # type: ignore[assignment]
        webhooks.record_attempt = metered("record", parts["record"])  # type: ignore[assignment]
        try:
            for delivery_id in ids[20 + n :]:
                assert deliver.run(delivery_id) == "delivered"
        finally:
            webhooks.claim = parts["claim"]  # type: ignore[assignment]
            webhooks.send = parts["send"]  # type: ignore[assignment]
            webhooks.record_attempt = parts["record"]  # type: ignore[assignment]
    print(f"\n{n} webhook deliveries (a ping each, receiver answers 204 at once), per delivery")
    print(f"{'':28} {'stmts':>6} {'trips':>6} {'CPU ms':>7} {'PG ms':>6}")
    for label, c in sorted(meter.costs.items()):
        print(
            f"{label:28} {c.statements / n:6.1f} {c.round_trips / n:6.1f}"
            f" {c.cpu / n * 1000:7.2f} {c.pg_cpu / n * 1000:6.2f}"
        )


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    site = str(Path(sys.prefix))
    return "\n".join(line.replace(site, "~") for line in lines[start:] if line.strip())


def _report(meter: Meter, messages: list[int], n: int) -> None:
    floor = meter.costs.pop("floor write (flask_floor)")
    floor_cpu = floor.cpu / floor.calls * 1000
    floor_pg = floor.pg_cpu / floor.calls * 1000
    print(
        f"{n} lifecycles; per call (ratio to flask_floor's write: {FLOOR_STATEMENTS} statements,"
        f" {FLOOR_ROUND_TRIPS} round trips, {floor_cpu:.2f} ms CPU, {floor_pg:.2f} ms PG CPU)"
    )
    head = f"{'':28} {'calls':>5} {'stmts':>6} {'trips':>6} {'CPU ms':>7} {'PG ms':>6}"
    print(head + f" {'×stmts':>7} {'×trips':>7} {'×CPU':>6}")
    per_lifecycle = Cost()
    for label in sorted(meter.costs, key=lambda k: (k.startswith("step"), k)):
        c = meter.costs[label]
        k = c.calls
        print(
            f"{label:28} {k:5d} {c.statements / k:6.1f} {c.round_trips / k:6.1f}"
            f" {c.cpu / k * 1000:7.2f} {c.pg_cpu / k * 1000:6.2f}"
            f" {c.statements / k / FLOOR_STATEMENTS:7.1f}"
            f" {c.round_trips / k / FLOOR_ROUND_TRIPS:7.1f}"
            f" {c.cpu / k * 1000 / floor_cpu:6.1f}"
        )
        per_lifecycle.statements += c.statements
        per_lifecycle.round_trips += c.round_trips
        per_lifecycle.cpu += c.cpu
        per_lifecycle.pg_cpu += c.pg_cpu
    p = per_lifecycle
    print(
        f"{'per lifecycle':28} {'':5} {p.statements / n:6.1f} {p.round_trips / n:6.1f}"
        f" {p.cpu / n * 1000:7.2f} {p.pg_cpu / n * 1000:6.2f}"
    )
    print(f"broker messages per lifecycle: {sum(messages) / max(1, len(messages)):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="lifecycles measured")
    parser.add_argument("--warmup", type=int, default=3, help="lifecycles run first, not counted")
    parser.add_argument("--cprofile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--database", default="gigco_bench_profile")
    parser.add_argument("--focus", help="profile only the labels starting with this")
    parser.add_argument("--sql", action="store_true", help="print one lifecycle's statements")
    parser.add_argument(
        "--endpoints", action="store_true", help="a webhook endpoint per party and the operator"
    )
    parser.add_argument("--deliveries", type=int, default=0, help="webhook pings sent last")
    args = parser.parse_args()
    run(
        args.n,
        args.warmup,
        args.cprofile,
        args.database,
        args.sql,
        args.focus,
        args.endpoints,
        args.deliveries,
    )


if __name__ == "__main__":
    main()

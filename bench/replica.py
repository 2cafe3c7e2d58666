"""What a read replica takes off the primary: statements and round trips counted per node.

    .venv/bin/python -m bench.replica [--n 10] [--warmup 2] [--reads 5]

Starts a PostgreSQL primary and its synchronous streaming standby on 127.0.0.1 (the cluster
tier's ``tests/clusters/pg_pair.py``; or give ``--primary``/``--replica`` server URLs of a
pair of your own), and drives whole lifecycles in-process as ``bench/profile.py`` does (the
Flask test client, every published step run through ``LifecycleTask``), four ways: without
and with ``GIGCO_READ_DATABASE_URL``, each without and with a read load. The read load, per
lifecycle and ``--reads`` times: the consumer and the worker each list their jobs and poll
their feed from their last cursor; once per lifecycle the operator opens the console's
dashboard and jobs list. Every statement, BEGIN, COMMIT, ROLLBACK and checkout check that
reaches a server is counted on the node it reaches (a SQLAlchemy listener on every engine and
pool, keyed by the server's port). Counts, not times: they do not depend on how busy the
machine is, so this may run on a shared one.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from celery.signals import before_task_publish
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from bench.profile import REDIS_URL, Published
from gigco.config import load_settings
from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.console import Ops
from tests.harness.database import create_database, url_of
from tests.harness.env import UNMET_LIMITS
from tests.harness.http import auth

ADMIN_TOKEN = "bench-operator-token-0123456789"


class NodeMeter:
    """Statements and round trips per server port while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.statements: Counter[int] = Counter()
        self.round_trips: Counter[int] = Counter()

    def install(self) -> None:
        """Listen on every engine and pool of the process."""
        event.listen(Engine, "before_cursor_execute", self._execute)
        event.listen(Engine, "commit", self._end)
        event.listen(Engine, "rollback", self._end)
        event.listen(Pool, "checkout", self._checkout)
        event.listen(Pool, "reset", self._reset)

    @staticmethod
    def _port(dbapi: Any) -> int:
        return int(dbapi.info.port)

    def _execute(self, conn: Any, *_: Any) -> None:
        if not self.on:
            return
        raw = conn.connection.dbapi_connection
        port = self._port(raw)
        self.statements[port] += 1
        self.round_trips[port] += 1
        if not raw.autocommit and raw.status == 1:  # psycopg2 sends BEGIN first
            self.round_trips[port] += 1

    def _end(self, conn: Any) -> None:
        raw = conn.connection.dbapi_connection
        if self.on and not raw.autocommit and raw.status == 2:  # IN_TRANSACTION
            self.round_trips[self._port(raw)] += 1

    def _checkout(self, dbapi: Any, _record: Any, _proxy: Any) -> None:
        if self.on:  # gigco.db's checkout check: one SELECT in autocommit
            self.round_trips[self._port(dbapi)] += 1

    def _reset(self, dbapi: Any, _record: Any, _state: Any) -> None:
        if self.on and not dbapi.autocommit and dbapi.status == 2:
            self.round_trips[self._port(dbapi)] += 1

    @contextlib.contextmanager
    def counting(self, on: bool = True) -> Iterator[None]:
        """Count (or, ``on=False``, do not) while in the block."""
        was, self.on = self.on, on
        try:
            yield
        finally:
            self.on = was

    def clear(self) -> None:
        """Forget what was counted."""
        self.statements.clear()
        self.round_trips.clear()


class Driver:
    """Lifecycles, and the read load beside them, through one app."""

    def __init__(self, app: Any, engine: sa.Engine, published: Published, meter: NodeMeter):
        from gigco.tasks import app as celery_app

        self.celery = celery_app
        self.meter = meter
        self.client = app.test_client()
        self.engine = engine
        self.published = published
        self.consumers = [self._signup("/v1/consumers", consumer_body()) for _ in range(5)]
        self.workers = [self._signup("/v1/workers", worker_body()) for _ in range(5)]
        self.worker_token = {w["id"]: w["token"] for w in self.workers}
        self.cursors: dict[str, str] = {}
        self.ops = Ops(app.test_client())
        assert self.ops.login(ADMIN_TOKEN).status_code == 303

    def _signup(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(path, json=body)
        assert r.status_code == 201, r.json
        return r.json

    def _call(self, method: str, path: str, token: str, **kw: Any) -> Any:
        r = self.client.open(path, method=method, headers=auth(token), **kw)
        assert r.status_code < 300, (path, r.status_code, r.json)
        return r.json

    def _run_tasks(self) -> None:
        while due := [(n, j) for n, j, eta in self.published.take() if eta is None]:
            for name, job_id in due:
                self.celery.tasks[name](job_id)

    def _reads(self, tokens: list[str], reads: int) -> None:
        for _ in range(reads):
            for token in tokens:
                self._call("GET", "/v1/jobs", token)
                after = self.cursors.get(token, "0-0")
                page = self._call("GET", f"/v1/notifications/feed?after={after}", token)
                if page:
                    self.cursors[token] = page[-1]["cursor"]

    def lifecycle(self, i: int, reads: int) -> None:
        """One job from posting to closed; ``reads`` read rounds by its two parties."""
        consumer = self.consumers[i % len(self.consumers)]["token"]
        job_id = self._call("POST", "/v1/jobs", consumer, json=job_body())["id"]
        self._run_tasks()
        self._call("GET", f"/v1/jobs/{job_id}", consumer)
        self._call("POST", f"/v1/jobs/{job_id}/offer/accept", consumer)
        self._run_tasks()
        with self.meter.counting(False), self.engine.connect() as conn:  # the bench's own
            worker_id = conn.execute(
                sa.text(
                    "SELECT worker_id FROM opportunities WHERE job_id = :j AND status = 'pending'"
                ),
                {"j": job_id},
            ).scalar_one()
        worker = self.worker_token[worker_id]
        self._call("POST", f"/v1/jobs/{job_id}/opportunity/accept", worker)
        self._run_tasks()
        self._call("POST", f"/v1/jobs/{job_id}/start", worker)
        self._call("POST", f"/v1/jobs/{job_id}/complete", worker)
        self._run_tasks()
        self._call("POST", f"/v1/jobs/{job_id}/reviews", consumer, json={"rating": 5})
        self._call("POST", f"/v1/jobs/{job_id}/reviews", worker, json={"rating": 4})
        self._run_tasks()
        self._reads([consumer, worker], reads)
        if reads:
            self.ops.page("/ops/")
            self.ops.page("/ops/jobs")
        with self.meter.counting(False), self.engine.connect() as conn:
            status = conn.scalar(sa.text("SELECT status FROM jobs WHERE id = :j"), {"j": job_id})
        assert status == "closed", (job_id, status)


def measure(
    primary: str, replica: str | None, *, n: int, warmup: int, reads: int, meter: NodeMeter
) -> tuple[float, float, float, float]:
    """Per lifecycle: (primary statements, primary round trips, replica's, replica's)."""
    from gigco.tasks import steps as _steps  # noqa: F401 registers the step tasks
    from gigco.web import create_app

    env = {
        "GIGCO_DATABASE_URL": primary,
        "GIGCO_BROKER_URL": REDIS_URL,
        "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
        "GIGCO_LOG_LEVEL": "WARNING",
        "GIGCO_OPS_SECURE_COOKIE": "false",
        **UNMET_LIMITS,
    } | ({"GIGCO_READ_DATABASE_URL": replica} if replica else {})
    published = Published()
    before_task_publish.connect(published, weak=False)
    engine = sa.create_engine(primary)
    try:
        driver = Driver(create_app(load_settings(env)), engine, published, meter)
        driver.celery.control.purge()
        for i in range(warmup):
            driver.lifecycle(i, reads)
        meter.clear()
        with meter.counting():
            for i in range(n):
                driver.lifecycle(warmup + i, reads)
    finally:
        before_task_publish.disconnect(published)
        engine.dispose()
    a = sa.make_url(primary).port
    b = sa.make_url(replica).port if replica else -1
    return (
        meter.statements[a] / n,
        meter.round_trips[a] / n,
        meter.statements[b] / n,
        meter.round_trips[b] / n,
    )


def run(n: int, warmup: int, reads: int, primary: str | None, replica: str | None) -> None:
    """Measure the four ways and print one table."""
    pair = None
    if primary is None or replica is None:
        from tests.clusters.pg_pair import PostgresPair

        pair = PostgresPair()
        pair.start()
        primary, replica = pair.a.url(), pair.b.url()
    meter = NodeMeter()
    meter.install()
    try:
        rows = []
        for label, on_replica, load in (
            ("primary only, lifecycles", False, 0),
            (f"primary only, + {reads} read rounds", False, reads),
            ("with the replica, lifecycles", True, 0),
            (f"with the replica, + {reads} read rounds", True, reads),
        ):
            name = f"gigco_bench_replica_{len(rows)}"
            create_database(primary, name, replace=True)
            rows.append(
                (
                    label,
                    *measure(
                        url_of(primary, name),
                        url_of(replica, name) if on_replica else None,
                        n=n,
                        warmup=warmup,
                        reads=load,
                        meter=meter,
                    ),
                )
            )
    finally:
        if pair is not None:
            pair.destroy()
    print(f"{n} lifecycles each (after {warmup}); per lifecycle:")
    print(f"{'':40} {'primary stmts':>13} {'trips':>6} {'replica stmts':>13} {'trips':>6}")
    for label, ps, pt, rs, rt in rows:
        print(f"{label:40} {ps:13.1f} {pt:6.1f} {rs:13.1f} {rt:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="lifecycles measured per way")
    parser.add_argument("--warmup", type=int, default=2, help="lifecycles run first, not counted")
    parser.add_argument("--reads", type=int, default=5, help="read rounds per lifecycle")
    parser.add_argument("--primary", help="the primary server's URL (default: start a pair)")
    parser.add_argument("--replica", help="its standby's server URL")
    args = parser.parse_args()
    run(args.n, args.warmup, args.reads, args.primary, args.replica)


if __name__ == "__main__":
    main()

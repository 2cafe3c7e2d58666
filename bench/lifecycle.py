"""Whole job lifecycles over HTTP against the production topology, beside the Celery floor.

    .venv/bin/python -m bench.lifecycle [--n 500] [--probe 20] [--parties 10]

N jobs are posted at once and driven to ``closed``. Each party (consumer or worker) polls
its own notification feed (``/v1/notifications/feed?after=<cursor>``) every ``--poll``
seconds like an app would and answers each notification the moment it arrives: the
consumer accepts the offer, the worker accepts the opportunity, starts and completes when
scheduled, both review when asked. Then a probe drives one job at a time, each signal sent
the moment the job allows it. Then the bare Celery chain from ../shared/peers/celery_floor
runs on the same machine for the ratio, and with ``--temporal`` the peers' Temporal design
with its gated driving.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from bench.topology import (
    ADMIN_TOKEN,
    WEB_THREADS,
    WEB_WORKERS,
    WORKER_ARGS,
    Topology,
    cpu_delta,
    cpu_ms_per,
    production,
)
from gigco.db import make_engine
from tests.harness.bodies import MISSING
from tests.harness.bodies import job_body as base_job_body
from tests.harness.http import auth

PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers"
LONG = {  # nothing may expire while the benchmark drives jobs
    "GIGCO_OFFER_TTL_SECONDS": "600",
    "GIGCO_OPPORTUNITY_TTL_SECONDS": "600",
    "GIGCO_REVIEW_WINDOW_SECONDS": "600",
    "GIGCO_MATCH_RETRY_BASE_SECONDS": "1",
}
STEPS = {  # step: (event that makes it due, event that says it is done)
    "price_job": ("created", "priced"),
    "send_offer": ("priced", "offered"),
    "match_job": ("accepted", "opportunity_offered"),
    "schedule_job": ("worker_assigned", "scheduled"),
    "process_payment": ("completed", "paid"),
    "request_reviews": ("paid", "review_pending"),
    "close_job": ("review_received", "closed"),
}


@dataclass
class Answer:
    """A read HTTP response."""

    status_code: int
    text: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)


class Http:
    """A small keep-alive HTTP client on aiohttp (httpx cost ~5 ms of CPU per request here)."""

    def __init__(self, base_url: str, connections: int = 64):
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    async def request(self, method: str, url: str, **kw: Any) -> Answer:
        """Send one request and read the whole answer."""
        async with self.session.request(method, self.base_url + url, **kw) as r:
            return Answer(r.status, await r.text())

    async def post(self, url: str, **kw: Any) -> Answer:
        """POST ``url``."""
        return await self.request("POST", url, **kw)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.session.close()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)] if ordered else float("nan")


def _ms(value: float) -> int | None:
    """Whole milliseconds; None when nothing was measured (a capped run closed no job)."""
    return None if value != value else round(value)


@dataclass
class Calls:
    """HTTP latencies per call kind, in milliseconds."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    repeats: int = 0  # notifications the feed handed out twice (must stay 0)

    async def __call__(self, client: Http, kind: str, method: str, url: str, **kw: Any) -> Answer:
        t0 = time.perf_counter()
        r = await client.request(method, url, **kw)
        self.ms[kind].append((time.perf_counter() - t0) * 1000)
        self.codes[kind][r.status_code] += 1
        if r.status_code >= 500:
            raise RuntimeError(f"{method} {url} -> {r.status_code} {r.text}")
        return r

    def table(self) -> dict[str, str]:
        return {
            k: f"n={len(v)} p50={pct(v, 50):.1f} p99={pct(v, 99):.1f} "
            + " ".join(f"{code}:{n}" for code, n in sorted(self.codes[k].items()))
            for k, v in sorted(self.ms.items())
        }


BERLIN, PARIS = 52.52, 48.85  # the measured runs' city, and the warm-up's (no overlap)


async def sign_up(client: Http, n_parties: int, tag: str, lat: float = BERLIN) -> tuple[list, list]:
    consumers, workers = [], []
    for i in range(n_parties):
        r = await client.post("/v1/consumers", json={"name": f"C{i}", "email": f"c{i}-{tag}@b.io"})
        consumers.append(r.json())
        r = await client.post(
            "/v1/workers",
            json={
                "name": f"W{i}",
                "email": f"w{i}-{tag}@b.io",
                "skills": ["plumbing"],
                "location": {"lat": lat + i / 1000, "lng": 13.4},
                "service_radius_km": 50,
            },
        )
        workers.append(r.json())
    return consumers, workers


def job_body(i: int, lat: float = BERLIN) -> dict[str, Any]:
    # Distinct 2-hour windows, so no worker is ever busy for another job's window.
    start = dt.datetime(2031, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=3 * i)
    return base_job_body(
        start=start, title=f"Job {i}", description=MISSING, location={"lat": lat, "lng": 13.4}
    )


async def inbox(
    client: Http,
    calls: Calls,
    party: dict[str, Any],
    role: str,
    done: set[int],
    total: int,
    poll: float,
) -> None:
    """Poll one party's notification feed and answer each at once, as an app would."""
    headers = auth(party["token"])
    answering: set[asyncio.Task[None]] = set()

    async def answer(job: int, kind: str) -> None:
        if role == "consumer" and kind == "offer":
            await calls(
                client, "POST offer/accept", "POST", f"/v1/jobs/{job}/offer/accept", headers=headers
            )
        elif role == "worker" and kind == "opportunity":
            await calls(
                client,
                "POST opportunity/accept",
                "POST",
                f"/v1/jobs/{job}/opportunity/accept",
                headers=headers,
            )
        elif role == "worker" and kind == "schedule":
            await calls(client, "POST start", "POST", f"/v1/jobs/{job}/start", headers=headers)
            await calls(
                client, "POST complete", "POST", f"/v1/jobs/{job}/complete", headers=headers
            )
        elif kind == "review_request":
            await calls(
                client,
                "POST reviews",
                "POST",
                f"/v1/jobs/{job}/reviews",
                json={"rating": 5},
                headers=headers,
            )
        elif role == "consumer" and kind == "closure":
            done.add(job)

    # The feed never skips nor repeats a notification: read from the last cursor seen.
    # A repeat would be a bug, so it is counted, not hidden.
    seen: set[int] = set()
    after = "0-0"
    while len(done) < total:
        r = await calls(
            client,
            "GET notifications/feed",
            "GET",
            "/v1/notifications/feed",
            params={"after": after, "limit": 500},
            headers=headers,
        )
        for note in r.json():
            if note["id"] in seen:
                calls.repeats += 1
                continue
            seen.add(note["id"])
            after = note["cursor"]
            task = asyncio.create_task(answer(note["job_id"], note["kind"]))
            answering.add(task)
            task.add_done_callback(answering.discard)
        await asyncio.sleep(poll)  # a fixed cadence, as the Temporal driver polls its query
    await asyncio.gather(*answering)


class Stalled(RuntimeError):
    """No signal sent and no job closed for a minute."""


async def until_done(everything: Awaitable[object], cap: float | None) -> str:
    """Await ``everything``; with a ``cap``, stop at it or at a stall. Returns how it ended."""
    try:
        await asyncio.wait_for(everything, cap)
    except TimeoutError:
        return f"capped at {cap:.0f} s"
    except Stalled as stalled:
        if cap is None:
            raise
        return str(stalled)
    return "all closed"


async def throughput(
    topo: Topology,
    n: int,
    n_parties: int,
    poll: float,
    *,
    prepare: Callable[[Http, list[Any], list[Any]], Awaitable[object]] | None = None,
    cap: float | None = None,
    lat: float = BERLIN,
) -> dict[str, Any]:
    """N lifecycles at once; returns lifecycles/s and latencies.

    ``prepare(client, consumers, workers)`` runs once the parties are signed up. With ``cap``
    (seconds) or when it stalls, the run ends early and counts the lifecycles that closed.
    Parties and jobs are at latitude ``lat``: a warm-up elsewhere shares no worker with it.
    """
    calls = Calls()
    async with Http(topo.base_url) as client:
        consumers, workers = await sign_up(client, n_parties, f"t{time.time_ns()}", lat)
        if prepare is not None:
            await prepare(client, consumers, workers)
        since = last_job_id(topo)
        done: set[int] = set()
        cpu0, t0 = topo.cpu_seconds(), time.perf_counter()
        loops = [inbox(client, calls, c, "consumer", done, n, poll) for c in consumers]
        loops += [inbox(client, calls, w, "worker", done, n, poll) for w in workers]
        sem = asyncio.Semaphore(32)

        async def post(i: int) -> None:
            async with sem:
                c = consumers[i % n_parties]
                r = await calls(
                    client,
                    "POST jobs",
                    "POST",
                    "/v1/jobs",
                    json=job_body(i, lat),
                    headers=auth(c["token"]),
                )
                assert r.status_code == 201, r.text

        async def watchdog() -> None:
            def signals() -> int:
                return sum(len(v) for k, v in calls.ms.items() if k.startswith("POST"))

            last, since = -1, time.monotonic()
            while len(done) < n:
                await asyncio.sleep(0.05)
                if (len(done), signals()) != last:
                    last, since = (len(done), signals()), time.monotonic()
                elif time.monotonic() - since > 60:
                    raise Stalled(
                        f"no signal sent and no job closed for 60 s; {len(done)}/{n} closed; "
                        f"see the database {topo.env['GIGCO_DATABASE_URL']}"
                    )
            # The run ends when the driver sees the last job closed, not when the parties'
            # feed loops next wake up to stop.
            finished.append((time.perf_counter(), topo.cpu_seconds()))

        finished: list[tuple[float, dict[str, float]]] = []
        ended = await until_done(
            asyncio.gather(watchdog(), *loops, *(post(i) for i in range(n))), cap
        )
        t1, cpu1 = finished[0] if finished else (time.perf_counter(), topo.cpu_seconds())
        wall = t1 - t0
        closed = len(done)
    steps, lifecycle = step_latencies(topo, since)
    return {
        "n": n,
        "closed": closed,
        "ended": ended,
        "wall_s": round(wall, 2),
        "lifecycles_per_s": round(closed / wall, 1),
        "lifecycle_ms": {"p50": _ms(pct(lifecycle, 50)), "p99": _ms(pct(lifecycle, 99))},
        "http_ms": calls.table(),
        "feed_repeats": calls.repeats,
        "step_ms": steps,
        "cpu_cores": cpu_delta(cpu0, cpu1, wall),
        "cpu_ms_per_lifecycle": cpu_ms_per(cpu0, cpu1, closed),
    }


def last_job_id(topo: Topology) -> int:
    """The newest job's id so far (0 when none): the jobs after it are the run's own."""
    engine = make_engine(topo.env["GIGCO_DATABASE_URL"])
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM jobs")).scalar_one()
    engine.dispose()
    return int(last)


def step_latencies(topo: Topology, since: int = 0) -> tuple[dict[str, str], list[float]]:
    """Each system step's due → done, and each job's created → closed, from the history of
    the jobs after job ``since`` (a warm-up's jobs are left out)."""
    engine = make_engine(topo.env["GIGCO_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT job_id, type, created_at FROM job_events WHERE job_id > :since"
                " ORDER BY job_id, seq"
            ),
            {"since": since},
        ).all()
    engine.dispose()
    by_job: dict[int, dict[str, dt.datetime]] = defaultdict(dict)
    for job_id, type_, at in rows:
        by_job[job_id][type_] = at  # the last of a type wins (the second review)
    out, lifecycle = {}, []
    for step, (due, done) in STEPS.items():
        ms = [
            (e[done] - e[due]).total_seconds() * 1000
            for e in by_job.values()
            if due in e and done in e
        ]
        out[step] = f"p50={pct(ms, 50):.1f} p99={pct(ms, 99):.1f}"
    lifecycle = [
        (e["closed"] - e["created"]).total_seconds() * 1000
        for e in by_job.values()
        if "closed" in e
    ]
    return out, lifecycle


async def probe(topo: Topology, n: int, warmup: int = 0) -> dict[str, Any]:
    """One job at a time, each signal sent the moment the job allows it (after ``warmup``
    jobs run the same way and not counted)."""
    calls = Calls()
    async with Http(topo.base_url, connections=4) as client:
        (consumer,), (worker,) = await sign_up(client, 1, f"p{time.time_ns()}")
        ch, wh, admin = auth(consumer["token"]), auth(worker["token"]), auth(ADMIN_TOKEN)
        totals = []

        async def until(status: str, job: int) -> None:
            while True:
                r = await calls(client, "GET job", "GET", f"/v1/jobs/{job}", headers=admin)
                if r.json()["status"] == status:
                    return
                await asyncio.sleep(0.001)

        since = 0
        for i in range(-warmup, n):
            if i == 0:
                calls, since = Calls(), last_job_id(topo)
            t0 = time.perf_counter()
            r = await calls(
                client, "POST jobs", "POST", "/v1/jobs", json=job_body(10_000 + i), headers=ch
            )
            job = r.json()["id"]
            await until("offered", job)
            await calls(
                client, "POST offer/accept", "POST", f"/v1/jobs/{job}/offer/accept", headers=ch
            )
            while not (
                await calls(client, "GET opportunities", "GET", "/v1/opportunities", headers=wh)
            ).json():
                await asyncio.sleep(0.001)
            await calls(
                client,
                "POST opportunity/accept",
                "POST",
                f"/v1/jobs/{job}/opportunity/accept",
                headers=wh,
            )
            await until("scheduled", job)
            await calls(client, "POST start", "POST", f"/v1/jobs/{job}/start", headers=wh)
            await calls(client, "POST complete", "POST", f"/v1/jobs/{job}/complete", headers=wh)
            await until("review_pending", job)
            for h in (ch, wh):
                await calls(
                    client,
                    "POST reviews",
                    "POST",
                    f"/v1/jobs/{job}/reviews",
                    json={"rating": 5},
                    headers=h,
                )
            await until("closed", job)
            if i >= 0:
                totals.append((time.perf_counter() - t0) * 1000)
    return {
        "n": n,
        "create_to_closed_ms": {
            "p50": round(pct(totals, 50), 1),
            "p99": round(pct(totals, 99), 1),
            "mean": round(statistics.fmean(totals), 1),
        },
        "http_ms": calls.table(),
        "step_ms": step_latencies(topo, since)[0],
    }


def celery_floor(n: int) -> dict[str, Any] | None:
    """The peers' bare 7-task Celery chain (one UPDATE each), same machine, same run."""
    here = PEERS / "celery_floor"
    if not here.exists():
        return None
    setup = (
        "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='peer') THEN "
        "CREATE ROLE peer LOGIN PASSWORD 'peer'; END IF; END$$;"
    )
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", setup], check=True)
    exists = subprocess.run(
        [
            "psql",
            "-tA",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            "SELECT 1 FROM pg_database WHERE datname='peer_floor'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(
            [
                "psql",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE peer_floor OWNER peer",
            ],
            check=True,
        )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "-P",
            "prefork",
            "-c",
            "2",
            "-Q",
            "peer_floor",
            "--loglevel",
            "warning",
        ],
        cwd=here,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out = subprocess.run(
            [
                sys.executable,
                "bench.py",
                "--kind",
                "update",
                "--n",
                str(n),
                "--worker-pid",
                str(worker.pid),
            ],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def temporal(n: int, probe_n: int) -> dict[str, Any] | None:
    """The original Temporal design from ../shared/peers, same machine, same run.

    Its gated driving (each signal sent once a ``state`` query every 100 ms says the
    workflow waits for it) on the dev server's SQLite file store: the "same driving"; and
    its probe, one lifecycle at a time polled every 20 ms.
    """
    run = PEERS / "run.sh"
    if not run.exists():
        return None
    results = Path("/tmp/gigco-bench/peers") / time.strftime("%Y%m%dT%H%M%S")
    env = {
        **os.environ,
        "STORES": "file",
        "MODES": "gated probe" if probe_n else "gated",
        "PROBE_N": str(probe_n),
        "SKIP_CELERY": "1",
        "PGBENCH_SECS": "0",
        "RESULTS": str(results),
    }
    subprocess.run(["bash", str(run), str(n)], env=env, check=True, stdout=subprocess.DEVNULL)
    (jsonl,) = results.glob("*.jsonl")
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    return {row["label"]: row for row in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--probe", type=int, default=20, help="jobs run one at a time")
    ap.add_argument(
        "--warmup",
        type=int,
        default=40,
        help="lifecycles run the same way first, not measured (the probe runs 3), so that "
        "every process has imported and compiled what it needs: steady state, not start-up",
    )
    ap.add_argument("--parties", type=int, default=10, help="consumers and workers each")
    ap.add_argument("--poll", type=float, default=0.25, help="feed poll interval, seconds")
    ap.add_argument("--web-workers", type=int, default=WEB_WORKERS)
    ap.add_argument("--web-threads", type=int, default=WEB_THREADS)
    ap.add_argument("--web-class", default="gthread", help="gunicorn's worker class (-k)")
    ap.add_argument("--worker-args", default=" ".join(WORKER_ARGS))
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument(
        "--temporal", action="store_true", help="also run the Temporal peer (gated, file store)"
    )
    ap.add_argument("--profile", metavar="DIR", help="py-spy the API and worker into DIR")
    a = ap.parse_args()
    report: dict[str, Any] = {"args": vars(a)}
    with production(
        timers=LONG,
        web_workers=a.web_workers,
        web_threads=a.web_threads,
        web_class=a.web_class,
        worker_args=tuple(a.worker_args.split()),
        profile=Path(a.profile) if a.profile else None,
    ) as topo:
        if a.warmup:
            asyncio.run(throughput(topo, a.warmup, a.parties, a.poll, lat=PARIS))
        report["throughput"] = asyncio.run(throughput(topo, a.n, a.parties, a.poll))
        print(json.dumps(report["throughput"], indent=1), flush=True)
    if a.probe:
        with production(
            timers=LONG,
            web_workers=a.web_workers,
            web_threads=a.web_threads,
            web_class=a.web_class,
            worker_args=tuple(a.worker_args.split()),
        ) as topo:
            report["probe"] = asyncio.run(probe(topo, a.probe, warmup=3 if a.warmup else 0))
            print(json.dumps(report["probe"], indent=1), flush=True)
    if not a.skip_floor:
        floor = celery_floor(a.n)
        report["celery_floor"] = floor
        if floor:
            ratio = report["throughput"]["lifecycles_per_s"] / floor["per_s"]
            report["ratio_to_floor"] = round(ratio, 3)
            print(
                json.dumps(
                    {"celery_floor_per_s": floor["per_s"], "ratio": report["ratio_to_floor"]}
                ),
                flush=True,
            )
    if a.temporal:
        peer = temporal(a.n, a.probe)
        report["temporal"] = peer
        if peer:
            gated = peer["temporal_file"]
            ratio = report["throughput"]["lifecycles_per_s"] / gated["per_s"]
            report["ratio_to_temporal"] = round(ratio, 2)
            summary = {"temporal_per_s": gated["per_s"], "ratio": report["ratio_to_temporal"]}
            if "temporal_file_probe" in peer:
                one = peer["temporal_file_probe"]
                summary["temporal_probe_ms"] = [one["lifecycle_p50_ms"], one["lifecycle_p99_ms"]]
            print(json.dumps(summary), flush=True)
    out = Path("/tmp/gigco-bench/lifecycle-last.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"report: {out}")


if __name__ == "__main__":
    main()

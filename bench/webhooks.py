"""A slow webhook receiver must not delay lifecycle steps (issue 15), beside bench.lifecycle.

    .venv/bin/python -m bench.webhooks [--n 100] [--delay 10] [--backlog 1000] [--cap 150]

Three runs of the lifecycle benchmark's driving (``bench.lifecycle.throughput``: N jobs at
once, each party answering its notification feed), each on a fresh production topology:

- ``baseline``: no webhook endpoint; the lifecycle worker ``-Q celery,sweeps,recovery --pool prefork
  --concurrency 2`` (as bench.lifecycle) and a webhooks worker ``-Q webhooks`` beside it.
- ``separated``: the same processes; one endpoint per party (every consumer, every worker,
  the operator) on a receiver that takes ``--delay`` seconds per request, and ``--backlog``
  pings queued before the first job is posted — so the receiver is busy all run long, and
  every history event adds a delivery per endpoint that may see it.
- ``single``: the same receiver and backlog, but one plain worker consuming both queues
  (``celery -A gigco.tasks worker --pool prefork --concurrency 2``, the README's default):
  deliveries and steps share its two processes. Ended at ``--cap`` seconds if it has not
  finished; steps still waiting then are counted, not hidden.

Printed per run: lifecycles/s, creation → closed, each step's due → done (p50, p99), the steps
left waiting at the end, and how many deliveries the receiver got. The receiver runs in this
process (threads, one per request); ``GIGCO_WEBHOOK_TIMEOUT_SECONDS`` is raised above the
delay so each slow answer counts as delivered, not as a timeout to retry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench.lifecycle import LONG, STEPS, Http, throughput
from bench.topology import ADMIN_TOKEN, REDIS_URL, Topology, production
from gigco.db import make_engine
from gigco.tasks.celery_settings import QUEUES, WEBHOOK_QUEUE
from tests.harness.http import auth
from tests.harness.polling import wait_for
from tests.harness.servers import worker_argv
from tests.harness.webhooks import Receiver, receiving

LIFECYCLE_WORKER = ("--pool", "prefork", "--concurrency", "2")
WEBHOOK_WORKER = ("-Q", WEBHOOK_QUEUE, "-n", "webhooks@%h", "--pool", "threads")
# The lifecycle worker apart from webhooks: every other queue GigCo uses.
LIFECYCLE_QUEUES = ",".join(q for q in QUEUES if q != WEBHOOK_QUEUE)


def settings(delay: float) -> dict[str, str]:
    """The benchmark's timers, receivers on 127.0.0.1, a timeout above the receiver's delay."""
    return {
        **LONG,
        "GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
        "GIGCO_WEBHOOK_TIMEOUT_SECONDS": str(max(10.0, 3 * delay)),
    }


@contextlib.contextmanager
def slow_receiver(delay: float) -> Iterator[Receiver]:
    """The harness receiver, answering 204 after ``delay`` seconds (the slow party)."""
    with receiving() as receiver:

        def answer(path: str, headers: dict[str, str], tries: int) -> int:
            time.sleep(delay)  # the receiver under test is slow on purpose
            return 204

        receiver.answer = answer
        yield receiver


def subscribe(receiver: Receiver, backlog: int) -> Any:
    """``prepare`` for throughput: an endpoint per party, then ``backlog`` pings queued."""

    async def prepare(client: Http, consumers: list[Any], workers: list[Any]) -> None:
        owners = [auth(ADMIN_TOKEN)] + [auth(p["token"]) for p in consumers + workers]
        endpoints = []
        for i, headers in enumerate(owners):
            r = await client.post(
                "/v1/webhook-endpoints", json={"url": receiver.url(f"/p{i}")}, headers=headers
            )
            assert r.status_code == 201, r.text
            endpoints.append((r.json()["id"], headers))
        sem = asyncio.Semaphore(16)

        async def ping(k: int) -> None:
            endpoint_id, headers = endpoints[k % len(endpoints)]
            async with sem:
                r = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/ping", headers=headers)
            assert r.status_code == 202, r.text

        await asyncio.gather(*(ping(k) for k in range(backlog)))
        # Start the clock only once a worker takes deliveries: the receiver is busy from then on.
        broker = redis.Redis.from_url(REDIS_URL)
        wait_for(
            lambda: broker.llen(WEBHOOK_QUEUE) < backlog,
            timeout=60,
            what="a worker to take webhook deliveries",
        )

    return prepare


def waiting_steps(topo: Topology) -> dict[str, int]:
    """Steps due but not done when the run ended (a capped run leaves some)."""
    engine = make_engine(topo.env["GIGCO_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT job_id, type FROM job_events")).all()
        deliveries = dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")
            ).all()
        )
    engine.dispose()
    seen: dict[int, set[str]] = defaultdict(set)
    for job_id, type_ in rows:
        seen[job_id].add(type_)
    waiting = {
        step: sum(1 for types in seen.values() if due in types and done not in types)
        for step, (due, done) in STEPS.items()
    }
    return {
        **{f"waiting {k}": v for k, v in waiting.items() if v},
        **{f"deliveries {k}": v for k, v in deliveries.items()},
    }


def run(name: str, a: argparse.Namespace, *, receiver: Receiver | None, split: bool) -> Any:
    """One topology, one driving; the summary of what it measured."""
    lifecycle_args = ("-Q", LIFECYCLE_QUEUES, *LIFECYCLE_WORKER) if split else LIFECYCLE_WORKER
    with production(
        timers=settings(a.delay),
        worker_args=lifecycle_args,
        database=a.database,
        logs=Path("/tmp/gigco-bench") / f"webhooks-{name}-{time.strftime('%Y%m%dT%H%M%S')}",
    ) as topo:
        if split:
            topo.start(
                "webhooks",
                worker_argv(*WEBHOOK_WORKER, "--concurrency", str(a.webhook_concurrency)),
            )
        prepare = subscribe(receiver, a.backlog) if receiver is not None else None
        got_before = len(receiver.requests) if receiver is not None else 0
        result = asyncio.run(throughput(topo, a.n, a.parties, a.poll, prepare=prepare, cap=a.cap))
        result["at_the_end"] = waiting_steps(topo)
        if receiver is not None:
            result["receiver_requests"] = len(receiver.requests) - got_before
    summary = {
        "run": name,
        "closed": f"{result['closed']}/{result['n']} ({result['ended']})",
        "lifecycles_per_s": result["lifecycles_per_s"],
        "lifecycle_ms": result["lifecycle_ms"],
        "step_ms": result["step_ms"],
        "at_the_end": result["at_the_end"],
        "receiver_requests": result.get("receiver_requests"),
        "cpu_cores": result["cpu_cores"],
    }
    print(json.dumps(summary, indent=1), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="lifecycles per run")
    ap.add_argument("--delay", type=float, default=10.0, help="receiver seconds per request")
    ap.add_argument("--backlog", type=int, default=1000, help="pings queued before the jobs")
    ap.add_argument("--cap", type=float, default=150.0, help="longest a run may take, seconds")
    ap.add_argument("--parties", type=int, default=10, help="consumers and workers each")
    ap.add_argument("--poll", type=float, default=0.25, help="feed poll interval, seconds")
    ap.add_argument("--webhook-concurrency", type=int, default=20, help="-Q webhooks threads")
    ap.add_argument("--runs", default="baseline,separated,single")
    ap.add_argument("--database", default="gigco_bench", help="dropped and re-created per run")
    a = ap.parse_args()
    report: dict[str, Any] = {"args": vars(a)}
    with slow_receiver(a.delay) as receiver:
        for name in a.runs.split(","):
            if name == "baseline":
                report[name] = run(name, a, receiver=None, split=True)
            elif name == "separated":
                report[name] = run(name, a, receiver=receiver, split=True)
            elif name == "single":
                report[name] = run(name, a, receiver=receiver, split=False)
            else:
                raise SystemExit(f"unknown run {name!r}")
    if "baseline" in report and "separated" in report:
        base, slow = report["baseline"], report["separated"]
        print(
            json.dumps(
                {
                    "separated / baseline lifecycles/s": round(
                        slow["lifecycles_per_s"] / base["lifecycles_per_s"], 2
                    ),
                    "creation -> closed p50 ms (baseline, separated)": [
                        base["lifecycle_ms"]["p50"],
                        slow["lifecycle_ms"]["p50"],
                    ],
                }
            ),
            flush=True,
        )
    out = Path("/tmp/gigco-bench/webhooks-last.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"report: {out}")


if __name__ == "__main__":
    main()

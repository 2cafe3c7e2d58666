"""A slow webhook receiver must not delay lifecycle steps (issue 15), beside bench.lifecycle.

    .venv/bin/python -m bench.webhooks [--n 100] [--delay 10] [--backlog 1000] [--cap 150]
        [--runs baseline,separated,single] (add "none" for the cost of having endpoints at all)

Runs of the lifecycle benchmark's driving (``bench.lifecycle.throughput``: N jobs at once,
each party answering its notification feed), each on a fresh production topology. The
variable under test is the receiver's slowness; everything else is the same:

- ``baseline``: one endpoint per party (every consumer, every worker, the operator) on a FAST
  receiver (204 at once), and ``--backlog`` pings queued before the first job; the lifecycle
  worker ``-Q celery,sweeps,recovery --pool threads --concurrency 4`` (as bench.lifecycle)
  and a webhooks worker ``-Q webhooks --pool threads`` beside it, at ``nice 10`` (production
  gives it its own cores; here a fast receiver's deliveries would otherwise take the
  lifecycle's CPU, which is the cost of delivering, not of a slow receiver; ``--no-nice``).
- ``separated``: the same, but the receiver takes ``--delay`` seconds per request, so the
  webhooks worker is busy all run long. "Unchanged by a slow receiver" is separated /
  baseline, printed at the end for lifecycles/s and each step's due → done p50.
- ``single``: the slow receiver on one plain worker consuming every queue (``celery -A
  gigco.tasks worker --pool threads --concurrency 4``, the lifecycle worker's settings):
  deliveries and steps share its four threads, so slow deliveries DO hold steps up — it
  shows why production runs ``-Q webhooks`` workers apart, not a result to hold. Ended at
  ``--cap`` seconds if it has not finished; steps still waiting then are counted.
- ``none`` (optional): no endpoint at all, the processes of baseline: none / baseline is
  the cost of having endpoints (the outbox rows and their messages), whatever the receiver.

Printed per run: lifecycles/s, creation → closed, each step's due → done (p50, p99), the steps
left waiting at the end, the deliveries by status, the messages left in the webhooks queue,
and how many requests the receiver got. The receiver runs in this process (threads, one per
request); ``GIGCO_WEBHOOK_TIMEOUT_SECONDS`` is raised above the delay so each slow answer
counts as delivered, not as a timeout to retry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench.lifecycle import LONG, STEPS, Http, throughput
from bench.topology import ADMIN_TOKEN, REDIS_URL, WORKER_ARGS, Topology, production
from gigco.db import make_engine
from gigco.tasks.celery_settings import QUEUES, WEBHOOK_QUEUE
from tests.harness.http import auth
from tests.harness.polling import wait_for
from tests.harness.servers import worker_argv
from tests.harness.webhooks import Receiver, receiving

LIFECYCLE_WORKER = WORKER_ARGS
WEBHOOK_WORKER = ("-Q", WEBHOOK_QUEUE, "-n", "webhooks@%h", "--pool", "threads")
# Production gives the webhooks workers their own cores; on this shared 2-core box the
# nearest thing is a lower CPU priority, so that delivering (signing, HTTP, two transactions
# per message) does not take the lifecycle's CPU: --no-nice to compare without it.
WEBHOOK_NICE = ("nice", "-n", "10")
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
def receiver_with_delay() -> Iterator[tuple[Receiver, dict[str, float]]]:
    """The harness receiver, answering 204 after ``delay["s"]`` seconds (set per run)."""
    delay = {"s": 0.0}
    with receiving() as receiver:

        def answer(path: str, headers: dict[str, str], tries: int) -> int:
            if delay["s"]:
                time.sleep(delay["s"])  # the receiver under test is slow on purpose
            return 204

        receiver.answer = answer
        yield receiver, delay


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
        "webhooks queue messages": redis.Redis.from_url(REDIS_URL).llen(WEBHOOK_QUEUE),
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
            argv = worker_argv(*WEBHOOK_WORKER, "--concurrency", str(a.webhook_concurrency))
            topo.start("webhooks", [*WEBHOOK_NICE, *argv] if a.nice else argv)
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


RUNS = {  # name: (receiver delay: None for no endpoint, 0 fast, 1 the --delay; split)
    "none": (None, True),
    "baseline": (0, True),
    "separated": (1, True),
    "single": (1, False),
}


def p50s(result: dict[str, Any]) -> dict[str, float]:
    """Each step's due → done p50 (ms) from a run's ``step_ms``."""
    out = {}
    for step, text in result["step_ms"].items():
        found = re.search(r"p50=([0-9.]+)", text)
        if found:
            out[step] = float(found.group(1))
    return out


def ratios(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``other`` / ``base``: lifecycles/s, creation → closed p50, and each step's p50."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(b / a, 2) if a and b is not None else None

    steps_a, steps_b = p50s(base), p50s(other)
    return {
        "lifecycles/s": ratio(base["lifecycles_per_s"], other["lifecycles_per_s"]),
        "creation -> closed p50": ratio(base["lifecycle_ms"]["p50"], other["lifecycle_ms"]["p50"]),
        "step due -> done p50": {
            step: f"{ratio(steps_a[step], steps_b.get(step))} ({steps_a[step]:.0f} -> "
            f"{steps_b.get(step, float('nan')):.0f} ms)"
            for step in steps_a
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="lifecycles per run")
    ap.add_argument("--delay", type=float, default=10.0, help="slow receiver's seconds per request")
    ap.add_argument("--backlog", type=int, default=1000, help="pings queued before the jobs")
    ap.add_argument("--cap", type=float, default=150.0, help="longest a run may take, seconds")
    ap.add_argument("--parties", type=int, default=10, help="consumers and workers each")
    ap.add_argument("--poll", type=float, default=0.25, help="feed poll interval, seconds")
    ap.add_argument("--webhook-concurrency", type=int, default=20, help="-Q webhooks threads")
    ap.add_argument("--runs", default="baseline,separated,single", help=", ".join(RUNS))
    ap.add_argument(
        "--no-nice", dest="nice", action="store_false", help="the -Q webhooks worker at nice 0"
    )
    ap.add_argument("--database", default="gigco_bench", help="dropped and re-created per run")
    a = ap.parse_args()
    names = a.runs.split(",")
    if unknown := [n for n in names if n not in RUNS]:
        raise SystemExit(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    report: dict[str, Any] = {"args": vars(a)}
    with receiver_with_delay() as (receiver, delay):
        for name in names:
            slowness, split = RUNS[name]
            delay["s"] = a.delay * (slowness or 0)
            listening = None if slowness is None else receiver
            report[name] = run(name, a, receiver=listening, split=split)
    compared = {}
    for other in ("separated", "single", "none"):
        if "baseline" in report and other in report:
            compared[f"{other} / baseline"] = ratios(report["baseline"], report[other])
    if compared:
        print(json.dumps(compared, indent=1), flush=True)
        report["ratios"] = compared
    out = Path("/tmp/gigco-bench/webhooks-last.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"report: {out}")


if __name__ == "__main__":
    main()

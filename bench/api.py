"""The API under gunicorn at fixed request rates: where does p99 pass 100 ms?

    .venv/bin/python -m bench.api [--rates 100,250,500,750,1000] [--seconds 10]

Open loop: request i is sent at t0 + i/rate whether or not earlier ones have answered, and
its latency counts from that moment (no coordinated omission). Two endpoints: reading a
job (``GET /v1/jobs/<id>`` as its consumer) and a signal that changes state
(``POST /v1/jobs/<id>/offer/accept`` on a fresh offered job each time, which also enqueues
matching for the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import shutil
import subprocess
import time
from typing import Any

import httpx

from bench.lifecycle import pct
from bench.seed import JOB_COLUMNS, copy_rows, job_row
from bench.topology import WEB_WORKERS, production
from gigco import clock
from tests.harness.bodies import MISSING, job_body
from tests.harness.http import auth


async def open_loop(
    client: httpx.AsyncClient, rate: float, seconds: float, request: Any
) -> dict[str, Any]:
    """Fire ``request(i)`` at ``rate``/s for ``seconds``; latency from the scheduled time."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    t0 = time.perf_counter()

    async def one(i: int, due: float) -> None:
        nonlocal errors
        try:
            r = await request(i)
            if r.status_code >= 400:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    return {
        "rate": rate,
        "sent": total,
        "achieved_per_s": round(total / wall, 1),
        "errors": errors,
        "p50_ms": round(pct(latencies, 50), 1),
        "p99_ms": round(pct(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
    }


async def run(base_url: str, url: str, rates: list[float], seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        r = await client.post("/v1/consumers", json={"name": "B", "email": "b@bench.io"})
        consumer = r.json()
        headers = auth(consumer["token"])
        body = job_body(
            start=clock.now() + dt.timedelta(days=3),
            title="Read me",
            description=MISSING,
            location={"lat": 52.5, "lng": 13.4},
        )
        job = (await client.post("/v1/jobs", json=body, headers=headers)).json()
        # Fresh offered jobs for the signal: one per request at the highest rate.
        need = int(max(rates) * seconds) * len(rates)
        far = clock.now() + dt.timedelta(days=1)
        ids = copy_rows(
            url,
            "jobs",
            JOB_COLUMNS,
            (
                job_row(
                    consumer_id=consumer["id"],
                    status="offered",
                    offer_expires_at=far,
                    timer_at=far,
                    now=clock.now(),
                )
                for _ in range(need)
            ),
            returning_ids=True,
        )
        reads, signals = [], []
        for rate in rates:
            reads.append(
                await open_loop(
                    client,
                    rate,
                    seconds,
                    lambda i: client.get(f"/v1/jobs/{job['id']}", headers=headers),
                )
            )
            print(json.dumps({"read": reads[-1]}), flush=True)
        pool = iter(ids)
        for rate in rates:
            signals.append(
                await open_loop(
                    client,
                    rate,
                    seconds,
                    lambda i: client.post(f"/v1/jobs/{next(pool)}/offer/accept", headers=headers),
                )
            )
            print(json.dumps({"signal": signals[-1]}), flush=True)
    return {"read": reads, "signal": signals}


def wrk_reads(base_url: str, seconds: float) -> list[dict[str, Any]]:
    """Closed-loop reads with wrk (C, so the client costs little) at 4, 16 and 64 connections."""
    if not shutil.which("wrk"):
        return []
    r = httpx.post(f"{base_url}/v1/consumers", json={"name": "W", "email": "w@bench.io"})
    token = r.json()["token"]
    body = job_body(
        start=clock.now() + dt.timedelta(days=3),
        title="Read me",
        description=MISSING,
        location={"lat": 52.5, "lng": 13.4},
    )
    job = httpx.post(f"{base_url}/v1/jobs", json=body, headers=auth(token)).json()
    out = []
    for connections in (4, 16, 64):
        text = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{seconds:g}s",
                "--latency",
                "-H",
                f"Authorization: Bearer {token}",
                f"{base_url}/v1/jobs/{job['id']}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", text, re.M))
        rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
        out.append(
            {
                "connections": connections,
                "per_s": float(rate.group(1)) if rate else None,
                "p50": found.get("50"),
                "p99": found.get("99"),
            }
        )
        print(json.dumps({"wrk_read": out[-1]}), flush=True)
    return out


def knee(rows: list[dict[str, Any]], limit_ms: float = 100) -> float | None:
    """The lowest rate at which p99 exceeded ``limit_ms``."""
    return next((r["rate"] for r in rows if r["p99_ms"] > limit_ms), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rates", default="100,250,500,750,1000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--web-workers", type=int, default=WEB_WORKERS)
    a = ap.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    with production(database="gigco_bench_api", web_workers=a.web_workers) as topo:
        result = {"wrk_read": wrk_reads(topo.base_url, a.seconds)}
        result |= asyncio.run(run(topo.base_url, topo.env["GIGCO_DATABASE_URL"], rates, a.seconds))
    result["p99_over_100ms_from"] = {"read": knee(result["read"]), "signal": knee(result["signal"])}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

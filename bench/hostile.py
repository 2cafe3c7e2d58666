"""Server CPU per hostile request body at the 64 KiB limit (target < 20 ms each).

    .venv/bin/python -m bench.hostile [--repeat 20]

The app runs in this process on a fresh embedded SQLite database, with a real consumer's
token for ``POST /v1/jobs`` (so valid JSON goes on to the schema, the costlier path), and
each request is timed with ``time.thread_time()``: the CPU
the serving thread spent, which is what a gunicorn worker loses to the request. The bodies
are ``tests.harness.bodies.hostile_bodies``, the same the budget test sends. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from gigco import migrate
from gigco.config import load_settings
from gigco.web import create_app
from tests.harness.bodies import consumer_body, hostile_bodies

TARGET_MS = 20.0


def main() -> None:
    """Send each hostile body ``--repeat`` times to a public and an authenticated endpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="requests per body (at least 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings({"GIGCO_DATA_DIR": data, "GIGCO_LOG_LEVEL": "ERROR"})
        migrate.upgrade(settings.database_url)
        client = create_app(settings).test_client()
        token = client.post("/v1/consumers", json=consumer_body()).json["token"]
        results = {}
        for name, body in hostile_bodies().items():
            for path in ("/v1/consumers", "/v1/jobs"):
                cpu, statuses = [], set()
                for _ in range(args.repeat):
                    started = time.thread_time()
                    r = client.post(
                        path,
                        data=body,
                        content_type="application/json",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    cpu.append((time.thread_time() - started) * 1000)
                    statuses.add(r.status_code)
                results[f"{name} {path}"] = {
                    "bytes": len(body),
                    "status": sorted(statuses),
                    "cpu_ms_median": round(statistics.median(cpu), 2),
                    "cpu_ms_p90": round(statistics.quantiles(cpu, n=10)[-1], 2),
                    "cpu_ms_max": round(max(cpu), 2),
                }
    # The max includes CPython's full (generation 2) collections, which any request that
    # allocates many containers may trigger; the median is the request's own cost.
    summary = {
        "target_ms": TARGET_MS,
        "worst_median_cpu_ms": max(r["cpu_ms_median"] for r in results.values()),
        "worst_max_cpu_ms": max(r["cpu_ms_max"] for r in results.values()),
    }
    print(json.dumps({**summary, "bodies": results}, indent=1))


if __name__ == "__main__":
    main()

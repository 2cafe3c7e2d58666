"""A database that goes silent: a proxy between GigCo and PostgreSQL keeps every connection
open and forwards nothing for 15 s, as a frozen host or a stalled network path does.

``statement_timeout`` is the server's, and a silent server enforces nothing; the client's
bound (gigco/db_wait.py) ends every request and every step on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.blackhole import blackhole
from tests.clusters.conftest import unique_name
from tests.harness.http import Answer, is_error_envelope
from tests.harness.polling import wait_for
from tests.resilience.brokers import RedisBroker
from tests.resilience.invariants import mid_flight, violations
from tests.resilience.services import PrivatePostgres
from tests.resilience.stack import Stack

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("postgres_binaries")]

SILENCE_SECONDS = 15.0
STATEMENT_MS, WORKER_STATEMENT_MS, CONNECT_S, MARGIN_S = 1000, 2000, 5, 1
# What one API request may take at most: its pool's ping on a silent connection gives up
# after the statement timeout plus the margin, the reconnect after the connect timeout.
API_BOUND = STATEMENT_MS / 1000 + MARGIN_S + CONNECT_S
WORKER_BOUND = WORKER_STATEMENT_MS / 1000 + MARGIN_S
SLACK = 3.0  # a loaded 2-core machine; a request may wait for one of gunicorn's threads


def test_a_silent_database_fails_each_request_and_step_within_its_bound_then_recovers(
    private_postgres: PrivatePostgres,
    redis_broker: RedisBroker,
    launch: Callable[..., Stack],
    request: pytest.FixtureRequest,
    report: Callable[[str], None],
) -> None:
    direct = private_postgres.url_for_create(unique_name(request))
    name = direct.rsplit("/", 1)[1]
    with blackhole(("127.0.0.1", private_postgres.port)) as proxy:
        stack = launch(
            f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}",
            redis_broker,
            observer_url=direct,
            GIGCO_DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_MS),
            GIGCO_DB_LOCK_TIMEOUT_MS=str(STATEMENT_MS),
            GIGCO_WORKER_STATEMENT_TIMEOUT_MS=str(WORKER_STATEMENT_MS),
        )
        # A small fleet: its clients never outnumber gunicorn's 12 threads, so each call's
        # time is the request's own, not a queue's.
        fleet = stack.fleet(size=6, regions=2, workers_per_region=1)
        fleet.start(stagger=0.05)
        wait_for(
            lambda: (
                len(fleet.job_ids) == fleet.size
                and mid_flight(stack.engine, created=fleet.size, assigned=1)
            ),
            timeout=60,
            every=0.05,
            what="the fleet to be mid-flight",
        )
        job_id, consumer = fleet.job_ids[0], fleet.consumers[0]
        probes: list[Answer] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                probes.append(stack.client.call("GET", f"/v1/jobs/{job_id}", token=consumer.token))
                stop.wait(0.2)

        silent_at = time.time()
        proxy.swallow()
        # Two clients calling on (their calls take seconds each while it is silent).
        probers = [threading.Thread(target=probe, daemon=True) for _ in range(2)]
        for prober in probers:
            prober.start()
            stop.wait(1.0)
        stop.wait(SILENCE_SECONDS - len(probers))
        proxy.forward()  # the path answers again (the frozen connections are gone)
        back_at = time.time()
        stop.set()
        for prober in probers:
            prober.join()

        closed_at = fleet.wait_all_closed(timeout=120)
        fleet.stop()

    during = [a for a in probes if a.sent_at < back_at - API_BOUND - SLACK]
    assert len(during) >= 2
    assert [a for a in during if not (a.status == 503 and is_error_envelope(a.body, 503))] == []
    slowest = max(a.answered_at - a.sent_at for a in probes)
    assert slowest <= API_BOUND + SLACK
    assert stack.journal.server_errors() == []
    # The worker's steps and sweeps gave up on their own bound, were retried, and finished.
    worker_log = stack.topology.log("worker").read_text(errors="replace")
    gave_up = [
        line
        for line in worker_log.splitlines()
        if " retry: Retry in " in line and "no answer from the database within" in line
    ]
    assert len(gave_up) >= 1
    assert violations(stack.engine, fleet.job_ids.values()) == []
    report(
        f"{fleet.size} jobs; database silent {back_at - silent_at:.1f}s; {len(probes)} API calls "
        f"meanwhile, the slowest answered in {slowest:.2f}s (bound {API_BOUND:g}s), every one "
        f"before the end a 503 with the envelope; {len(gave_up)} worker tasks gave up after "
        f"{WORKER_BOUND:g}s (a statement) or {CONNECT_S}s (a connect) and were retried; "
        f"all closed {closed_at - back_at:.1f}s after"
    )

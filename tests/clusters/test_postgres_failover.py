"""A PostgreSQL failover in the middle of a fleet of jobs: the primary crashes, the
synchronous standby is promoted, GigCo follows through its multi-host URL on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.clusters.conftest import unique_name
from tests.clusters.pg_pair import PostgresPair
from tests.harness.http import Answer, is_error_envelope
from tests.harness.polling import wait_for
from tests.resilience.brokers import RedisBroker
from tests.resilience.fleet import job_body
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("postgres_binaries")]

STATEMENT_TIMEOUT_S = 5.0  # GIGCO_DB_STATEMENT_TIMEOUT_MS's default
EVENTS = sa.text("SELECT id, job_id, seq, type, to_status FROM job_events ORDER BY id")


def probing(
    stack: Stack, job_id: int, token: str, tag: str
) -> tuple[threading.Event, list[Answer]]:
    """A client calling on, a read and a (replayed, harmless) write, until the event is set."""
    stop, answers = threading.Event(), []

    def run() -> None:
        while not stop.is_set():
            answers.append(stack.client.call("GET", f"/v1/jobs/{job_id}", token=token))
            answers.append(
                stack.client.call(
                    "POST",
                    "/v1/jobs",
                    token=token,
                    body=job_body(0, 0),
                    headers={"Idempotency-Key": f"{tag}-job-0"},
                )
            )
            stop.wait(0.05)

    threading.Thread(target=run, daemon=True).start()
    return stop, answers


def test_a_failover_mid_flight_loses_no_commit_and_answers_503_until_the_standby_is_promoted(
    pair: PostgresPair,
    redis_broker: RedisBroker,
    launch: Callable[..., Stack],
    request: pytest.FixtureRequest,
    report: Callable[[str], None],
) -> None:
    # GigCo is given both hosts in libpq's host-list form; it writes wherever is read-write.
    url = pair.create(unique_name(request))
    stack = launch(url, redis_broker)
    fleet, at_fault = stack.fleet_mid_flight()
    stop_probing, probes = probing(stack, fleet.job_ids[0], fleet.consumers[0].token, fleet.tag)
    with stack.engine.connect() as conn:
        committed = conn.execute(EVENTS).all()

    fault_at = pair.crash_primary()
    fleet.start()  # the last jobs are posted while there is no primary
    # A failover manager takes a moment to decide (Patroni's loop: 10 s by default; 1 s
    # here): promote once the API has answered calls without a primary for a second.
    wait_for(
        lambda: sum(1 for a in probes if a.sent_at > fault_at) >= 10 and time.time() > fault_at + 1,
        timeout=30,
        every=0.05,
        what="calls answered while there is no primary",
    )
    promoting_at = time.time()
    promoted_at = pair.promote_standby()
    writable_at = wait_for(
        lambda: next(
            (a.answered_at for a in probes if a.sent_at > promoted_at and a.status == 200), None
        ),
        timeout=30,
        every=0.05,
        what="the API to answer again from the promoted standby",
    )
    stop_probing.set()

    closed_at, measured = stack.recovered(fleet, fault_at=fault_at, healthy_at=promoted_at)

    # Nothing the primary had committed is missing from the promoted standby.
    with stack.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT inet_server_port()")) == pair.b.port
        after = set(conn.execute(EVENTS).all())
    assert [row for row in committed if row not in after] == []

    # Every call that needed the database while no primary was writable: a 503 in the
    # envelope (the fleet's worker apps may also get an empty page of opportunities, which
    # is answered without it), and nothing that took long. A call answered after the
    # promotion began may have been served by the promoted standby, and rightly succeeded.
    def without_primary(answers: list[Answer]) -> list[Answer]:
        return [a for a in answers if a.sent_at >= fault_at and a.answered_at <= promoting_at]

    during = without_primary(probes)
    assert len(during) >= 10
    assert [a for a in during if not (a.status == 503 and is_error_envelope(a.body, 503))] == []
    assert all(a.headers.get("Retry-After") for a in during)
    unanswered = without_primary(stack.journal.between(fault_at, promoting_at))
    assert [a for a in unanswered if a.status not in (200, 503)] == []
    slowest = max(a.answered_at - a.sent_at for a in stack.journal.between(fault_at, writable_at))
    assert slowest < STATEMENT_TIMEOUT_S
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight at the crash {at_fault}, "
        f"{HELD_BACK} posted during the failover; {len(committed)} events committed before "
        f"the crash, none lost; promoted {promoting_at - fault_at:.2f}s after the crash (by "
        f"the test), in {promoted_at - promoting_at:.2f}s; the API answered again "
        f"{writable_at - promoted_at:.2f}s after the promotion ({writable_at - fault_at:.2f}s "
        f"unavailable in all); {len(during)} calls during the switch, all 503 with the "
        f"envelope, the slowest in {slowest:.2f}s; {measured.summary()}; all closed "
        f"{closed_at - promoted_at:.1f}s after the promotion"
    )
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS

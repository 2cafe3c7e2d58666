"""A rolling deploy from the previous release (releases/previous.txt) loses and doubles nothing.

The previous release is built from this repository's history (tests/resilience/
previous_release.py). Both scenarios run on a database the current migrations brought to
head: expand → migrate → contract means the previous release's code still runs there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import gigco
from gigco import processes
from gigco.processes import free_port
from tests.harness.bodies import consumer_body, job_body, worker_body
from tests.harness.http import Answer, Client, Journal
from tests.harness.polling import wait_for
from tests.resilience.invariants import violations
from tests.resilience.previous_release import PreviousRelease, built
from tests.resilience.stack import Stack

pytestmark = [pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreviousRelease]:
    """The previous release, checked out and installed once for this module."""
    with built(tmp_path_factory.mktemp("previous-release")) as release:
        yield release


def _start_previous(stack: Stack, previous: PreviousRelease, name: str, argv: list[str]) -> None:
    """Run one of the previous release's processes from its own tree, on the stack's env."""
    topology = stack.topology
    topology.procs[name] = processes.start(
        argv, env={**os.environ, **topology.env}, log=topology.log(name), cwd=previous.tree
    )


def _worker_rows(engine: sa.Engine) -> dict[str, tuple[str | None, bool]]:
    """Each worker's heartbeat row: the release it says it runs, and whether it finished a
    task."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT name, version, beat_at IS NOT NULL FROM heartbeats WHERE kind = 'worker'"
            )
        ).all()
    return {name: (version, finished) for name, version, finished in rows}


def test_a_fleet_closes_while_the_workers_roll_from_the_previous_release_to_this_one(
    stack: Stack, previous: PreviousRelease, report: Callable[[str], None]
) -> None:
    topology = stack.topology
    # Before the rollout: only the previous release's worker consumes.
    _start_previous(stack, previous, "previous", previous.worker_argv("previous"))
    topology.wait_worker_ready("previous")
    topology.shut_down("worker")
    # Cards that pay at once: the simulated pm_card_flaky counts its refusals per key in
    # 0.1.0 and per charge intent in 0.2.0, so a job whose attempts straddle the two would
    # meet a different test card (a property of the simulator, not of the money: one charge
    # and nothing doubled is still checked below).
    fleet = stack.fleet(flaky_every=0)
    fleet.start(range(fleet.size // 2), stagger=0.05)
    wait_for(
        lambda: _worker_rows(stack.engine).get("worker:previous@" + os.uname().nodename, (0, 0))[1],
        timeout=60,
        what="the previous release's worker to finish a task",
    )
    # The rollout: this release's worker joins on the same queues, the rest of the fleet is
    # posted while both run, then the previous one is stopped as an orchestrator would.
    topology.start_worker("current")
    topology.wait_worker_ready("current")
    fleet.start(stagger=0.05)
    wait_for(lambda: len(fleet.job_ids) == fleet.size, timeout=60, what="the whole fleet posted")
    switched_at = topology.shut_down("previous")

    closed_at = fleet.wait_all_closed(timeout=150)
    fleet.stop()
    assert violations(stack.engine, fleet.job_ids.values()) == []
    assert stack.journal.server_errors() == []
    rows = _worker_rows(stack.engine)
    host = os.uname().nodename
    assert rows[f"worker:previous@{host}"] == (None, True)  # 0.1.0 names no version
    assert rows[f"worker:current@{host}"] == (gigco.__version__, True)
    report(
        f"{fleet.size} jobs across the switch from {previous.tag} to {gigco.__version__}: "
        f"all closed {closed_at - switched_at:.1f}s after the previous worker stopped"
    )


def _ok(answer: Answer, status: int = 200) -> dict[str, object]:
    assert answer.status == status, (answer.status, answer.body)
    return answer.body  # type: ignore[no-any-return]


def test_the_previous_release_drives_a_lifecycle_on_the_current_schema(
    stack: Stack, previous: PreviousRelease, tmp_path: Path
) -> None:
    # The stack's database is at this release's head; this release's processes stop, and
    # the previous release's API, worker and beat take over alone.
    stack.topology.stop()
    stack.topology.procs.clear()
    _start_previous(stack, previous, "previous-worker", previous.worker_argv("previous"))
    _start_previous(stack, previous, "previous-beat", previous.beat_argv(tmp_path / "beat"))
    port = free_port()
    _start_previous(stack, previous, "previous-api", previous.gunicorn_argv(port))
    client = Client(f"http://127.0.0.1:{port}", Journal())
    # Its /readyz calls a database at a newer revision down (0.1.0's rule): wait for /livez.
    wait_for(
        lambda: client.call("GET", "/livez").status == 200,
        timeout=60,
        every=0.2,
        what="the previous release's API",
    )
    stack.topology.wait_worker_ready("previous-worker")

    consumer = _ok(client.call("POST", "/v1/consumers", body=consumer_body()), 201)
    worker = _ok(client.call("POST", "/v1/workers", body=worker_body()), 201)
    c, w = str(consumer["token"]), str(worker["token"])
    job = _ok(client.call("POST", "/v1/jobs", token=c, body=job_body()), 201)
    path = f"/v1/jobs/{job['id']}"

    def status_is(wanted: str) -> bool:
        return _ok(client.call("GET", path, token=c))["status"] == wanted

    wait_for(lambda: status_is("offered"), timeout=30, what="offered")
    _ok(client.call("POST", f"{path}/offer/accept", token=c))
    wait_for(
        lambda: _ok(client.call("GET", "/v1/opportunities", token=w)) != [],  # type: ignore[comparison-overlap]
        timeout=30,
        what="an opportunity",
    )
    _ok(client.call("POST", f"{path}/opportunity/accept", token=w))
    wait_for(lambda: status_is("scheduled"), timeout=30, what="scheduled")
    _ok(client.call("POST", f"{path}/start", token=w))
    _ok(client.call("POST", f"{path}/complete", token=w))
    wait_for(lambda: status_is("review_pending"), timeout=30, what="paid and review_pending")
    for token in (c, w):
        _ok(client.call("POST", f"{path}/reviews", token=token, body={"rating": 5}), 201)
    wait_for(lambda: status_is("closed"), timeout=30, what="closed")
    assert client.journal.server_errors() == []
    # A job the previous release created carries no policy: it ran on the settings.
    with stack.engine.connect() as conn:
        pinned = conn.scalar(sa.text("SELECT policy_version FROM jobs WHERE id = :id"), job)
    assert pinned is None

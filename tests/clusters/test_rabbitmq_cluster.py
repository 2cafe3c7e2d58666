"""GigCo on a three-node RabbitMQ cluster: its quorum queues replicated on all three, every
process given all three nodes (kombu's failover URL). A node dies mid-flight, then a second.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from gigco.broker import QUEUES, STEPS_QUEUE
from tests.clusters.conftest import unique_name
from tests.clusters.rabbit_cluster import RabbitCluster, cannot_run_cluster
from tests.harness.polling import wait_for
from tests.resilience.invariants import recovery, step_timings, violations
from tests.resilience.services import PrivatePostgres
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

BROKER_TIMEOUT_S = 2.0  # GIGCO_BROKER_TIMEOUT_SECONDS' default

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("postgres_binaries")]


@dataclass
class ClusterBroker:
    """A vhost of the test's cluster, in the shape tests/resilience's brokers have."""

    cluster: RabbitCluster
    vhost: str
    kind: str = "rabbitmq-cluster"

    @property
    def url(self) -> str:
        """All three nodes, a first."""
        return self.cluster.url(self.vhost)

    def reset(self) -> None:
        """Nothing: the vhost is new."""

    def waiting_steps(self) -> int:
        """Messages in the step queue, ready or unacked."""
        queue = self.cluster.queues(self.vhost).get(STEPS_QUEUE)
        return int(queue["ready"]) + int(queue["unacked"]) if queue else 0


@pytest.fixture
def cluster() -> Iterator[RabbitCluster]:
    """Three joined nodes."""
    reason = cannot_run_cluster()
    if reason is not None:
        pytest.skip(reason)
    nodes = RabbitCluster()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.destroy()


def leader_of(cluster: RabbitCluster, vhost: str, queue: str) -> str | None:
    """The node leading ``queue`` now (None while it has none)."""
    try:
        found = cluster.queues(vhost).get(queue)
    except RuntimeError:
        return None
    return found["leader"] if found else None


def test_losing_the_node_the_worker_uses_and_the_main_queue_leader_costs_seconds(
    cluster: RabbitCluster,
    private_postgres: PrivatePostgres,
    launch: Callable[..., Stack],
    request: pytest.FixtureRequest,
    report: Callable[[str], None],
) -> None:
    vhost = f"gigco_{uuid.uuid4().hex[:8]}"
    cluster.add_vhost(vhost)
    broker = ClusterBroker(cluster, vhost)
    stack = launch(private_postgres.url_for_create(unique_name(request)), broker)
    a = cluster.nodes[0]
    queues = cluster.queues(vhost)
    # Every GigCo queue is a quorum queue with a member on each node, led from a: the first
    # node of everyone's URL, which the worker, beat and the API are connected to.
    assert set(QUEUES) <= set(queues)
    for name in QUEUES:
        assert all(n.name in queues[name]["members"] for n in cluster.nodes), queues[name]
    assert queues[STEPS_QUEUE]["leader"] == a.name
    connections = cluster.ctl(a, "list_connections", "-p", vhost, "--no-table-headers", "pid")
    assert connections.strip() and all(a.name in line for line in connections.splitlines())

    fleet, at_fault = stack.fleet_mid_flight()
    killed_at = cluster.kill(a)
    fleet.start()  # the last jobs are posted while the cluster elects new leaders
    moved_at = wait_for(
        lambda: (
            time.time()
            if all(leader_of(cluster, vhost, q) not in (None, a.name) for q in QUEUES)
            else None
        ),
        timeout=60,
        every=0.1,
        what="new leaders for every queue",
    )
    reconnected_at, consuming_at = wait_for(
        lambda: resumed_after(stack, killed_at),
        timeout=60,
        every=0.1,
        what="the worker to reconnect and run a step again",
    )

    closed_at, measured = stack.recovered(fleet, fault_at=killed_at, healthy_at=reconnected_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when node a (the worker's, "
        f"leader of every queue) was SIGKILLed, {HELD_BACK} posted after; leaders moved "
        f"within {moved_at - killed_at:.2f}s (as rabbitmqctl, polled, saw it); the worker "
        f"reconnected {reconnected_at - killed_at:.2f}s and ran a step again "
        f"{consuming_at - killed_at:.2f}s after the kill; {measured.summary()}; all closed "
        f"{closed_at - killed_at:.1f}s after the kill"
    )
    assert consuming_at - killed_at <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS

    # Then a second node goes: one node of three is no quorum. RabbitMQ confirms no publish
    # to the quorum queues and delivers nothing; the API still answers (its after-commit
    # sends time out and are logged), steps wait in the database, and once a node returns
    # the sweeper sends them again.
    b = cluster.nodes[1]
    second = stack.fleet(size=6, regions=2, workers_per_region=2)
    lost_quorum_at = cluster.kill(b)
    second.start()
    wait_for(
        lambda: len(second.job_ids) == second.size,
        timeout=60,
        every=0.1,
        what="the second fleet's jobs posted without a quorum",
    )
    with stack.engine.connect() as conn:
        waiting = conn.execute(
            sa.text("SELECT status, step_due_at IS NOT NULL FROM jobs WHERE id = ANY(:ids)"),
            {"ids": list(second.job_ids.values())},
        ).all()
    assert waiting == [("draft", True)] * second.size  # posted, their first step waiting
    without_quorum = stack.journal.between(lost_quorum_at, time.time())
    statuses = Counter(a.status for a in without_quorum)
    assert without_quorum
    assert [a for a in without_quorum if a.status is None or a.status >= 500] == []
    # A call that sends a step waits for the publisher confirm that never comes (the broker
    # timeout), reconnects, waits for a queue declare that is never answered (the same
    # timeout: the transport's read timeout) and gives up: a few broker timeouts, then it
    # answers.
    slowest = max(a.answered_at - a.sent_at for a in without_quorum)
    assert slowest < 5 * BROKER_TIMEOUT_S

    restarted_at = time.time()
    cluster.start_node(b)
    back_at = time.time()
    closed_again_at = second.wait_all_closed(timeout=120)
    second.stop()
    every_job = [*fleet.job_ids.values(), *second.job_ids.values()]
    assert violations(stack.engine, every_job) == []
    assert stack.journal.server_errors() == []
    after_quorum = recovery(
        step_timings(stack.engine, second.job_ids.values()),
        fault_at=lost_quorum_at,
        healthy_at=back_at,
    )
    report(
        f"second node killed: no quorum for {back_at - lost_quorum_at:.1f}s "
        f"({back_at - restarted_at:.1f}s of it the node's boot); {len(without_quorum)} API calls "
        f"meanwhile, all answered ({dict(statuses)}, the slowest in {slowest:.2f}s), "
        f"{second.size} jobs posted and left waiting in draft; {after_quorum.summary()}; "
        f"all closed {closed_again_at - back_at:.1f}s after the node was back"
    )
    assert after_quorum.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS


def worker_events(stack: Stack, marker: str, process: str = "worker") -> list[float]:
    """When (epoch seconds) ``process`` logged lines containing ``marker``."""
    stamps = []
    for line in stack.topology.log(process).read_text(errors="replace").splitlines():
        if line.startswith("ts=") and marker in line:
            parsed = dt.datetime.fromisoformat(line[3:32])
            stamps.append(parsed.timestamp())
    return stamps


def resumed_after(stack: Stack, moment: float) -> tuple[float, float] | None:
    """(when the worker reconnected after ``moment``, when it next finished a step)."""
    connected = [t for t in worker_events(stack, 'msg="Connected to ') if t > moment]
    if not connected:
        return None
    done = [t for t in worker_events(stack, 'msg="step done"') if t > connected[0]]
    return (connected[0], done[0]) if done else None

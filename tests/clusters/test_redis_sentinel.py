"""Redis with Sentinel under a fleet of jobs: the master SIGKILLed, a sentinel majority
promotes the replica, GigCo follows through its sentinel:// URL; what the failover dropped
(asynchronous replication, messages held by the dead master) the sweeper sends again."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.clusters.conftest import unique_name
from tests.clusters.redis_sentinel import MASTER, SentinelSet
from tests.harness.polling import wait_for
from tests.resilience.services import PrivatePostgres
from tests.resilience.stack import HELD_BACK, Stack
from tests.resilience.topology import GRACE_SECONDS, SLACK_SECONDS, SWEEP_SECONDS

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("postgres_binaries")]


@dataclass
class SentinelBroker:
    """Database 1 behind the sentinels, in the shape tests/resilience's brokers have."""

    servers: SentinelSet
    kind: str = "redis-sentinel"

    @property
    def url(self) -> str:
        """The three sentinels."""
        return self.servers.url()

    def reset(self) -> None:
        """Nothing: the servers are new."""


@pytest.fixture
def sentinels() -> Iterator[SentinelSet]:
    """A master, a replica and three sentinels."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not found on PATH")
    servers = SentinelSet()
    try:
        servers.start()
        yield servers
    finally:
        servers.destroy()


def test_a_redis_master_failover_mid_flight_loses_nothing_and_doubles_nothing(
    sentinels: SentinelSet,
    private_postgres: PrivatePostgres,
    launch: Callable[..., Stack],
    request: pytest.FixtureRequest,
    report: Callable[[str], None],
) -> None:
    stack = launch(
        private_postgres.url_for_create(unique_name(request)),
        SentinelBroker(sentinels),
        GIGCO_BROKER_SENTINEL_MASTER=MASTER,
    )
    master, replica = sentinels.redis_ports
    fleet, at_fault = stack.fleet_mid_flight()
    killed_at = sentinels.kill(master)
    fleet.start()  # the last jobs are posted while the sentinels fail over
    promoted_at = wait_for(
        lambda: time.time() if sentinels.master_port() == replica else None,
        timeout=60,
        every=0.05,
        what="the sentinels to promote the replica",
    )

    closed_at, measured = stack.recovered(fleet, fault_at=killed_at, healthy_at=promoted_at)
    report(
        f"{fleet.size} jobs: {at_fault['in_flight']} in flight when the master was SIGKILLed, "
        f"{HELD_BACK} posted during the failover; replica promoted {promoted_at - killed_at:.2f}s "
        f"after the kill (down-after 1 s); {measured.summary()}; all closed "
        f"{closed_at - promoted_at:.1f}s after the promotion"
    )
    assert measured.worst_delay_seconds <= SWEEP_SECONDS + GRACE_SECONDS + SLACK_SECONDS

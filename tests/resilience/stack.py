"""What a scenario holds: the private services, the topology, a database engine, a journal."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from tests.harness.http import Client, Journal
from tests.harness.polling import wait_for
from tests.resilience.brokers import Broker
from tests.resilience.fleet import Fleet
from tests.resilience.invariants import Recovery, mid_flight, recovery, step_timings, violations
from tests.resilience.services import PrivatePostgres
from tests.resilience.topology import Topology

HELD_BACK = 4  # jobs a scenario posts during its fault


@dataclass
class Stack:
    """One test's running system and the handles a scenario needs."""

    postgres: PrivatePostgres
    broker: Broker
    topology: Topology
    engine: sa.Engine
    journal: Journal = field(default_factory=Journal)
    fleets: list[Fleet] = field(default_factory=list)

    @property
    def client(self) -> Client:
        """An HTTP client on the API that writes to the shared journal."""
        return Client(self.topology.base_url, self.journal)

    def waiting_steps(self) -> int:
        """Step messages waiting in the broker (on Redis exactly; see brokers.py)."""
        return self.broker.waiting_steps()

    @contextlib.contextmanager
    def worker_frozen_with_steps_waiting(self, fleet: Fleet) -> Iterator[None]:
        """Freeze the worker (as a long GC pause or a saturated host would), post the fleet's
        held-back jobs and wait until their steps wait in the broker; the worker resumes on
        exit.

        Freezing is needed because the worker prefetches whatever reaches the queue within
        milliseconds.
        """
        worker = self.topology.procs["worker"]
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            self.post_held_back(fleet, timeout=30)
            yield
        finally:
            os.killpg(worker.pid, signal.SIGCONT)

    def post_held_back(self, fleet: Fleet, *, timeout: float) -> None:
        """Post the fleet's held-back jobs while no worker takes steps, and wait until their
        steps wait in the broker."""
        fleet.start()
        wait_for(
            lambda: len(fleet.job_ids) == fleet.size and self.waiting_steps() >= HELD_BACK,
            timeout=timeout,
            every=0.2,
            what="the held-back jobs posted and their steps waiting in the broker",
        )

    def fleet_mid_flight(self) -> tuple[Fleet, dict[str, int]]:
        """24 jobs, the first 20 driven until they are spread over the lifecycle.

        The last 4 are left for the scenario to post during its fault (``fleet.start()``).
        Returns the fleet and the jobs by status at that moment.
        """
        fleet = self.fleet()
        fleet.start(range(fleet.size - HELD_BACK), stagger=0.05)
        at_fault = wait_for(
            lambda: (
                len(fleet.job_ids) >= fleet.size - HELD_BACK
                and mid_flight(self.engine, created=fleet.size - HELD_BACK, assigned=3)
            ),
            timeout=60,
            every=0.05,
            what="the fleet to be mid-flight",
        )
        return fleet, at_fault

    def recovered(
        self, fleet: Fleet, *, fault_at: float, healthy_at: float
    ) -> tuple[float, Recovery]:
        """Wait until every job of ``fleet`` closed and stop it; assert the invariants (no
        violation, no 5xx answered); return when the last closed and how the steps around
        the fault (at ``fault_at``, the system whole again at ``healthy_at``) fared."""
        closed_at = fleet.wait_all_closed(timeout=120)
        fleet.stop()
        assert violations(self.engine, fleet.job_ids.values()) == []
        assert self.journal.server_errors() == []
        timings = step_timings(self.engine, fleet.job_ids.values())
        return closed_at, recovery(timings, fault_at=fault_at, healthy_at=healthy_at)

    def fleet(self, **options: object) -> Fleet:
        """A fleet with its parties signed up, in regions no earlier fleet of the stack uses."""
        options.setdefault("first_region", sum(f.regions for f in self.fleets))
        fleet = Fleet(self.client, **options)  # type: ignore[arg-type]
        self.fleets.append(fleet)
        fleet.sign_up()
        return fleet

"""What a scenario holds: the private services, the topology, a database engine, a journal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from tests.harness.http import Client, Journal
from tests.harness.polling import wait_for
from tests.resilience.fleet import Fleet
from tests.resilience.invariants import mid_flight
from tests.resilience.services import PrivatePostgres, PrivateRedis
from tests.resilience.topology import Topology

HELD_BACK = 4  # jobs a scenario posts during its fault


@dataclass
class Stack:
    """One test's running system and the handles a scenario needs."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    topology: Topology
    engine: sa.Engine
    journal: Journal = field(default_factory=Journal)
    fleets: list[Fleet] = field(default_factory=list)

    @property
    def client(self) -> Client:
        """An HTTP client on the API that writes to the shared journal."""
        return Client(self.topology.base_url, self.journal)

    def waiting_steps(self) -> int:
        """Lifecycle step messages waiting in the broker's queue (sweeps not counted)."""
        messages = self.redis.client().lrange("celery", 0, -1)
        tasks = [json.loads(m).get("headers", {}).get("task", "") for m in messages]
        return sum(1 for task in tasks if task.startswith("gigco.tasks.steps."))

    @contextlib.contextmanager
    def worker_frozen_with_steps_waiting(self, fleet: Fleet) -> Iterator[None]:
        """Freeze the worker (as a long GC pause or a saturated host would), post the fleet's
        held-back jobs and wait until their steps wait in Redis; the worker resumes on exit.

        Freezing is needed because the worker prefetches whatever reaches the queue within
        milliseconds.
        """
        worker = self.topology.procs["worker"]
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            fleet.start()
            wait_for(
                lambda: self.waiting_steps() >= HELD_BACK,
                timeout=30,
                what="steps waiting in Redis",
            )
            yield
        finally:
            os.killpg(worker.pid, signal.SIGCONT)

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

    def fleet(self, **options: object) -> Fleet:
        """A fleet with its parties signed up."""
        fleet = Fleet(self.client, **options)  # type: ignore[arg-type]
        self.fleets.append(fleet)
        fleet.sign_up()
        return fleet

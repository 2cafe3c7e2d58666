"""A step stalled inside its transaction (a slow gateway, a frozen worker) holds one job only."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from gigco.lifecycle.locks import lock_job
from tests.harness.polling import wait_for
from tests.resilience.invariants import violations
from tests.resilience.stack import Stack

pytestmark = pytest.mark.timeout(300)


def test_a_job_locked_by_a_stalled_step_holds_up_no_other_job_of_its_category(
    stack: Stack, report: Callable[[str], None]
) -> None:
    fleet = stack.fleet()
    fleet.start([0])
    wait_for(lambda: fleet.closed() == 1, timeout=60, what="the first job to close")
    # Hold the first job's row the way every step does first (as a step stalled under its
    # lock would), and keep holding it while the rest of the fleet runs.
    with Session(stack.engine) as session, session.begin():
        assert lock_job(session, fleet.job_ids[0]) is not None
        locked_at = time.time()
        fleet.start(stagger=0.05)
        closed_at = fleet.wait_all_closed(timeout=90)
    fleet.stop()

    assert violations(stack.engine, fleet.job_ids.values()) == []
    assert stack.journal.server_errors() == []
    report(
        f"{fleet.size - 1} jobs of the same category posted and closed in "
        f"{closed_at - locked_at:.1f}s while another job's row stayed locked"
    )

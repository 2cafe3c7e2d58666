"""The dashboard and the jobs list: counts, filters, pages, and stuck jobs on top.

These run inside the test's rolled-back transaction, so the live worker never sees (or
repairs) the stuck jobs they make.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from gigco.config import Settings
from gigco.models import JobStatus
from gigco.web.ops import queries
from tests import factories as f
from tests.harness.console import Ops, table


@pytest.fixture
def stuck(session: Session, settings: Settings) -> dict[str, int]:
    """55 cancelled jobs, one whose deadline passed an hour ago, one whose step is overdue."""
    now = dt.datetime.now(dt.UTC)
    f.jobs(session, 55, status=JobStatus.CANCELLED)
    late_timer = f.jobs(
        session, 1, status=JobStatus.SCHEDULED, timer_at=now - dt.timedelta(hours=1)
    )[0]
    late_step = f.jobs(
        session,
        1,
        status=JobStatus.IN_PROGRESS,
        step_due_at=now - dt.timedelta(seconds=settings.stuck_step_grace_seconds + 600),
    )[0]
    # Due well inside the grace (a minute from now, for slow machines): not stuck.
    f.jobs(session, 1, status=JobStatus.IN_PROGRESS, step_due_at=now + dt.timedelta(minutes=1))
    # A deadline still ahead: not overdue.
    f.jobs(session, 1, status=JobStatus.OFFERED, timer_at=now + dt.timedelta(hours=1))
    return {"timer": late_timer.id, "step": late_step.id}


def test_dashboard_counts_jobs_per_status_and_flags_the_stuck(
    isolated_app: Flask, ops: Ops, stuck: dict[str, int]
) -> None:
    page = ops.page("/ops/").text
    assert 'data-status="cancelled">55<' in page
    assert 'data-status="in_progress">2<' in page
    assert 'data-status="paid">0<' in page
    assert '<span class="count">59</span>' in page
    rows = table(page, "attention-jobs")
    assert [row[0] for row in rows] == [f"#{stuck['timer']}", f"#{stuck['step']}"]


def test_jobs_list_puts_stuck_jobs_on_top_then_pages_newest_first(
    isolated_app: Flask, ops: Ops, stuck: dict[str, int]
) -> None:
    page = ops.page("/ops/jobs").text
    attention = table(page, "attention-jobs")
    assert [(r[0], r[3]) for r in attention] == [
        (f"#{stuck['timer']}", "deadline passed"),
        (f"#{stuck['step']}", "step overdue"),
    ]
    assert float(attention[0][5].removesuffix(" s")) >= 3600

    first = table(page, "jobs")
    assert len(first) == 50
    ids = [int(row[0][1:]) for row in first]
    assert ids == sorted(ids, reverse=True)
    assert f'rel="next" href="/ops/jobs?after={ids[-1]}"' in page

    later = ops.page(f"/ops/jobs?after={ids[-1]}").text
    second = table(later, "jobs")
    assert len(second) == 59 - 50
    assert max(int(r[0][1:]) for r in second) < min(ids)
    assert 'rel="next"' not in later and 'rel="first" href="/ops/jobs"' in later


def test_jobs_list_filters_by_status_and_keeps_the_filter_across_pages(
    isolated_app: Flask, ops: Ops, stuck: dict[str, int]
) -> None:
    page = ops.page("/ops/jobs?status=cancelled").text
    rows = table(page, "jobs")
    assert len(rows) == 50 and {row[3] for row in rows} == {"cancelled"}
    assert "Nothing is stuck." in page  # no cancelled job is stuck
    last = rows[-1][0][1:]
    assert f'href="/ops/jobs?after={last}&amp;status=cancelled"' in page
    rows = table(ops.page(f"/ops/jobs?after={last}&status=cancelled").text, "jobs")
    assert len(rows) == 5

    page = ops.page("/ops/jobs?status=in_progress").text
    assert [r[0] for r in table(page, "attention-jobs")] == [f"#{stuck['step']}"]
    assert "No jobs in paid." in ops.page("/ops/jobs?status=paid").text


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[tuple[str, object]]]:
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_a_page_costs_the_same_queries_for_fifty_rows_as_for_nine(
    isolated_app: Flask, ops: Ops, stuck: dict[str, int], engine: sa.Engine
) -> None:
    with _statements(engine) as full:
        ops.page("/ops/jobs")
    with _statements(engine) as short:
        ops.page(f"/ops/jobs?after={stuck['timer'] - 46}")
    assert len(full) == len(short) <= 11  # 9, and the overrun list's count and scan


def test_stuck_jobs_are_found_through_the_deadline_indexes(
    session: Session, stuck: dict[str, int], engine: sa.Engine, settings: Settings
) -> None:
    with _statements(engine) as seen:
        rows, total = queries.attention(
            session, now=dt.datetime.now(dt.UTC), grace_seconds=settings.stuck_step_grace_seconds
        )
    assert total == 2 and len(rows) == 2
    # With sequential scans priced out, the planner must be able to use the partial index.
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plans = []
    for statement, params in seen:
        plan = session.connection().exec_driver_sql(f"EXPLAIN {statement}", params)
        plans.append("\n".join(plan.scalars()))
    assert sum("ix_jobs_timer_at" in p for p in plans) == 2, plans
    assert sum("ix_jobs_step_due_at" in p for p in plans) == 2, plans

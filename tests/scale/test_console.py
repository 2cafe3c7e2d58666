"""The console's pages cost O(page) at any table size: every count is a bounded probe."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from gigco.lifecycle.counts import jobs_per_status
from gigco.models import JobStatus
from gigco.web.ops import queries
from tests.harness.console import Ops
from tests.scale.test_plans import ROWS, seed_jobs, statements


def _counts_are_capped(session: Session, sql: str, params: Any) -> list[str]:
    """The plan's nodes, checked: no Seq Scan on jobs, and every count stops at a LIMIT."""
    raw = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).scalar()
    unbounded: list[str] = []

    def walk(node: dict[str, Any], under_limit: bool) -> None:
        if node["Node Type"] == "Limit":
            under_limit = True
        elif node["Node Type"] == "Aggregate" and not node.get("Group Key"):
            under_limit = False  # a new count starts: its input must be limited again
        if node.get("Relation Name") == "jobs" and not under_limit and "count(" in sql:
            unbounded.append(f"{node['Node Type']} {node.get('Index Name', '')}")
        for child in node.get("Plans", []):
            walk(child, under_limit)

    walk(raw[0]["Plan"], False)
    return unbounded


def test_the_jobs_list_counts_at_most_the_cap(isolated_app: Flask, session: Session) -> None:
    seed_jobs(session, ROWS)
    session.execute(sa.text("ANALYZE jobs"))
    console = Ops(isolated_app.test_client())
    assert console.login().status_code == 303
    # The dashboard's jobs per status are exact counters (tests/scale/test_counts.py).
    for path in ("/ops/jobs", "/ops/jobs?status=closed"):
        with statements(session) as seen:
            page = console.page(path).text
        counting = [(sql, p) for sql, p in seen if "count(" in sql and "jobs" in sql]
        assert counting, path
        for sql, params in counting:
            # A scan under its LIMIT stops after the cap, even a Seq Scan over a status
            # that is most of the table; what must not be is a scan with no LIMIT above it.
            assert _counts_are_capped(session, sql, params) == [], (path, sql)
        assert f'<span class="count">{queries.COUNT_CAP}+</span>' in page, path


def test_a_count_below_the_cap_is_exact(session: Session) -> None:
    seed_jobs(session, 25)
    counts = jobs_per_status(session)
    assert counts[JobStatus.CLOSED] == 25
    assert sum(counts.values()) == 25

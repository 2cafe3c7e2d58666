"""Lifecycle policies over the API: a job shows its policy, anyone signed in reads it, the
operator moves a job to the newest one, and creating jobs does not ask for it again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from tests.api.helpers import assert_error
from tests.harness.http import Api
from tests.harness.journeys import closed_job


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL every engine of this process runs meanwhile."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", note)


def test_a_job_shows_its_policy_whose_values_are_the_rules_it_was_created_under(
    api: Api,
) -> None:
    consumer, worker = api.consumer(), api.worker()
    job = api.post_job(consumer)
    version = job["policy_version"]
    assert isinstance(version, int)
    rates = {c["name"]: c["hourly_rate_cents"] for c in api.client.get("/v1/categories").json}
    for headers in (consumer["headers"], worker["headers"], api.admin):
        r = api.client.get(f"/v1/policies/{version}", headers=headers)
        assert r.status_code == 200, r.json
        assert r.json["version"] == version
        # The run's environment (tests/harness/env.py), the code's fee and today's rates.
        assert r.json["offer_ttl_seconds"] == 5
        assert r.json["opportunity_ttl_seconds"] == 3
        assert r.json["match_max_rounds"] == 2
        assert r.json["payment_max_attempts"] == 3
        assert r.json["payment_retry_base_seconds"] == 0.3
        assert r.json["review_window_seconds"] == 4
        assert r.json["fee_rate"] == "0.10"
        assert r.json["hourly_rates"] == rates


def test_policies_are_for_signed_in_parties_and_unknown_ones_are_404(api: Api) -> None:
    version = api.post_job(api.consumer())["policy_version"]
    assert_error(api.client.get(f"/v1/policies/{version}"), 401)
    for missing in (version + 1000, 2**40):
        assert_error(api.client.get(f"/v1/policies/{missing}", headers=api.admin), 404)


def test_creating_jobs_under_the_same_values_reuses_the_policy_without_reading_it(
    api: Api,
) -> None:
    consumer = api.consumer()
    first = api.post_job(consumer)  # may write the row, or read it once
    second = api.post_job(consumer)  # learns it is committed
    with statements() as seen:
        third = api.post_job(consumer)
    assert first["policy_version"] == second["policy_version"] == third["policy_version"]
    assert not [s for s in seen if "lifecycle_policies" in s]


def test_the_operator_moves_a_job_to_the_newest_policy_once_and_its_history_says_so(
    api: Api, engine: sa.Engine
) -> None:
    consumer = api.consumer()
    job = api.post_job(consumer)
    newest = job["policy_version"]
    # Pin the job to an older policy (version 1: the defaults, written by the migration).
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE jobs SET policy_version = 1 WHERE id = :id"), {"id": job["id"]}
        )
    assert newest != 1

    assert_error(api.signal(job["id"], "policy/upgrade", consumer), 403)
    r = api.signal(job["id"], "policy/upgrade")
    assert r.status_code == 200, r.json
    assert r.json["policy_version"] == newest
    again = api.signal(job["id"], "policy/upgrade")  # already on it: nothing more
    assert again.status_code == 200 and again.json["policy_version"] == newest

    upgrades = [e for e in api.events(job["id"]) if e["type"] == "policy_upgraded"]
    assert [(e["data"], e["actor"]) for e in upgrades] == [
        ({"from_version": 1, "to_version": newest}, "operator")
    ]
    seen = api.client.get(f"/v1/jobs/{job['id']}/events", headers=consumer["headers"]).json
    assert [e["data"] for e in seen if e["type"] == "policy_upgraded"] == [
        {"from_version": 1, "to_version": newest}
    ]


def test_a_job_that_has_ended_keeps_its_policy(api: Api) -> None:
    job_id, _consumer, _worker = closed_job(api)
    r = api.signal(job_id, "policy/upgrade")
    body = assert_error(r, 409)
    assert "closed" in body["message"]
    assert not [e for e in api.events(job_id) if e["type"] == "policy_upgraded"]

"""The system panel: workers, beat, queues and the oldest overdue step, on /healthz's facts.

The verdict of the panel is the verdict of /healthz for the same state (both built from
``gigco.health.check``); the red states are set up in a database of their own, whose
heartbeats nothing else writes.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import sessionmaker

import gigco
from gigco import clock, health
from gigco.broker import QUEUES
from gigco.config import Settings
from gigco.db import make_engine
from gigco.models import Heartbeat
from gigco.tasks import configure as configure_celery
from gigco.web import create_app
from tests.harness import database
from tests.harness.console import Ops, table
from tests.harness.env import server_url
from tests.harness.http import Api
from tests.harness.polling import wait_for

_DOWN = re.compile(r'<li data-part="([a-z]+)">')


@pytest.fixture
def lone(settings: Settings) -> Iterator[tuple[Flask, sessionmaker[sa.orm.Session]]]:
    """An app on a migrated database of its own and the in-memory broker, with its sessions."""
    name = f"gigco_system_{uuid.uuid4().hex[:8]}"
    url = database.create_database(server_url(), name)
    engine = make_engine(url)
    try:
        yield (
            create_app(settings.replace(database_url=url, broker_url="memory://")),
            (sa.orm.sessionmaker(engine)),
        )
    finally:
        engine.dispose()
        configure_celery(settings)
        database.drop_database(server_url(), name)


def _panel(app: Flask) -> tuple[int, str, list[str]]:
    console = Ops(app.test_client())
    assert console.login().status_code == 303
    r = console.client.get("/ops/system")
    return r.status_code, r.text, _DOWN.findall(r.text)


def _healthz(app: Flask) -> tuple[int, list[str]]:
    r = app.test_client().get("/healthz")
    return r.status_code, r.get_json()["down"]


def test_the_panel_and_healthz_give_one_verdict_as_beat_freezes_and_thaws(lone) -> None:
    app, sessions = lone
    now = clock.now()
    interval = app.config["GIGCO"].sweep_interval_seconds
    with sessions.begin() as session:
        session.add(
            Heartbeat(
                name="beat:frozen",
                kind="beat",
                started_at=now - dt.timedelta(hours=1),
                beat_at=now - dt.timedelta(seconds=3 * interval + 30),
            )
        )
        session.add(
            Heartbeat(
                name="worker:celery@w1",
                kind="worker",
                started_at=now - dt.timedelta(hours=1),
                beat_at=now - dt.timedelta(seconds=5),
                seen_at=now,
                in_flight=2,
                queues="celery,sweeps,webhooks",
            )
        )

    status, page, down = _panel(app)
    assert (status, down) == (503, ["beat"])
    assert _healthz(app) == (503, down)
    assert 'data-status="down"' in page and "no sweep for" in page
    [worker] = table(page, "worker-nodes")
    assert worker[0] == "celery@w1" and worker[1] == "alive" and worker[3] == "2"
    assert worker[4] == "celery, sweeps, webhooks"
    lag = float(re.search(r'id="beat-lag">([0-9.]+)<', page).group(1))
    assert lag >= 3 * interval + 30

    with sessions.begin() as session:  # beat sweeps again
        session.get(Heartbeat, "beat:frozen").beat_at = clock.now()
    status, page, down = _panel(app)
    assert (status, down) == (200, [])
    assert _healthz(app) == (200, [])
    assert 'data-status="ok"' in page


def test_a_queue_holding_messages_that_no_live_worker_consumes_is_down(lone) -> None:
    app, sessions = lone
    settings, now = app.config["GIGCO"], clock.now()
    with sessions.begin() as session:
        session.add(
            Heartbeat(
                name="worker:celery@steps",
                kind="worker",
                started_at=now,
                seen_at=now,
                in_flight=0,
                queues="celery,sweeps",
            )
        )
        session.add(
            Heartbeat(
                name="worker:celery@hooks",  # consumed webhooks, silent for a minute
                kind="worker",
                started_at=now - dt.timedelta(hours=1),
                seen_at=now - dt.timedelta(minutes=1),
                queues="webhooks",
            )
        )
    with sessions() as session:
        part = health.workers(
            session, settings, now=now, depths={"celery": 3, "sweeps": 0, "webhooks": 7}
        )
        assert part.status == "down"
        assert part.reason == "messages wait in webhooks (7) and no live worker consumes it"
        alive = {node["name"]: node["alive"] for node in part.facts["nodes"]}
        assert alive == {"celery@steps": True, "celery@hooks": False}
        # Nothing waits there, or the depth is unknown (the embedded broker): not down.
        for depths in ({"webhooks": 0}, {"webhooks": None}, None):
            assert health.workers(session, settings, now=now, depths=depths).status == "ok"


def test_the_live_worker_is_listed_alive_with_its_queues_and_the_queue_depths(
    api: Api, ops: Ops
) -> None:
    def listed() -> list[list[str]]:
        r = ops.client.get("/ops/system")
        return [row for row in table(r.text, "worker-nodes") if row[1] == "alive"]

    nodes = wait_for(listed, timeout=15, what="the live worker's tick")
    assert "celery, recovery, sweeps, webhooks" in [row[4] for row in nodes]
    assert gigco.__version__ in [row[5] for row in nodes]  # the release it runs
    page = ops.client.get("/ops/system").text
    depths = table(page, "queues") or []
    assert page.count('data-queue="') == len(QUEUES)
    for queue in QUEUES:
        cell = re.search(rf'data-queue="{queue}"><td>{queue}</td>\s*<td class="num">(\w+)<', page)
        assert cell and cell.group(1).isdigit(), (queue, depths)  # Redis can say

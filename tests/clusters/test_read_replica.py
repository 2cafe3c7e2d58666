"""A read replica (GIGCO_READ_DATABASE_URL) on a real streaming standby: the lists, the feed
and the console's overview pages read from it, the rest from the primary; the feed never
skips a notification though the standby lags; a silent or stopped standby is a 503 on its
routes only, within the request's bound, and the routes recover on their own.

The app runs in this process (the Flask test client): what is tested is which database each
route reads and what it hands out, not gunicorn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import sessionmaker

from gigco.config import load_settings
from gigco.db import make_engine
from gigco.lifecycle.notify import notify_consumer
from tests.blackhole import blackhole
from tests.clusters.conftest import unique_name
from tests.clusters.pg_pair import PostgresPair
from tests.harness.console import Ops
from tests.harness.env import ADMIN_TOKEN, limits_env
from tests.harness.http import Api, is_error_envelope
from tests.harness.polling import wait_for
from tests.resilience.brokers import RedisBroker

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("postgres_binaries")]

STATEMENT_MS, MARGIN_S, CONNECT_S = 1000, 1.0, 5
# What a request on a silent replica may take: its checkout check gives up after the statement
# timeout plus the margin, the reconnect after the connect timeout (gigco/db_wait.py).
BOUND_S = STATEMENT_MS / 1000 + MARGIN_S + CONNECT_S
SLACK_S = 3.0  # a loaded 2-core machine


def app_on(primary_url: str, replica_url: str, broker: RedisBroker) -> Flask:
    """The API on ``primary_url`` reading its replica routes from ``replica_url``."""
    from gigco.web import create_app

    settings = load_settings(
        {
            "GIGCO_DATABASE_URL": primary_url,
            "GIGCO_READ_DATABASE_URL": replica_url,
            "GIGCO_BROKER_URL": broker.url,
            "GIGCO_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIGCO_OPS_SECURE_COOKIE": "false",
            "GIGCO_DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_MS),
            "GIGCO_LOG_LEVEL": "WARNING",
            **limits_env(),
        }
    )
    return create_app(settings)


@pytest.fixture
def database(pair: PostgresPair, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the pair; its name."""
    name = unique_name(request)
    pair.create(name)
    replicated(pair)  # the standby has it (commits wait for its flush, not its replay)
    yield name


def replicated(pair: PostgresPair) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    primary, standby = on(pair.a, "postgres"), on(pair.b, "postgres")
    try:
        wait_for(caught_up(primary, standby), timeout=30, what="the standby to catch up")
    finally:
        primary.dispose()
        standby.dispose()


def on(node: Any, database: str) -> sa.Engine:
    """An autocommit engine on one node of the pair."""
    return make_engine(node.url(database), isolation_level="AUTOCOMMIT", pool_size=2)


def replay(standby: sa.Engine, *, paused: bool) -> None:
    """Pause or resume the standby's WAL replay, and wait until it is so."""
    with standby.connect() as conn:
        conn.execute(sa.text(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()"))
        wait_for(
            lambda: (
                (conn.scalar(sa.text("SELECT pg_get_wal_replay_pause_state()")) == "paused")
                == paused
            ),
            timeout=10,
            what=f"replay {'paused' if paused else 'resumed'}",
        )


def caught_up(primary: sa.Engine, standby: sa.Engine) -> Callable[[], bool]:
    """A probe: the standby has replayed all the primary has written so far."""
    with primary.connect() as conn:
        lsn = conn.scalar(sa.text("SELECT pg_current_wal_lsn()"))

    def probe() -> bool:
        with standby.connect() as conn:
            return bool(
                conn.scalar(sa.text("SELECT pg_last_wal_replay_lsn() >= :lsn"), {"lsn": lsn})
            )

    return probe


def messages(page: list[dict[str, Any]]) -> list[str]:
    """The messages of a feed or list page."""
    return [n["message"] for n in page]


def test_lists_and_the_feed_read_the_lagging_replica_and_the_feed_never_skips(
    pair: PostgresPair, database: str, redis_broker: RedisBroker
) -> None:
    primary, standby = on(pair.a, database), on(pair.b, database)
    app = app_on(pair.a.url(database), pair.b.url(database), redis_broker)
    api, ops = Api(app.test_client(), ADMIN_TOKEN), Ops(app.test_client())
    assert ops.login().status_code == 303
    consumer = api.consumer()
    h = consumer["headers"]
    sessions = sessionmaker(primary.execution_options(isolation_level="READ COMMITTED"))

    # A notification written by a transaction still open on the primary ("early"), and one
    # committed after it with a higher transaction id ("late").
    early = sessions()
    notify_consumer(early, consumer["id"], "test", "early")
    early.flush()  # its transaction has an id now, and holds its row
    with sessions.begin() as s:
        notify_consumer(s, consumer["id"], "test", "late")
    listed = wait_for(
        lambda: api.client.get("/v1/notifications", headers=h).json or None,
        timeout=10,
        what="the replica to list the committed notification",
    )
    assert messages(listed) == ["late"]
    # The standby's snapshot lists no running transaction (pg_current_snapshot's xip is empty
    # in recovery): a settled point taken as the lowest running id would be its xmax, past
    # "early", and "late" would be handed out with a cursor beyond "early". Held back instead.
    with standby.connect() as conn:
        assert conn.scalar(sa.text("SELECT pg_is_in_recovery()"))
        assert conn.scalar(sa.text("SELECT pg_snapshot_xip(pg_current_snapshot())")) is None
    feed = api.client.get("/v1/notifications/feed?after=0-0", headers=h)
    assert feed.status_code == 200 and feed.json == []

    # Replay paused: the primary moves on, the replica does not.
    replay(standby, paused=True)
    early.commit()
    early.close()
    with sessions.begin() as s:
        notify_consumer(s, consumer["id"], "test", "last")
    job = api.post_job(consumer)
    with primary.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM notifications")) == 3
    assert api.job(job["id"], h)["id"] == job["id"]  # a job read by id: the primary
    lists = api.client.get("/v1/jobs", headers=h)
    assert lists.status_code == 200 and lists.json == []  # the lagging replica
    assert f"/ops/jobs/{job['id']}" not in ops.page("/ops/jobs").text
    assert ops.page(f"/ops/jobs/{job['id']}").status_code == 200  # the job page: the primary
    assert messages(api.client.get("/v1/notifications", headers=h).json) == ["late"]
    assert api.client.get("/v1/notifications/feed?after=0-0", headers=h).json == []

    # Replay resumed: a client paging the feed gets every notification once, in order.
    replay(standby, paused=False)
    wait_for(caught_up(primary, standby), timeout=10, what="the standby to catch up")
    seen, cursor = [], "0-0"
    while len(seen) < 3:
        page = api.feed(h, cursor, limit=1)
        seen += messages(page)
        cursor = page[-1]["cursor"]
    assert seen == ["early", "late", "last"]
    assert api.client.get(f"/v1/notifications/feed?after={cursor}", headers=h).json == []
    assert [j["id"] for j in api.client.get("/v1/jobs", headers=h).json] == [job["id"]]
    assert f"/ops/jobs/{job['id']}" in ops.page("/ops/jobs").text
    primary.dispose()
    standby.dispose()


def test_a_feed_client_paging_the_replica_while_replay_stops_and_starts_misses_nothing(
    pair: PostgresPair, database: str, redis_broker: RedisBroker
) -> None:
    primary, standby = on(pair.a, database), on(pair.b, database)
    app = app_on(pair.a.url(database), pair.b.url(database), redis_broker)
    api = Api(app.test_client(), ADMIN_TOKEN)
    consumer = api.consumer()
    h = consumer["headers"]
    sessions = sessionmaker(primary.execution_options(isolation_level="READ COMMITTED"))
    written: list[str] = []
    seen: list[str] = []
    cursor = "0-0"

    def poll() -> None:
        nonlocal cursor
        page = api.client.get(f"/v1/notifications/feed?after={cursor}&limit=2", headers=h)
        assert page.status_code == 200, page.json
        if page.json:
            seen.extend(messages(page.json))
            cursor = page.json[-1]["cursor"]

    # Rounds of: open a writer that commits late, commit others after it, sometimes with the
    # standby's replay paused, polling the replica's feed between every step.
    for round_ in range(6):
        held = sessions()
        notify_consumer(held, consumer["id"], "test", f"{round_}-held")
        held.flush()
        poll()
        if round_ % 2:
            replay(standby, paused=True)
        for k in range(2):
            with sessions.begin() as s:
                notify_consumer(s, consumer["id"], "test", f"{round_}-{k}")
            written.append(f"{round_}-{k}")
            poll()
        held.commit()
        held.close()
        written.append(f"{round_}-held")
        poll()
        if round_ % 2:
            replay(standby, paused=False)
        poll()
    wait_for(caught_up(primary, standby), timeout=10, what="the standby to catch up")
    wait_for(lambda: poll() or len(seen) >= len(written), timeout=10, what="the feed to drain")
    assert sorted(seen) == sorted(written)  # nothing skipped, nothing twice
    assert len(seen) == len(set(seen))
    primary.dispose()
    standby.dispose()


def test_a_silent_or_stopped_replica_is_a_503_on_its_routes_only_then_they_recover(
    pair: PostgresPair,
    database: str,
    redis_broker: RedisBroker,
    report: Callable[[str], None],
) -> None:
    with blackhole(("127.0.0.1", pair.b.port)) as proxy:
        replica = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
        app = app_on(pair.a.url(database), replica, redis_broker)
        api = Api(app.test_client(), ADMIN_TOKEN)
        consumer = api.consumer()
        h = consumer["headers"]
        job = api.post_job(consumer)
        wait_for(
            lambda: api.client.get("/v1/jobs", headers=h).json,
            timeout=10,
            what="the replica to list the job",
        )

        def timed(path: str) -> tuple[Any, float]:
            started = time.monotonic()
            r = api.client.get(path, headers=h)
            return r, time.monotonic() - started

        proxy.swallow()
        silent = []
        for path in ("/v1/jobs", "/v1/notifications", "/v1/notifications/feed"):
            r, took = timed(path)
            assert r.status_code == 503 and is_error_envelope(r.json, 503), (path, r.json)
            assert r.headers.get("Retry-After")
            assert took <= BOUND_S + SLACK_S, (path, took)
            silent.append(took)
        assert api.job(job["id"], h)["id"] == job["id"]  # the primary's routes answer
        assert api.post_job(consumer)["id"] > job["id"]

        proxy.forward()
        wait_for(
            lambda: api.client.get("/v1/jobs", headers=h).status_code == 200,
            timeout=BOUND_S + SLACK_S,
            what="the replica's routes to answer again",
        )

    pair.b.stop()  # the proxy is gone too: nothing listens on the replica's port
    r, took = timed("/v1/jobs")
    assert r.status_code == 503 and is_error_envelope(r.json, 503), r.json
    assert took <= BOUND_S + SLACK_S
    assert api.job(job["id"], h)["id"] == job["id"]
    report(
        f"silent replica: 503 in {', '.join(f'{t:.2f}s' for t in silent)} (bound {BOUND_S:g}s"
        f" at a {STATEMENT_MS} ms statement timeout); stopped replica: 503 in {took:.2f}s"
    )


def test_given_both_hosts_with_prefer_standby_the_replica_routes_fall_back_to_the_primary(
    pair: PostgresPair, database: str, redis_broker: RedisBroker
) -> None:
    both = (
        f"postgresql://postgres@127.0.0.1:{pair.b.port},127.0.0.1:{pair.a.port}/{database}"
        "?target_session_attrs=prefer-standby"
    )
    app = app_on(pair.a.url(database), both, redis_broker)
    api = Api(app.test_client(), ADMIN_TOKEN)
    consumer = api.consumer()
    h = consumer["headers"]
    standby = on(pair.b, database)
    replay(standby, paused=True)  # the standby is known by what it lacks
    standby.dispose()
    job = api.post_job(consumer)
    assert api.client.get("/v1/jobs", headers=h).json == []  # read on the standby

    pair.b.stop()
    r = api.client.get("/v1/jobs", headers=h)  # read on the primary now
    assert r.status_code == 200, r.json
    assert [j["id"] for j in r.json] == [job["id"]]

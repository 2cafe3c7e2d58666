"""The request's database session: opened on first use, closed at teardown."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app, g, has_request_context, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gigco import clock
from gigco.lifecycle import test_clocks
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.transitions import Due
from gigco.tasks.dispatch import send_after_commit

log = logging.getLogger(__name__)


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session() -> Session:
    """This request's session.

    A GET (or HEAD, OPTIONS) changes nothing, so it reads without a transaction: each
    statement on its own, no BEGIN and no ROLLBACK round trips around it.
    """
    if "db_session" not in g:
        read_only = has_request_context() and request.method in READ_ONLY_METHODS
        factory = "gigco_read_sessions" if read_only else "gigco_sessions"
        g.db_session = current_app.extensions[factory]()
    return g.db_session


def step_context(job_id: int | None = None) -> StepContext:
    """The context a request's lifecycle calls run in: the app's settings, now — on job
    ``job_id``'s test clock when it runs on one (asked only with GIGCO_TEST_CLOCKS=1)."""
    settings = current_app.config["GIGCO"]
    g.on_test_clock = False
    if job_id is not None and settings.test_clocks:
        clocked = test_clocks.job_time(session(), job_id)
        if clocked is not None:
            g.on_test_clock = True  # its deadlines wait for the clock, not the broker
            return StepContext(settings=settings, now=clocked)
    return StepContext(settings=settings, now=clock.now())


def commit(dues: Iterable[Due] = ()) -> None:
    """Commit the request's work, then send the steps it made due (on a test clock's job only
    those due at once: its deadlines wait for the clock's advance)."""
    s = session()
    if g.get("on_test_clock"):
        dues = [due for due in dues if due.at is None]
    send_after_commit(s, dues)
    s.commit()


def release() -> None:
    """End the request's transaction so far (it must have written nothing), so that slow
    work that follows (a DNS lookup) holds no connection; the next statement begins anew."""
    s = g.get("db_session")
    if s is not None:
        if s.new or s.dirty or s.deleted:
            raise RuntimeError("release() would commit unsaved changes")
        s.commit()


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and return the connection to the pool."""
    s = g.pop("db_session", None)
    if s is None:
        return
    try:
        s.close()
    except DBAPIError as error:
        # The database went away after the request's last statement (a restart, a killed
        # backend): the answer is already made, so it must not become a bare 500 here.
        # SQLAlchemy has invalidated the broken connection; the pool opens a new one.
        log.warning("could not roll back the request's transaction: %s", error.orig)

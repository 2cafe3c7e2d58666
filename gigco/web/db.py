"""The request's database sessions: opened on first use, closed at teardown.

A view marked ``reads_replica`` (a read-only one that may lag: lists, the feed, the console's
overview pages) reads from the replica when ``GIGCO_READ_DATABASE_URL`` is set; everything
else, and every request's token lookup (``primary_session``), reads the primary, which has
the request's own writes and a revoked token's revocation (docs/scaling.md, "A read replica").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

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
REPLICA_SESSIONS = "gigco_replica_sessions"  # app.extensions' key, set with a replica only
_MARK = "gigco_reads_replica"

F = TypeVar("F", bound=Callable[..., Any])


def reads_replica(view: F) -> F:
    """Mark a GET view as one that may read from the replica: it writes nothing, and a reader
    may see the primary's latest commits a replica's lag later (put it above the others)."""
    setattr(view, _MARK, True)
    return view


def replica_reader() -> bool:
    """True when this request's view is marked ``reads_replica`` (whether or not a replica
    is configured)."""
    if not has_request_context() or request.method not in READ_ONLY_METHODS:
        return False
    return marked(current_app.view_functions.get(request.endpoint or ""), request.method)


def marked(view: Callable[..., Any] | None, method: str) -> bool:
    """True when ``view`` (a Flask view function, a MethodView's included) is marked
    ``reads_replica`` for ``method``."""
    handler = getattr(getattr(view, "view_class", None), method.lower(), None)
    return bool(getattr(view, _MARK, False) or getattr(handler, _MARK, False))


def primary_session() -> Session:
    """This request's session on the primary.

    A GET (or HEAD, OPTIONS) changes nothing, so it reads without a transaction: each
    statement on its own, no BEGIN and no ROLLBACK round trips around it.
    """
    if "db_session" not in g:
        read_only = has_request_context() and request.method in READ_ONLY_METHODS
        factory = "gigco_read_sessions" if read_only else "gigco_sessions"
        g.db_session = current_app.extensions[factory]()
    return g.db_session


def session() -> Session:
    """This request's session: the replica's (autocommit too) in a view marked
    ``reads_replica`` when a replica is configured, else the primary's."""
    replicas = current_app.extensions.get(REPLICA_SESSIONS)
    if replicas is None or not replica_reader():
        return primary_session()
    if "replica_session" not in g:
        g.replica_session = replicas()
    return g.replica_session


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
    """Roll back anything uncommitted and return the connections to their pools."""
    for key in ("db_session", "replica_session"):
        s = g.pop(key, None)
        if s is None:
            continue
        try:
            s.close()
        except DBAPIError as error:
            # The database went away after the request's last statement (a restart, a killed
            # backend): the answer is already made, so it must not become a bare 500 here.
            # SQLAlchemy has invalidated the broken connection; the pool opens a new one.
            log.warning("could not roll back the request's transaction: %s", error.orig)

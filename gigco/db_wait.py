"""How long a psycopg2 call may wait for PostgreSQL: a client-side bound on every round trip.

``statement_timeout`` is enforced by the server, and libpq's ``connect_timeout`` only while
connecting: a server that keeps the connection open and never answers (a frozen host, a
stalled proxy, a network that drops packets without a reset) holds a blocking libpq call for
as long as the kernel's TCP retransmissions last, and TCP keepalives or ``tcp_user_timeout``
do not help when something on the way still acknowledges the bytes.

psycopg2's wait callback (``psycopg2.extensions.set_wait_callback``, the hook its own
``extras.wait_select`` uses to make Ctrl-C work) is how the client bounds it: with one set,
psycopg2 runs every call (connect, execute, commit, rollback, the pool's ping) through libpq's
non-blocking API and lets the callback wait for the socket. The callback here waits with
``select`` up to the connection's bound; past it, it raises ``OperationalError`` and psycopg2
closes the connection (its documented reaction to a failing callback), so SQLAlchemy sees a
disconnect, drops the connection from its pool and the caller gets the error: a 503 in the
API, a retried step in the worker. No thread, no timer: one ``select`` per round trip, which
the blocking call made inside libpq anyway.

A connection's bound is its class's: ``bounded_connection`` makes the psycopg2 connection
class an engine passes as ``connection_factory``; connections made otherwise wait unbounded
(as without the callback), except while connecting, where libpq's own ``connect_timeout`` no
longer applies in non-blocking mode and the callback applies it instead.
"""

from __future__ import annotations

import contextlib
import math
import select
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import psycopg2
import psycopg2.extensions

# What an answer may take beyond the statement timeout: the server's own cancel of a
# statement at its timeout reaches the client well within this.
MARGIN_SECONDS = 1.0
DEFAULT_CONNECT_SECONDS = 10.0


class BoundedConnection(psycopg2.extensions.connection):
    """A psycopg2 connection whose calls give up after ``answer_seconds`` without an answer
    (``connect_seconds`` while connecting)."""

    answer_seconds: float | None = None
    connect_seconds: float = DEFAULT_CONNECT_SECONDS


@cache
def bounded_connection(
    statement_timeout_ms: int | None, connect_timeout_s: float
) -> type[BoundedConnection]:
    """The connection class for an engine with these timeouts (one class per pair)."""
    answer = statement_timeout_ms / 1000 + MARGIN_SECONDS if statement_timeout_ms else None
    return type(
        "BoundedConnection",
        (BoundedConnection,),
        {"answer_seconds": answer, "connect_seconds": connect_timeout_s},
    )


def _bound(conn: Any) -> float | None:
    if conn.status == psycopg2.extensions.STATUS_SETUP:  # still connecting
        return getattr(conn, "connect_seconds", DEFAULT_CONNECT_SECONDS)
    return getattr(conn, "answer_seconds", None)


_EVENTS = {
    psycopg2.extensions.POLL_READ: select.POLLIN,
    psycopg2.extensions.POLL_WRITE: select.POLLOUT,
}


def wait_with_deadline(conn: Any) -> None:
    """psycopg2's wait callback: ``extras.wait_select`` with the connection's bound."""
    bound = _bound(conn)
    deadline = None if bound is None else time.monotonic() + bound
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state not in _EVENTS:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise psycopg2.OperationalError(
                f"no answer from the database within {bound:g}s (the connection is closed)"
            )
        poller = select.poll()  # not select(): it fails on descriptors past 1023
        poller.register(conn.fileno(), _EVENTS[state])
        poller.poll(None if remaining is None else math.ceil(remaining * 1000))


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """psycopg2's blocking calls for the duration (COPY refuses to run with a wait callback);
    for single-threaded tools such as the benchmarks' bulk loads."""
    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def install() -> None:
    """Route every psycopg2 call of this process through ``wait_with_deadline`` (idempotent)."""
    if psycopg2.extensions.get_wait_callback() is not wait_with_deadline:
        psycopg2.extensions.set_wait_callback(wait_with_deadline)

"""The one door to the time: every lifecycle decision reads "now" here, and it is the database's.

Deadlines are written and judged against this clock (the lifecycle, its sweeps, the webhook
leases, the health checks). It is the database server's clock, never a host's: the engine
reads ``clock_timestamp()`` on a statement it sends anyway (``gigco.db``'s checkout check,
which replaced ``pool_pre_ping``'s ``SELECT 1``; at least once a second in a busy process)
and calls ``observe``; ``now()`` is this host's time plus the latest offset measured, so it
costs no round trip of its own. The offset is corrected by half the round trip it was
measured on, so its error is at most half that round trip (well under a millisecond on a
LAN). Until a first measurement (and on SQLite, which runs on this host) the offset is zero.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_offset_seconds = 0.0
_measured_at = -1e9  # time.monotonic() of the latest measurement
_measured = threading.Event()
_calibrate: Callable[[], object] | None = None
_last_attempt = -1e9
CALIBRATION_RETRY_SECONDS = 5.0


def now() -> dt.datetime:
    """The database's current time, timezone-aware in UTC (this host's clock, corrected).

    Before this process's first measurement it makes one (``calibrate_with``), so even a
    process's first decision is judged by the database's clock."""
    if not _measured.is_set() and _calibrate is not None:
        _first_measurement()
    return dt.datetime.fromtimestamp(time.time() + _offset_seconds, dt.UTC)


def calibrate_with(measure: Callable[[], object]) -> None:
    """``measure`` (a checkout from an engine) takes a first measurement when ``now()`` is
    asked before any; ``gigco.db.make_engine`` registers one for each PostgreSQL engine."""
    global _calibrate
    _calibrate = measure


def _first_measurement() -> None:
    global _last_attempt
    started = time.monotonic()
    if started - _last_attempt < CALIBRATION_RETRY_SECONDS or _calibrate is None:
        return  # the database was down a moment ago: this host's clock until it answers
    _last_attempt = started
    try:
        _calibrate()
    except Exception:
        log.warning("could not read the database's clock; using this host's", exc_info=True)


def offset() -> dt.timedelta:
    """How far the database's clock is ahead of this host's (negative when behind)."""
    return dt.timedelta(seconds=_offset_seconds)


def to_host(when: dt.datetime) -> dt.datetime:
    """``when`` (a time on the database's clock) as this host's clock reads it: what a
    broker ETA, which the receiving host judges with its own clock, is given."""
    return when - offset()


def observe(sent: float, database_time: dt.datetime, received: float) -> None:
    """Record the database's clock reading ``database_time``, taken on a statement sent at
    host time ``sent`` (``time.time()``) and answered at ``received``: the reading is taken
    halfway through, on average."""
    global _offset_seconds, _measured_at
    _offset_seconds = database_time.timestamp() - (sent + received) / 2
    _measured_at = time.monotonic()
    _measured.set()


def reading_age() -> float:
    """Seconds since the latest measurement (very many before the first)."""
    return time.monotonic() - _measured_at


def measured() -> bool:
    """True once an offset has been measured in this process."""
    return _measured.is_set()

"""Can the system make progress? One set of facts for /healthz, /readyz, ``gigco health``,
the worker's liveness probe and the operators' console.

The facts come from places every broker shares: the database (migrations, the jobs' due
columns, the ``heartbeats`` table that workers and beat write) and one connection to the
broker, on which each queue's depth is read (Redis: LLEN; RabbitMQ: a passive declare; the
embedded SQLite transport: unknown). Nothing here broadcasts to workers: each worker's
main process writes its own row every ``WORKER_TICK_SECONDS`` (alive, tasks in flight, the
queues it consumes), so the console lists workers on any broker.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from kombu import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

import gigco
from gigco import clock
from gigco.broker import (
    QUEUES,
    RECOVERY_QUEUE,
    STEPS_QUEUE,
    SWEEPS_QUEUE,
    WEBHOOK_QUEUE,
    transport_options,
)
from gigco.config import Settings
from gigco.migrate import alembic_config
from gigco.models import DeliveryStatus, Heartbeat, Job, WebhookDelivery

log = logging.getLogger(__name__)

OK, DOWN, UNKNOWN = "ok", "down", "unknown"
PARTS = ("database", "migrations", "broker", "workers", "beat")
READY_PARTS = ("database", "migrations", "broker")  # what this API process needs to serve
BEAT_INTERVALS = 3  # beat is down after this many sweep intervals without a sweep
HEARTBEAT_EVERY_SECONDS = 1.0  # a process writes its heartbeat at most this often
WORKER_TICK_SECONDS = 2.0  # a worker's main process says it is alive this often
WORKER_ALIVE_SECONDS = 5 * WORKER_TICK_SECONDS  # ...and is alive while it said so within this
WORKERS_LISTED_SECONDS = 24 * 3600  # a worker silent for longer is gone, no longer listed


# Facts an anonymous /healthz does not show: the workers' host names and queues, and the id
# of a job (its existence is not revealed to those who may not see it). The operator reads
# them on /ops/system and with `gigco health`.
OPERATOR_ONLY = frozenset({"nodes", "oldest_waiting_job"})


@dataclass(frozen=True)
class Part:
    """One part's verdict: ``ok``, ``down`` (with a reason) or ``unknown`` (not checkable)."""

    status: str
    reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, *, public: bool = False) -> dict[str, Any]:
        """The part as JSON: status, reason when not ok, then its facts (``public``: without
        the operator-only ones)."""
        body: dict[str, Any] = {"status": self.status}
        if self.reason:
            body["reason"] = self.reason
        facts = {k: v for k, v in self.facts.items() if not (public and k in OPERATOR_ONLY)}
        return body | {k: _json(v) for k, v in facts.items()}


@dataclass(frozen=True)
class Health:
    """The verdict on each checked part, at ``checked_at``."""

    parts: dict[str, Part]
    checked_at: dt.datetime

    @property
    def down(self) -> list[str]:
        """The names of the parts that are down."""
        return [name for name, part in self.parts.items() if part.status == DOWN]

    @property
    def ok(self) -> bool:
        """True when no checked part is down."""
        return not self.down

    def summary(self) -> str:
        """One line: ``ok``, or each down part with its reason."""
        if self.ok:
            return "ok"
        return "; ".join(f"{name}: {self.parts[name].reason}" for name in self.down)

    def as_dict(self, *, public: bool = False) -> dict[str, Any]:
        """``{"status": "ok"|"down", "down": [...], "checked_at": ..., <part>: {...}}``;
        ``public`` leaves out what only the operator may read (``OPERATOR_ONLY``), the
        release this process runs among them."""
        head: dict[str, Any] = {
            "status": OK if self.ok else DOWN,
            "down": self.down,
            "checked_at": self.checked_at.isoformat(),
        }
        if not public:
            head["version"] = gigco.__version__
        return head | {name: part.as_dict(public=public) for name, part in self.parts.items()}


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value.isoformat() if isinstance(value, dt.datetime) else value


# --- the facts ---------------------------------------------------------------------------


def check(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    parts: Iterable[str] = PARTS,
    now: dt.datetime | None = None,
) -> Health:
    """Check ``parts`` (all by default) with ``sessions`` on the database."""
    wanted = tuple(parts)
    now = now or clock.now()
    found: dict[str, Part] = {}
    with sessions() as session:
        found["database"] = _database(session)
        if found["database"].status == OK:
            found["migrations"] = _migrations(session)
        else:
            found["migrations"] = Part(UNKNOWN, "the database is unreachable")
        if "broker" in wanted:
            found["broker"] = broker(settings)
        depths = found["broker"].facts.get("queues") if "broker" in found else None
        readable = found["migrations"].status == OK
        if "workers" in wanted:
            found["workers"] = (
                workers(session, settings, now=now, depths=depths)
                if readable
                else Part(UNKNOWN, "the database cannot be read")
            )
        if "beat" in wanted:
            found["beat"] = (
                beat(session, settings, now=now)
                if readable
                else Part(UNKNOWN, "the database cannot be read")
            )
    return Health({name: found[name] for name in PARTS if name in wanted}, now)


def _database(session: Session) -> Part:
    try:
        session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        session.rollback()
        return Part(DOWN, f"unreachable: {_first_line(error)}")
    return Part(OK)


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def _migrations(session: Session) -> Part:
    script = _script()
    head = list(script.get_heads())
    try:
        current = list(MigrationContext.configure(session.connection()).get_current_heads())
    except sa.exc.SQLAlchemyError as error:
        session.rollback()
        return Part(DOWN, f"cannot read the revision: {_first_line(error)}")
    pending: list[str] = []
    for revision in script.walk_revisions():  # from the head down
        if revision.revision in current:
            break
        pending.append(revision.revision)
    pending.reverse()
    facts = {"current": current, "head": head, "pending": pending}
    if set(current) == set(head):
        return Part(OK, facts=facts)
    known = {revision.revision for revision in script.walk_revisions()}
    if current and not set(current) <= known:
        # The next release migrated the database: its migrations only expand
        # (docs/deploy.md), so this release still runs on it while the rollout replaces it.
        return Part(OK, facts={"current": current, "head": head, "pending": [], "ahead": True})
    return Part(
        DOWN,
        f"not migrated to head: {len(pending)} pending ({', '.join(pending)}); "
        "run `gigco db upgrade`",
        facts,
    )


def broker(settings: Settings) -> Part:
    """One connection to the broker, bounded by ``broker_timeout_seconds``, and the depth of
    each queue on it (None where the transport cannot tell)."""
    timeout = settings.broker_timeout_seconds
    transport = settings.broker_url.split(":", 1)[0]
    started = time.monotonic()
    try:
        with Connection(
            settings.broker_url,
            connect_timeout=timeout,
            transport_options=transport_options(settings),
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            depths = {name: _depth(conn, name) for name in QUEUES}
    except Exception as error:  # any failure to reach it is the verdict
        took = time.monotonic() - started
        return Part(
            DOWN,
            f"unreachable after {took:.1f}s: {_first_line(error) or type(error).__name__}",
            {"transport": transport},
        )
    return Part(OK, facts={"transport": transport, "queues": depths})


def _depth(conn: Connection, queue: str) -> int | None:
    """Messages ready in ``queue``: LLEN on Redis (summed over kombu's priority lists), a
    passive declare's message count on RabbitMQ, None elsewhere (the embedded SQLite
    transport) or when the broker cannot say."""
    kind = conn.transport.driver_type
    try:
        if kind == "redis":
            return int(conn.default_channel._size(queue))  # LLEN of each priority list
        if kind == "amqp":
            with conn.channel() as channel:  # a NOT_FOUND closes the channel it ran on
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:  # a queue nobody declared yet, or a broker that cannot say
        log.debug("no depth for queue %s", queue, exc_info=True)
    return None


# The kinds of work a worker may consume, by queue: a worker is judged by its own only.
LIFECYCLE_QUEUES = frozenset({STEPS_QUEUE, SWEEPS_QUEUE, RECOVERY_QUEUE})
WEBHOOK_QUEUES = frozenset({WEBHOOK_QUEUE})


def oldest_waiting(
    session: Session, *, now: dt.datetime, queues: Iterable[str] = QUEUES
) -> dt.datetime | None:
    """Since when the oldest work *sent* to ``queues`` has waited: on the lifecycle's queues a
    step due now or a deadline a sweep armed that has passed; on the webhooks queue a pending
    message due now. A deadline no sweep has armed waits on beat, not on a worker: not counted;
    nor does a test clock's job, which waits for its clock.
    """
    real = Job.test_clock_id.is_(None)
    wanted = set(queues)
    due: list[dt.datetime | None] = []
    if wanted & LIFECYCLE_QUEUES:
        due.append(
            session.scalar(
                sa.select(sa.func.min(Job.step_due_at)).where(Job.step_due_at <= now, real)
            )
        )
        due.append(
            session.scalar(
                sa.select(sa.func.min(Job.timer_at)).where(
                    Job.timer_at <= now, Job.timer_armed_at.is_not(None), real
                )
            )
        )
    if wanted & WEBHOOK_QUEUES:
        at = WebhookDelivery.next_attempt_at
        due.append(
            session.scalar(
                sa.select(sa.func.min(at)).where(
                    at <= now, WebhookDelivery.status == DeliveryStatus.PENDING
                )
            )
        )
    found = [_aware(d) for d in due if d is not None]
    return min(d for d in found if d is not None) if found else None


def oldest_waiting_job(session: Session, *, since: dt.datetime) -> int | None:
    """The job whose step or deadline has waited since ``since``."""
    return session.scalar(
        sa.select(Job.id)
        .where(sa.or_(Job.step_due_at == since, Job.timer_at == since), Job.test_clock_id.is_(None))
        .order_by(Job.id)
        .limit(1)
    )


def _heartbeats(session: Session, kind: str, name: str | None = None) -> tuple[Any, Any]:
    stmt = sa.select(sa.func.max(Heartbeat.beat_at), sa.func.max(Heartbeat.started_at)).where(
        Heartbeat.kind == kind
    )
    if name is not None:
        stmt = stmt.where(Heartbeat.name == name)
    last, started = session.execute(stmt).one()
    return _aware(last), _aware(started)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # max() over a column returns what the driver gives, without the column's type.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def nodes(session: Session, *, now: dt.datetime) -> list[dict[str, Any]]:
    """Each worker heard from within ``WORKERS_LISTED_SECONDS``: alive (its main process
    said so within ``WORKER_ALIVE_SECONDS``), when it started and last finished a task,
    its tasks in flight and the queues it consumes; the most recently heard first."""
    rows = session.scalars(sa.select(Heartbeat).where(Heartbeat.kind == "worker"))
    found = []
    for row in rows:
        seen, last, started = (_aware(v) for v in (row.seen_at, row.beat_at, row.started_at))
        heard = max((at for at in (seen, last, started) if at is not None), default=None)
        if heard is None or (now - heard).total_seconds() > WORKERS_LISTED_SECONDS:
            continue
        found.append(
            {
                "name": row.name.removeprefix("worker:"),
                "alive": seen is not None and (now - seen).total_seconds() <= WORKER_ALIVE_SECONDS,
                "seen_at": seen,
                "started_at": started,
                "last_task_finished_at": last,
                "in_flight": row.in_flight,
                "queues": row.queues.split(",") if row.queues else None,
                "version": row.version,
                "_heard": heard,
            }
        )
    found.sort(key=lambda node: (node.pop("_heard"), node["name"]), reverse=True)
    return found


def _unconsumed(depths: dict[str, int | None], listed: list[dict[str, Any]]) -> list[str]:
    """The queues holding messages that no live worker consumes."""
    live = [node for node in listed if node["alive"]]
    return [
        queue
        for queue, depth in depths.items()
        if depth and not any(node["queues"] is None or queue in node["queues"] for node in live)
    ]


def _consumed(queues: str | None) -> frozenset[str]:
    """The queues a heartbeat row says its worker consumes (all, when it has not said)."""
    return frozenset(queues.split(",")) if queues else frozenset(QUEUES)


def _stall(
    session: Session,
    rows: list[Heartbeat],
    queues: list[str],
    *,
    now: dt.datetime,
    bound: float,
    depths: dict[str, int | None],
    name: str | None,
) -> tuple[dt.datetime | None, str | None]:
    """Since when work sent to ``queues`` has waited, and why it stalls (None when it does
    not: nothing waited past ``bound``, no message waits, or a worker of ``rows`` consuming
    ``queues`` finished a task or started within the bound)."""
    oldest = oldest_waiting(session, now=now, queues=queues)
    waited = (now - oldest).total_seconds() if oldest else 0.0
    waiting = {q: depths[q] for q in queues if depths.get(q)}
    if waited <= bound or not waiting:
        return oldest, None
    consumers = [row for row in rows if set(queues) & _consumed(row.queues)]
    finished = [_aware(row.beat_at) for row in consumers]
    started = [_aware(row.started_at) for row in consumers]
    if any(at is not None and (now - at).total_seconds() <= bound for at in finished + started):
        return oldest, None
    last = max((at for at in finished if at is not None), default=None)
    who = name or f"no worker consuming {', '.join(queues)}"
    since = f"since {last.isoformat()}" if last else "ever"
    held = ", ".join(f"{q} ({n})" for q, n in waiting.items())
    return oldest, (
        f"work has waited {waited:.0f}s (bound {bound:g}s) with messages in {held} "
        f"and {who} finished a task {since}"
    )


def workers(
    session: Session,
    settings: Settings,
    *,
    now: dt.datetime,
    name: str | None = None,
    depths: dict[str, int | None] | None = None,
) -> Part:
    """Down when a kind of work stalls: work sent to its queues has waited past the bound,
    messages wait in those queues (``depths``, from the broker), and no worker consuming
    them (or ``name`` alone) finished a task within the bound nor started within it; or
    when a queue holds messages and no live worker consumes it.

    Each worker is judged only by the queues it consumes (its heartbeat row says which), so
    a stalled lifecycle never fails a webhooks-only worker nor the reverse; a deadline that
    waits because beat is silent is beat's failure, never a worker's. Where the broker
    cannot tell a depth (None), no worker is called down on that queue.
    """
    bound = settings.health_stall_seconds
    stmt = sa.select(Heartbeat).where(Heartbeat.kind == "worker")
    if name is not None:
        stmt = stmt.where(Heartbeat.name == _worker_row(name))
    rows = list(session.scalars(stmt))
    if name is not None and not rows:  # never heard of: judged on every queue
        rows = [Heartbeat(name=_worker_row(name), kind="worker")]
    consumed = frozenset(QUEUES)
    if rows:
        consumed = frozenset(q for row in rows for q in _consumed(row.queues))
    depths = depths or {}
    stalls: list[str] = []
    since: list[dt.datetime] = []
    for lane in (LIFECYCLE_QUEUES, WEBHOOK_QUEUES):
        if queues := sorted(lane & consumed):
            oldest, stall = _stall(
                session, rows, queues, now=now, bound=bound, depths=depths, name=name
            )
            since += [oldest] if oldest else []
            stalls += [stall] if stall else []
    oldest = min(since, default=None)
    finished = [at for at in (_aware(row.beat_at) for row in rows) if at is not None]
    last = max(finished, default=None)
    facts: dict[str, Any] = {
        "last_task_finished_at": last,
        "oldest_waiting_since": oldest,
        "oldest_waiting_job": oldest_waiting_job(session, since=oldest) if oldest else None,
        "waiting_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0,
        "bound_seconds": bound,
    }
    if name is not None:
        facts = {"worker": name, "queues": sorted(consumed)} | facts
    else:
        facts["nodes"] = nodes(session, now=now)
    if stalls:
        return Part(DOWN, "; ".join(stalls), facts)
    if name is not None:  # a queue no one consumes is not this worker's to fix
        return Part(OK, facts=facts)
    unconsumed = _unconsumed(depths, facts["nodes"])
    if unconsumed:
        waiting = ", ".join(f"{q} ({depths[q]})" for q in unconsumed)
        return Part(DOWN, f"messages wait in {waiting} and no live worker consumes it", facts)
    return Part(OK, facts=facts)


def beat(session: Session, settings: Settings, *, now: dt.datetime) -> Part:
    """Down when no beat sent a sweep within three sweep intervals (a beat that started
    within them counts as sweeping)."""
    bound = BEAT_INTERVALS * settings.sweep_interval_seconds
    last, started = _heartbeats(session, "beat")
    lag = round((now - last).total_seconds(), 1) if last else None
    facts = {
        "last_sweep_at": last,
        "lag_seconds": lag,
        "started_at": started,
        "interval_seconds": settings.sweep_interval_seconds,
        "bound_seconds": bound,
    }
    for at in (last, started):
        if at is not None and (now - at).total_seconds() <= bound:
            return Part(OK, facts=facts)
    if last is None and started is None:
        return Part(DOWN, "no beat has ever run against this database", facts)
    since = last or started
    assert since is not None
    ago = (now - since).total_seconds()
    return Part(DOWN, f"no sweep for {ago:.0f}s (bound {bound:g}s)", facts)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else ""


# --- heartbeats --------------------------------------------------------------------------

_last_written: dict[str, float] = {}


def _worker_row(nodename: str) -> str:
    return f"worker:{nodename}"


def beat_row(hostname: str) -> str:
    """The heartbeat row of a beat on ``hostname``."""
    return f"beat:{hostname}"


def record(
    sessions: sessionmaker[Session],
    *,
    kind: str,
    name: str,
    started: bool = False,
    now: dt.datetime | None = None,
) -> bool:
    """Write a heartbeat (``started``: the process just started); a worker's at most once a
    second per process. Failures are logged, never raised: a heartbeat must not fail a task."""
    row = _worker_row(name) if kind == "worker" else name
    ticked = time.monotonic()
    # Workers finish many tasks a second; beat sends one sweep an interval (never skipped).
    throttled = kind == "worker" and not started
    if throttled and ticked - _last_written.get(row, float("-inf")) < HEARTBEAT_EVERY_SECONDS:
        return False
    _last_written[row] = ticked
    now = now or clock.now()
    values: dict[str, Any] = {"started_at": now} if started else {"beat_at": now}
    values["version"] = gigco.__version__
    try:
        with sessions() as session, session.begin():
            _upsert(session, row, kind, values)
    except Exception:
        log.warning("could not write the %s heartbeat", row, exc_info=True)
        return False
    return True


def _upsert(session: Session, row: str, kind: str, values: dict[str, Any]) -> None:
    """Write ``values`` into heartbeat ``row``, making it if it is new (one statement)."""
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(Heartbeat).values(name=row, kind=kind, **values)
        session.execute(pg.on_conflict_do_update(index_elements=["name"], set_=values))
    else:
        lite = sqlite.insert(Heartbeat).values(name=row, kind=kind, **values)
        session.execute(lite.on_conflict_do_update(index_elements=["name"], set_=values))


def tick(
    sessions: sessionmaker[Session],
    *,
    name: str,
    in_flight: int,
    queues: Iterable[str],
    now: dt.datetime | None = None,
) -> bool:
    """A worker's main process says it is alive, with its tasks in flight and its queues.
    Failures are logged, never raised."""
    values: dict[str, Any] = {
        "seen_at": now or clock.now(),
        "in_flight": in_flight,
        "queues": ",".join(sorted(queues))[:255] or None,
        "version": gigco.__version__,
    }
    try:
        with sessions() as session, session.begin():
            _upsert(session, _worker_row(name), "worker", values)
    except Exception:
        log.warning("could not write worker %s's tick", name, exc_info=True)
        return False
    return True


def worker_probe(
    settings: Settings, sessions: sessionmaker[Session], nodename: str, *, now: dt.datetime
) -> Health:
    """The liveness of worker ``nodename`` (an orchestrator restarts it when down).

    Only a stall on the queues this worker consumes fails it (``workers``); an unreachable
    database or broker is reported as unknown, and a silent beat is not looked at: restarting
    the worker would bring none of them back.
    """
    with sessions() as session:
        database = _database(session)
        if database.status != OK:
            return Health({"workers": Part(UNKNOWN, database.reason)}, now)
        queues = broker(settings)
        if queues.status != OK:
            return Health({"workers": Part(UNKNOWN, queues.reason)}, now)
        try:
            part = workers(
                session, settings, now=now, name=nodename, depths=queues.facts.get("queues")
            )
        except sa.exc.SQLAlchemyError as error:
            part = Part(UNKNOWN, _first_line(error))
    return Health({"workers": part}, now)

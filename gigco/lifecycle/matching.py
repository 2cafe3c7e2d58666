"""Matching: which workers may take a job, in what order they are asked, and the step
that asks them one at a time through opportunities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.lifecycle.context import StepContext
from gigco.lifecycle.history import record_event
from gigco.lifecycle.locks import lock_job
from gigco.lifecycle.notify import notify_consumer, notify_worker
from gigco.lifecycle.principals import SYSTEM
from gigco.lifecycle.schedule import Next
from gigco.lifecycle.transitions import AT_NOW, Due, set_next, transition
from gigco.models import (
    Job,
    JobStatus,
    Opportunity,
    OpportunityStatus,
    Worker,
    WorkerStrike,
    worker_skills,
)

S = JobStatus
EARTH_RADIUS_KM = 6371.0088
# The farthest a worker may serve. A gig worker travels to each job and back at their own
# cost: 100 km is about an hour's drive each way, already more than a job of 0.5-12 hours
# is worth, and it covers any metropolitan area. Sign-up and profile changes refuse more
# (422); a radius stored before this cap counts as the cap (``_reach_km``). Matching's
# index (migration 0011) is built on it: changing it means a migration.
MAX_SERVICE_RADIUS_KM = 100.0
BUSY = (JobStatus.WORKER_ASSIGNED, JobStatus.SCHEDULED, JobStatus.IN_PROGRESS)


# A latitude or longitude in degrees: a column, a bind parameter or a number.
Degrees = sa.ColumnElement[float] | sa.orm.InstrumentedAttribute[float] | float


def great_circle_km(
    lat1: Degrees, lng1: Degrees, lat2: Degrees, lng2: Degrees
) -> sa.ColumnElement[float]:
    """Haversine distance between two points in kilometres, in SQL: the one formula, on
    PostgreSQL and on SQLite (whose math functions ``gigco.db`` makes sure of)."""
    f = sa.func
    p1, p2 = f.radians(lat1), f.radians(lat2)
    h = f.power(f.sin((p2 - p1) / 2), 2) + f.cos(p1) * f.cos(p2) * f.power(
        f.sin(f.radians(sa.type_coerce(lng2, sa.Double()) - lng1) / 2), 2
    )
    # Rounding may push the haversine term past 1 at the antipode: clamped.
    return 2 * EARTH_RADIUS_KM * f.asin(f.least(1.0, f.sqrt(h)))


@dataclass(frozen=True)
class Candidate:
    """A worker who may be offered the job, with what ranks them."""

    worker_id: int
    rating: float | None
    distance_km: float


# The statements below are built once (``db.built_once``: building them cost more than
# running them) with the job as bind parameters, ``job_params``.
_JOB_ID: sa.BindParameter[int] = sa.bindparam("job_id", type_=sa.BigInteger())
_JOB_LAT: sa.BindParameter[float] = sa.bindparam("job_lat", type_=sa.Double())
_JOB_LNG: sa.BindParameter[float] = sa.bindparam("job_lng", type_=sa.Double())


def job_params(job: Job) -> dict[str, object]:
    """The bind parameters that stand for ``job`` in matching's statements."""
    return {
        "job_id": job.id,
        "category_id": job.category_id,
        "job_start": job.scheduled_start,
        "job_end": job.scheduled_end,
        "job_lat": job.lat,
        "job_lng": job.lng,
    }


def _overlapping_busy_jobs(worker_id: sa.ColumnElement[int]) -> sa.Select[int]:
    """The ids of the worker's other busy jobs whose time window overlaps the job's."""
    other = sa.orm.aliased(Job)
    return sa.select(other.id).where(
        other.worker_id == worker_id,
        other.id != _JOB_ID,
        other.status.in_(BUSY),
        other.scheduled_start < sa.bindparam("job_end", type_=Job.scheduled_end.type),
        other.scheduled_end > sa.bindparam("job_start", type_=Job.scheduled_start.type),
    )


@built_once
def _busy_clash_statement() -> sa.Select[int]:
    return _overlapping_busy_jobs(sa.bindparam("worker_id", type_=sa.BigInteger())).limit(1)


def busy_clash(session: Session, job: Job, worker_id: int) -> int | None:
    """A busy job of ``worker_id``'s (not ``job``) whose time window overlaps ``job``'s."""
    return session.scalar(_busy_clash_statement(), {**job_params(job), "worker_id": worker_id})


def _eligible() -> list[sa.ColumnElement[bool]]:
    """Skill, availability, no overlapping busy job, not yet offered this job."""
    return [
        sa.exists().where(
            worker_skills.c.worker_id == Worker.id,
            worker_skills.c.category_id == sa.bindparam("category_id", type_=sa.BigInteger()),
        ),
        Worker.available.is_(True),
        ~_overlapping_busy_jobs(Worker.__table__.c.id).exists(),
        ~sa.exists().where(Opportunity.job_id == _JOB_ID, Opportunity.worker_id == Worker.id),
    ]


def _rating() -> sa.ColumnElement[float]:
    """A worker's mean rating, or NULL when unrated: the expression ``ix_workers_earth_rating``
    indexes (migration 0009), written so that the planner matches it."""
    return sa.case(
        (
            Worker.rating_count > sa.literal_column("0"),
            sa.cast(Worker.rating_sum, sa.Double) / sa.cast(Worker.rating_count, sa.Double),
        ),
        else_=None,
    )


# Ratings are means of 1-5 stars, so "closest to 5 first" is "best first", and GiST (with
# btree_gist) reads an index in order of a distance like that (a KNN scan).
BEST_RATING = 5.0


def _haversine_km() -> sa.ColumnElement[float]:
    """``great_circle_km`` from the job to the worker."""
    return great_circle_km(_JOB_LAT, _JOB_LNG, Worker.lat, Worker.lng)


def candidates(
    session: Session,
    job: Job,
    *,
    limit: int | None = None,
    reliability: bool = False,
    strikes_since: dt.datetime | None = None,
) -> list[Candidate]:
    """The workers who may be offered ``job`` now, best first (at most ``limit``).

    With ``reliability`` (a policy value), among workers of the same rating those with
    fewer strikes (withdrawals plus no-shows) come first, then the nearer: those since
    ``strikes_since`` (``recent_strikes``: the policy's strike window), or, under a policy
    without a window, all of them (``all_strikes``).

    Both dialects filter, rank and limit in SQL, with one ranking statement
    (``_ranked_statement``): the exact haversine (``great_circle_km``) checks each worker's
    own reach (``_reach_km``), and rating (unrated last), distance and id rank. On
    PostgreSQL the GiST index ``ix_workers_reach_rating`` on each worker's own box (their
    reach around them, ``_reach_box``) and the rating first narrows the workers to those
    whose box holds the job: what a search reads follows the workers who may serve there,
    never the widest radius anywhere. The next candidate (``limit=1``, matching) reads
    only the best-rated eligible workers (``_next_candidate_statement``). SQLite (the
    embedded development default) has no earthdistance: it ranks every eligible worker,
    and ``LIMIT -1`` is its "no limit".
    """
    params = job_params(job)
    recent = reliability and strikes_since is not None
    if recent:
        params["strikes_since"] = strikes_since
    if session.get_bind().dialect.name != "postgresql":
        params["limit"] = -1 if limit is None else limit
        # positional: built_once keys on them
        stmt: sa.Executable = _ranked_statement(False, reliability, recent)
    elif limit == 1:
        stmt = _next_candidate_statement(reliability, recent)
    else:
        stmt, params["limit"] = _ranked_statement(True, reliability, recent), limit
    return [Candidate(row[0], row[1], row[2]) for row in session.execute(stmt, params).all()]


def _reach_km() -> sa.ColumnElement[float]:
    """How far a worker serves: their radius, at most ``MAX_SERVICE_RADIUS_KM`` (a radius
    stored before the cap counts as the cap)."""
    return sa.func.least(Worker.service_radius_km, sa.literal_column(f"{MAX_SERVICE_RADIUS_KM!r}"))


def _reach_box() -> sa.ColumnElement[Any]:
    """The box around a worker that holds every point within their reach: the expression
    ``ix_workers_reach_rating`` indexes (migration 0011), written so that the planner
    matches it. earthdistance's sphere (earth() = 6378168 m) is a little larger than ours:
    the box is widened by 1 % (metres x 1010) so that it always holds the reach on ours."""
    return sa.func.earth_box(
        sa.func.ll_to_earth(Worker.lat, Worker.lng), _reach_km() * sa.literal_column("1010.0")
    )


def _nearby(distance: sa.ColumnElement[float], *, in_box: bool) -> list[sa.ColumnElement[bool]]:
    """Within the worker's own reach and eligible; with ``in_box`` (PostgreSQL), first
    the index's condition: the worker's box holds the job."""
    near = [distance <= _reach_km(), *_eligible()]
    if not in_box:
        return near
    job = sa.func.ll_to_earth(_JOB_LAT, _JOB_LNG)
    return [_reach_box().op("@>")(job), *near]


def all_strikes() -> sa.ColumnElement[int]:
    """A worker's strikes of all time: the jobs they withdrew from plus those they did not
    come to (the counts operators see)."""
    return Worker.withdrawals + Worker.no_shows


def recent_strikes() -> sa.ColumnElement[int]:
    """A worker's strikes since bind parameter ``strikes_since``: a count over
    ``ix_worker_strikes_worker_id_at`` reading only that worker's recent strikes."""
    since = sa.bindparam("strikes_since", type_=WorkerStrike.__table__.c.at.type)
    return (
        sa.select(sa.func.count())
        .where(WorkerStrike.worker_id == Worker.id, WorkerStrike.at > since)
        .correlate(Worker)
        .scalar_subquery()
    )


def strikes(recent: bool) -> sa.ColumnElement[int]:
    """The strikes that rank a worker: the recent ones, or (a policy without a window) all."""
    return recent_strikes() if recent else all_strikes()


@built_once
def _ranked_statement(
    in_box: bool, reliability: bool, recent: bool
) -> sa.Select[int, float, float]:
    """Every candidate, ranked (rating, unrated last, [strikes,] distance, id); ``limit`` a
    parameter."""
    distance = _haversine_km().label("distance_km")
    rating = _rating().label("rating")
    order: list[sa.ColumnElement[Any]] = [rating.desc().nulls_last()]
    order += [strikes(recent)] if reliability else []
    order.append(distance)
    return (
        sa.select(Worker.id, rating, distance)
        .where(*_nearby(distance, in_box=in_box))
        .order_by(*order, Worker.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@built_once
def _next_candidate_statement(
    reliability: bool, recent: bool
) -> sa.CompoundSelect[int, float, float, int]:
    """The first candidate in ``candidates``' order, reading only the best-rated group.

    One statement: ``best`` walks ``ix_workers_earth_rating`` best rating first (KNN) and
    stops at the first eligible worker; then only the workers of exactly that rating (an
    index condition) are ranked by distance and id — or, when the best is unrated, the
    unrated ones. Ranking the whole box instead costs as many rows as there are workers
    nearby (docs/benchmarks.md, "Marketplace scale").
    """
    distance = _haversine_km().label("distance_km")
    where = _nearby(distance, in_box=True)
    rating = _rating()
    nearest_best = rating.op("<->")(sa.literal(BEST_RATING, sa.Double))
    best = sa.select(rating.label("rating")).where(*where).order_by(nearest_best).limit(1)
    best_rating = best.cte("best").select().scalar_subquery()
    # With ``reliability`` the best group is ranked by strikes first, then distance: its
    # workers' strikes are counted, no one else's.
    struck = strikes(recent) if reliability else sa.literal_column("0")
    columns = (Worker.id, rating.label("rating"), distance, struck.label("strikes"))
    rated = sa.select(*columns).where(*where, rating == best_rating)
    unrated = sa.select(*columns).where(*where, rating.is_(None), best_rating.is_(None))
    return sa.union_all(rated, unrated).order_by(sa.text("strikes, distance_km, id")).limit(1)


# --- opportunities: each a compare-and-set from pending -----------------------------------


def _from_pending(*where: sa.ColumnElement[bool]) -> sa.Update:
    """The pending opportunities matching ``where`` to bind parameter ``status``, answered at
    ``now``; returning the workers they were offered to."""
    return (
        sa.update(Opportunity)
        .where(Opportunity.status == OpportunityStatus.PENDING, *where)
        .values(status=sa.bindparam("status", type_=Opportunity.status.type), responded_at=AT_NOW)
        .returning(Opportunity.worker_id)
        .execution_options(synchronize_session=False)
    )


@built_once
def _answer_statement(unexpired: bool) -> sa.Update:
    """``answer_opportunity``'s compare-and-set from pending, built once."""
    guards = [Opportunity.expires_at > AT_NOW] if unexpired else []
    return _from_pending(Opportunity.id == sa.bindparam("opportunity_id"), *guards)


@built_once
def _answer_all_statement() -> sa.Update:
    """``answer_all_pending``'s compare-and-set from pending, built once."""
    return _from_pending(Opportunity.job_id == sa.bindparam("of_job"))


def answer_opportunity(
    session: Session,
    opportunity_id: int,
    status: OpportunityStatus,
    now: dt.datetime,
    *,
    unexpired: bool = False,
) -> bool:
    """Move one pending opportunity to ``status`` (with ``unexpired``, only before it
    expires); False when another answer came first."""
    params = {"opportunity_id": opportunity_id, "status": status, "now": now}
    return session.execute(_answer_statement(unexpired), params).first() is not None


def answer_all_pending(
    session: Session, job_id: int, status: OpportunityStatus, now: dt.datetime
) -> list[int]:
    """Move every pending opportunity of ``job_id`` to ``status``; the workers they were
    offered to (none when every one was answered already)."""
    params = {"of_job": job_id, "status": status, "now": now}
    return list(session.scalars(_answer_all_statement(), params))


def close_opportunity(
    session: Session, opp: Opportunity, status: OpportunityStatus, *, actor: str, now: dt.datetime
) -> bool:
    """Close pending ``opp`` as ``status`` and record it in the job's history; False if it
    was no longer pending."""
    if not answer_opportunity(session, opp.id, status, now):
        return False
    record_event(
        session,
        opp.job_id,
        f"opportunity_{status.value}",
        actor=actor,
        now=now,
        data={"worker_id": opp.worker_id, "round": opp.round},
    )
    return True


# --- the step ---------------------------------------------------------------------------


def match_job(session: Session, job_id: int, ctx: StepContext) -> list[Due]:
    """Matching: expire a lapsed opportunity, start a round, offer the next worker."""
    job = lock_job(session, job_id)
    if job is None or job.status != S.ACCEPTED:
        return []
    pending = session.scalar(
        sa.select(Opportunity).where(
            Opportunity.job_id == job_id, Opportunity.status == OpportunityStatus.PENDING
        )
    )
    # A deadline with no opportunity pending is the next round's (``_offer_next``).
    between_rounds = pending is None and job.timer_at is not None
    if pending is not None:
        if pending.expires_at > ctx.now:  # nothing to do until the opportunity expires
            return set_next(job, Next.at(pending.expires_at), ctx.now)
        close_opportunity(session, pending, OpportunityStatus.EXPIRED, actor=SYSTEM, now=ctx.now)
        notify_worker(
            session,
            pending.worker_id,
            "expiry",
            f"Your opportunity on '{job.title}' expired.",
            job_id=job_id,
        )
    if between_rounds and job.timer_at is not None and job.timer_at > ctx.now:
        return set_next(job, Next.at(job.timer_at), ctx.now)  # the round is not due yet
    started = job.match_round == 0 or between_rounds
    if started:
        job.match_round += 1
    return _offer_next(session, job, ctx, started=started)


def _offer_next(session: Session, job: Job, ctx: StepContext, *, started: bool) -> list[Due]:
    # The job's row lock is held meanwhile: the query is one GiST probe plus a LIMIT 1, so
    # it stays cheap at any number of workers (docs/scaling.md). Not flushed first: the job's
    # new round is written once, with the deadline below.
    with session.no_autoflush:
        policy = ctx.policy(session, job.id)
        window = policy.strike_window_seconds
        ranked = candidates(
            session,
            job,
            limit=1,
            reliability=policy.reliability_rank,
            strikes_since=None if window is None else ctx.now - dt.timedelta(seconds=window),
        )

    def round_started() -> None:
        if started:
            record_event(
                session,
                job.id,
                "matching_round_started",
                actor=SYSTEM,
                now=ctx.now,
                data={"round": job.match_round},
            )

    if ranked:
        best = ranked[0]
        expires = ctx.after(policy.opportunity_ttl_seconds)
        dues = set_next(job, Next.at(expires), ctx.now)
        # Flushes the job's round and deadline at once; the round starts before the worker
        # holds the opportunity, so its event is not theirs (webhooks decide at the event).
        round_started()
        session.add(
            Opportunity(
                job_id=job.id,
                worker_id=best.worker_id,
                round=job.match_round,
                distance_km=best.distance_km,
                offered_at=ctx.now,
                expires_at=expires,
            )
        )
        record_event(
            session,
            job.id,
            "opportunity_offered",
            actor=SYSTEM,
            now=ctx.now,
            data={
                "worker_id": best.worker_id,
                "round": job.match_round,
                "expires_at": expires.isoformat(),
                "distance_km": round(best.distance_km, 3),
            },
        )
        notify_worker(
            session,
            best.worker_id,
            "opportunity",
            f"New job '{job.title}' near you; answer before {expires.isoformat()}.",
            job_id=job.id,
            expires_at=expires.isoformat(),
        )
        return dues
    round_started()
    if job.match_round >= policy.match_max_rounds:
        session.flush()
        moved = transition(
            session,
            job.id,
            S.ACCEPTED,
            S.NO_WORKER,
            actor=SYSTEM,
            then=Next.nothing(),
            now=ctx.now,
            data={"rounds": job.match_round},
        )
        if moved:
            notify_consumer(
                session,
                job.consumer_id,
                "no_worker",
                f"No worker was found for '{job.title}'.",
                job_id=job.id,
            )
        return []
    next_at = ctx.after(job.match_round * policy.match_retry_base_seconds)
    dues = set_next(job, Next.at(next_at), ctx.now)
    record_event(
        session,
        job.id,
        "matching_round_ended",
        actor=SYSTEM,
        now=ctx.now,
        data={"round": job.match_round, "next_round_at": next_at.isoformat()},
    )
    return dues


def record_strike(
    session: Session, *, worker_id: int, job_id: int, kind: str, now: dt.datetime
) -> None:
    """A strike against the worker (``withdrawal`` or ``no_show``) at ``now``: counted all
    time on their row (the caller's update) and, for matching's recent count, as a row."""
    session.add(WorkerStrike(worker_id=worker_id, job_id=job_id, kind=kind, at=now))

"""Sign-up, bearer tokens and profiles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.db import built_once
from gigco.lifecycle.errors import Conflict, Forbidden, Invalid, NotFound
from gigco.lifecycle.matching import MAX_SERVICE_RADIUS_KM
from gigco.lifecycle.principals import Principal
from gigco.models import ApiToken, Category, Consumer, Role, Worker


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _issue_token(session: Session, **owner: int) -> str:
    token = "gc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=hash_token(token), **owner))
    return token


def rotate_token(session: Session, principal: Principal) -> str:
    """Revoke every token of ``principal``'s account and return its new one (shown once)."""
    if principal.id is None or principal.role == Role.OPERATOR:
        raise Forbidden("The operator's token is a setting (GIGCO_ADMIN_TOKEN), not rotated here.")
    consumer = principal.role == Role.CONSUMER
    model: type[Consumer] | type[Worker] = Consumer if consumer else Worker
    column = ApiToken.consumer_id if consumer else ApiToken.worker_id
    # The account's row lock orders concurrent rotations: the last one's token is the only one.
    session.execute(sa.select(model.id).where(model.id == principal.id).with_for_update())
    session.execute(sa.delete(ApiToken).where(column == principal.id))
    owner = "consumer_id" if consumer else "worker_id"
    return _issue_token(session, **{owner: principal.id})


def account_by_email(session: Session, email: str, role: Role | None = None) -> Principal:
    """The consumer or worker (``role`` when one email has both) signed up with ``email``."""
    found = [
        Principal(kind, account_id)
        for kind, model in ((Role.CONSUMER, Consumer), (Role.WORKER, Worker))
        if role in (None, kind)
        for account_id in session.scalars(
            sa.select(model.id).where(sa.func.lower(model.email) == email.lower())
        )
    ]
    if not found:
        raise NotFound(f"No {role.value if role else 'account'} has the email {email}.")
    if len(found) > 1:
        raise Conflict(f"Both a consumer and a worker have the email {email}: name the role.")
    return found[0]


@built_once
def _token_owner_statement() -> sa.Select[int | None, int | None]:
    """Whose token has this hash. Every request asks, first: built once, and on the table's
    columns, not the mapped class's, so it runs as a Core statement without the ORM's
    compile and load steps (a third of its CPU; nothing is pending to autoflush yet)."""
    tokens = ApiToken.__table__.c
    return sa.select(tokens.consumer_id, tokens.worker_id).where(
        tokens.token_hash == sa.bindparam("token_hash")
    )


def authenticate(session: Session, token: str, admin_token: str | None) -> Principal | None:
    """The principal a bearer token belongs to, or None."""
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(Role.OPERATOR)
    row = session.execute(_token_owner_statement(), {"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    if row.consumer_id is not None:
        return Principal(Role.CONSUMER, row.consumer_id)
    return Principal(Role.WORKER, row.worker_id)


def _email_taken(session: Session, model: type[Consumer] | type[Worker], email: str) -> None:
    if session.scalar(sa.select(model.id).where(sa.func.lower(model.email) == email.lower())):
        raise Conflict(
            "An account with this email already exists.", errors={"email": ["Already registered."]}
        )


@built_once
def _categories_statement() -> sa.Select[Category]:
    return sa.select(Category).where(Category.name.in_(sa.bindparam("names", expanding=True)))


def categories_named(
    session: Session, names: Sequence[str], field: str = "skills"
) -> list[Category]:
    """The categories for ``names``; Invalid naming each unknown one and the valid ones."""
    wanted = list(dict.fromkeys(names))
    found = {c.name: c for c in session.scalars(_categories_statement(), {"names": wanted})}
    unknown = [n for n in wanted if n not in found]
    if unknown:
        known = ", ".join(session.scalars(sa.select(Category.name).order_by(Category.name)))
        raise Invalid(
            f"Unknown category; the categories are: {known}.",
            errors={field: [f"Unknown category: {n}; choose one of: {known}." for n in unknown]},
        )
    return [found[n] for n in wanted]


def _check_radius(km: object) -> None:
    """Invalid unless ``km`` is a service radius matching accepts (0 to the cap)."""
    if not isinstance(km, int | float) or not 0 <= km <= MAX_SERVICE_RADIUS_KM:
        raise Invalid(
            "The service radius is out of range.",
            errors={
                "service_radius_km": [
                    f"Must be 0 to {MAX_SERVICE_RADIUS_KM:g} km: a worker travels to each job."
                ]
            },
        )


def sign_up_consumer(
    session: Session, *, name: str, email: str, payment_method: str
) -> tuple[Consumer, str]:
    """Create a consumer and return it with its token (shown once)."""
    _email_taken(session, Consumer, email)
    consumer = Consumer(name=name, email=email, payment_method=payment_method)
    session.add(consumer)
    session.flush()
    return consumer, _issue_token(session, consumer_id=consumer.id)


def sign_up_worker(
    session: Session,
    *,
    name: str,
    email: str,
    skills: Sequence[str],
    lat: float,
    lng: float,
    service_radius_km: float,
    available: bool,
) -> tuple[Worker, str]:
    """Create a worker and return it with its token (shown once)."""
    _check_radius(service_radius_km)
    _email_taken(session, Worker, email)
    worker = Worker(
        name=name,
        email=email,
        lat=lat,
        lng=lng,
        service_radius_km=service_radius_km,
        available=available,
        skills=categories_named(session, skills),
    )
    session.add(worker)
    session.flush()
    return worker, _issue_token(session, worker_id=worker.id)


def update_consumer(session: Session, consumer: Consumer, changes: dict[str, object]) -> Consumer:
    """Apply a consumer's own profile changes (name, payment method)."""
    for field in ("name", "payment_method"):
        if field in changes:
            setattr(consumer, field, changes[field])
    session.flush()
    return consumer


def update_worker(session: Session, worker: Worker, changes: dict[str, object]) -> Worker:
    """Apply a worker's own profile changes."""
    if "service_radius_km" in changes:
        _check_radius(changes["service_radius_km"])
    if "skills" in changes:
        worker.skills = categories_named(session, changes.pop("skills"))  # type: ignore[arg-type]
    location = changes.pop("location", None)
    if isinstance(location, dict):
        worker.lat, worker.lng = location["lat"], location["lng"]
    for field in ("available", "service_radius_km"):
        if field in changes:
            setattr(worker, field, changes[field])
    session.flush()
    return worker

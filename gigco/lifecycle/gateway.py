"""The payment gateway interface and the built-in simulated processor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import AttemptOutcome, SimulatedCharge

PAYMENT_METHODS = ("pm_card_visa", "pm_card_chargeDeclined", "pm_card_flaky")


@dataclass(frozen=True)
class ChargeResult:
    """What the gateway answered to one charge request."""

    outcome: AttemptOutcome
    charge_id: str | None = None
    detail: str | None = None


class PaymentGateway(Protocol):
    """Takes money. Charging the same idempotency key twice moves money at most once."""

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str
    ) -> ChargeResult:
        """Charge ``amount_cents`` to ``payment_method``."""
        ...


class SimulatedGateway:
    """A Stripe-like test processor with its own ledger, committed apart from the caller's work.

    ``pm_card_visa`` succeeds, ``pm_card_chargeDeclined`` always refuses, ``pm_card_flaky``
    refuses the first two tries of a key, then succeeds. A key that already succeeded returns
    its first charge again and moves no more money; a refused key may be tried again, as
    with a real processor after a decline.
    """

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str
    ) -> ChargeResult:
        """Charge in the processor's own transaction, so a caller's rollback cannot undo it.

        One upsert takes a try: a new key is inserted as its first try; a key not yet paid,
        with the same amount, counts one more try (approved or not by the payment method given
        now: the card may have changed since). Only a replay or another amount reads the row.
        """
        new_charge = f"ch_{uuid.uuid4().hex[:24]}"
        with self._sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            row = session.execute(
                _take_a_try(dialect),
                {
                    "key": idempotency_key,
                    "method": payment_method,
                    "amount": amount_cents,
                    "charge": new_charge,
                },
            ).first()
            if row is not None:
                if row.charge_id is not None:
                    return ChargeResult(AttemptOutcome.SUCCEEDED, row.charge_id)
                return ChargeResult(
                    AttemptOutcome.DECLINED, None, f"{payment_method}: card declined"
                )
            record = session.get(SimulatedCharge, idempotency_key)
            assert record is not None
            if record.charge_id is not None:
                return ChargeResult(AttemptOutcome.SUCCEEDED, record.charge_id, "idempotent replay")
            return ChargeResult(AttemptOutcome.ERROR, None, "amount differs from the first try")


@cache
def _take_a_try(dialect: str) -> sa.Insert:
    """``INSERT … ON CONFLICT DO UPDATE … RETURNING`` for one try of a key, per dialect.

    Returns no row when the key was already paid or asked for a different amount. (A Core
    statement: unlike the ORM statements of ``db.built_once`` it needs no warm-up compile.)
    """
    table = cast(sa.Table, SimulatedCharge.__table__)
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    method = sa.bindparam("method", type_=sa.String)
    charge = sa.bindparam("charge", type_=sa.String)
    insert = insert.values(
        idempotency_key=sa.bindparam("key"),
        payment_method=method,
        amount_cents=sa.bindparam("amount"),
        tries=1,
        charge_id=sa.case((_approves(method, sa.literal(1)), charge), else_=None),
    )
    tries = table.c.tries + 1
    return insert.on_conflict_do_update(
        index_elements=[table.c.idempotency_key],
        set_={
            "tries": tries,
            "charge_id": sa.case((_approves(method, tries), charge), else_=None),
        },
        where=sa.and_(
            table.c.charge_id.is_(None),
            table.c.amount_cents == insert.excluded.amount_cents,
        ),
    ).returning(table.c.charge_id)


def _approves(
    method: sa.ColumnElement[str], tries: sa.ColumnElement[int]
) -> sa.ColumnElement[bool]:
    """The processor's rule: visa always; flaky from the third try; anything else never."""
    return sa.or_(method == "pm_card_visa", sa.and_(method == "pm_card_flaky", tries > 2))

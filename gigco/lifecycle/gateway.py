"""The payment gateway interface and the built-in simulated processor.

Both follow Stripe's idempotency rules: a key stores the first result it gave, declines
included, and replays it; a different request under a used key is refused. So a charge
*intent* has one key: an in-doubt retry of the intent repeats its key and request, and a
new intent (after a decline, with a new card, after an operator's retry) takes a new key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import AttemptOutcome, SimulatedCharge, SimulatedRefund

PAYMENT_METHODS = ("pm_card_visa", "pm_card_chargeDeclined", "pm_card_flaky")
FLAKY_REFUSALS = 2  # pm_card_flaky refuses this many intents of one reference, then succeeds


@dataclass(frozen=True)
class ChargeResult:
    """What the gateway answered to one charge request."""

    outcome: AttemptOutcome
    charge_id: str | None = None
    detail: str | None = None


class GatewayRefused(Exception):
    """The gateway answered for sure and did nothing: a key reused for another request, a
    refund beyond the charge, an unknown charge."""


class PaymentGateway(Protocol):
    """Takes and gives back money. One idempotency key moves money at most once.

    A call that raises (a timeout, a 5xx, a refused connection) may or may not have moved
    money: the caller repeats the same request under the same key to find out.
    """

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        """Charge ``amount_cents`` to ``payment_method``; ``reference`` names our job."""
        ...

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        """Refund ``amount_cents`` of charge ``charge_id``; returns the refund's id."""
        ...


class SimulatedGateway:
    """A Stripe-like test processor with its own ledger, committed apart from the caller's work.

    ``pm_card_visa`` succeeds, ``pm_card_chargeDeclined`` always refuses, ``pm_card_flaky``
    refuses the first two intents (keys) of one reference, then succeeds. Each key keeps
    its first request and result (Stripe's rules, in the module's docstring).
    """

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        """Charge in the processor's own transaction, so a caller's rollback cannot undo it.

        A new key is decided and stored at once (``INSERT … ON CONFLICT DO NOTHING``: of two
        concurrent requests under one key, the second waits for the first and reads its
        result); a used key answers what it stored, or refuses another request.
        """
        with self._sessions() as session, session.begin():
            approved = payment_method == "pm_card_visa" or (
                payment_method == "pm_card_flaky"
                and _other_intents(session, reference, payment_method, idempotency_key)
                >= FLAKY_REFUSALS
            )
            values = {
                "idempotency_key": idempotency_key,
                "reference": reference,
                "payment_method": payment_method,
                "amount_cents": amount_cents,
                "charge_id": f"ch_{uuid.uuid4().hex[:24]}" if approved else None,
            }
            table = cast(sa.Table, SimulatedCharge.__table__)
            inserted = session.execute(
                _insert_new(session, SimulatedCharge).returning(table.c.charge_id), values
            ).one_or_none()
            if inserted is not None:  # a new key: what was just decided
                stored_id = inserted.charge_id
            else:  # a used key: what it stored, for the same request only
                stored = session.get(SimulatedCharge, idempotency_key, populate_existing=True)
                assert stored is not None
                if (stored.amount_cents, stored.payment_method, stored.reference) != (
                    amount_cents,
                    payment_method,
                    reference,
                ):
                    raise GatewayRefused(
                        f"idempotency key {idempotency_key} was used for another request"
                    )
                stored_id = stored.charge_id
            if stored_id is not None:
                return ChargeResult(AttemptOutcome.SUCCEEDED, stored_id)
            return ChargeResult(AttemptOutcome.DECLINED, None, f"{payment_method}: card declined")

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        """Refund in the processor's own transaction, at most the charge's amount in all."""
        with self._sessions() as session, session.begin():
            charge = session.scalar(
                sa.select(SimulatedCharge)
                .where(SimulatedCharge.charge_id == charge_id)
                .with_for_update()  # refunds of one charge one at a time
            )
            if charge is None:
                raise GatewayRefused(f"no charge {charge_id}")
            stored = session.get(SimulatedRefund, idempotency_key)
            if stored is not None:
                if (stored.charge_id, stored.amount_cents) != (charge_id, amount_cents):
                    raise GatewayRefused(
                        f"idempotency key {idempotency_key} was used for another request"
                    )
                return stored.refund_id
            refunded = session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(SimulatedRefund.amount_cents), 0)).where(
                    SimulatedRefund.charge_id == charge_id
                )
            )
            if not 0 < amount_cents <= charge.amount_cents - (refunded or 0):
                raise GatewayRefused(
                    f"a refund of {amount_cents} exceeds what is left of {charge_id}"
                )
            refund_id = f"re_{uuid.uuid4().hex[:24]}"
            session.add(
                SimulatedRefund(
                    idempotency_key=idempotency_key,
                    charge_id=charge_id,
                    amount_cents=amount_cents,
                    refund_id=refund_id,
                )
            )
            return refund_id


def _other_intents(session: Session, reference: str, payment_method: str, key: str) -> int:
    """How many other intents (keys) of ``reference`` this card has seen."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(SimulatedCharge)
            .where(
                SimulatedCharge.reference == reference,
                SimulatedCharge.payment_method == payment_method,
                SimulatedCharge.idempotency_key != key,
            )
        )
        or 0
    )


def _insert_new(session: Session, model: type[SimulatedCharge]) -> sa.Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``model``'s table, for the session's dialect."""
    table = cast(sa.Table, model.__table__)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=[table.c.idempotency_key])

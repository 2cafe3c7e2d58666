"""The payment gateway interface and the built-in simulated processor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
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
        """Charge in the processor's own transaction, so a caller's rollback cannot undo it."""
        with self._sessions() as session, session.begin():
            record = session.get(SimulatedCharge, idempotency_key, with_for_update=True)
            if record is None:
                session.add(
                    SimulatedCharge(
                        idempotency_key=idempotency_key,
                        payment_method=payment_method,
                        amount_cents=amount_cents,
                    )
                )
                try:
                    session.flush()
                except sa.exc.IntegrityError:
                    raise RuntimeError("concurrent first charge on one key; retry") from None
                record = session.get(SimulatedCharge, idempotency_key, with_for_update=True)
                assert record is not None
            if record.charge_id is not None:
                return ChargeResult(AttemptOutcome.SUCCEEDED, record.charge_id, "idempotent replay")
            if record.amount_cents != amount_cents:
                return ChargeResult(AttemptOutcome.ERROR, None, "amount differs from the first try")
            record.tries += 1
            if _approves(payment_method, record.tries):
                record.charge_id = f"ch_{uuid.uuid4().hex[:24]}"
                return ChargeResult(AttemptOutcome.SUCCEEDED, record.charge_id)
            return ChargeResult(AttemptOutcome.DECLINED, None, f"{payment_method}: card declined")


def _approves(payment_method: str, tries: int) -> bool:
    if payment_method == "pm_card_visa":
        return True
    if payment_method == "pm_card_flaky":
        return tries > 2
    return False

"""Prices: hourly rate × hours, plus the platform fee, in integer cents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# The fee rate of jobs created from now on; each job keeps the one of its policy.
FEE_RATE = Decimal("0.10")


@dataclass(frozen=True)
class Price:
    """A job's price split into what the worker earns and what the platform keeps."""

    subtotal_cents: int
    fee_cents: int

    @property
    def price_cents(self) -> int:
        """What the consumer pays."""
        return self.subtotal_cents + self.fee_cents


def _cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_for(
    hourly_rate_cents: int, estimated_hours: float, fee_rate: Decimal = FEE_RATE
) -> Price:
    """The price of ``estimated_hours`` at ``hourly_rate_cents``, each part rounded to the cent;
    the fee is ``fee_rate`` of the subtotal (a job's policy says which)."""
    subtotal = _cents(Decimal(hourly_rate_cents) * Decimal(str(estimated_hours)))
    return Price(subtotal_cents=subtotal, fee_cents=_cents(Decimal(subtotal) * fee_rate))

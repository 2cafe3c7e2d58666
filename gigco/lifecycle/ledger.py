"""Finance's export: charges, refunds and fees per day (UTC), as CSV.

A charge counts on the day its payment succeeded, a refund on the day the gateway took it.
Each splits into the platform's fee and the worker's earnings (a refund as
``gigco.lifecycle.disputes`` splits it). A late-cancellation fee is a charge like a job's
price, all of it the worker's earnings; ``late_cancel_fees`` and ``late_cancel_fee_cents``
say how many of the day's charges, and how much of them, were such fees. The totals are
what the gateway's ledger holds: every succeeded charge and every refund taken, each once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gigco.models import (
    PAYMENT_KIND_LATE_CANCEL_FEE,
    Dispute,
    Payment,
    PaymentStatus,
    RefundStatus,
)


@dataclass
class LedgerDay:
    """One day's money, in cents."""

    day: dt.date
    charges: int = 0
    charged_cents: int = 0
    fee_cents: int = 0
    earnings_cents: int = 0
    late_cancel_fees: int = 0
    late_cancel_fee_cents: int = 0
    refunds: int = 0
    refunded_cents: int = 0
    refunded_fee_cents: int = 0
    refunded_earnings_cents: int = 0

    @property
    def net_cents(self) -> int:
        """What the day kept: charged less refunded."""
        return self.charged_cents - self.refunded_cents

    @property
    def net_fee_cents(self) -> int:
        """The platform's revenue of the day: fees less their refunded share."""
        return self.fee_cents - self.refunded_fee_cents


COLUMNS = [f.name for f in fields(LedgerDay)] + ["net_cents", "net_fee_cents"]


def ledger_days(
    session: Session, start: dt.date | None = None, end: dt.date | None = None
) -> list[LedgerDay]:
    """Each day from ``start`` to ``end`` (inclusive, either open) with money, oldest first."""
    days: dict[dt.date, LedgerDay] = defaultdict(lambda: LedgerDay(dt.date.min))
    charges = session.execute(
        sa.select(
            Payment.succeeded_at,
            Payment.amount_cents,
            Payment.fee_cents,
            Payment.worker_earnings_cents,
            Payment.kind,
        ).where(
            Payment.status == PaymentStatus.SUCCEEDED, *_window(Payment.succeeded_at, start, end)
        )
    )
    for at, amount, fee, earnings, kind in charges:
        day = _day(days, at)
        day.charges += 1
        day.charged_cents += amount
        day.fee_cents += fee
        day.earnings_cents += earnings
        if kind == PAYMENT_KIND_LATE_CANCEL_FEE:
            day.late_cancel_fees += 1
            day.late_cancel_fee_cents += amount
    refunds = session.execute(
        sa.select(Dispute.refunded_at, Dispute.refund_cents, Dispute.refund_fee_cents).where(
            Dispute.refund_status == RefundStatus.SUCCEEDED,
            *_window(Dispute.refunded_at, start, end),
        )
    )
    for refunded_at, refund, refund_fee in refunds:
        day = _day(days, refunded_at)
        day.refunds += 1
        day.refunded_cents += refund or 0
        day.refunded_fee_cents += refund_fee or 0
        day.refunded_earnings_cents += (refund or 0) - (refund_fee or 0)
    return sorted(days.values(), key=lambda d: d.day)


def _window(
    column: Any, start: dt.date | None, end: dt.date | None
) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``column``: from ``start`` to ``end``, whole UTC days."""
    conditions = []
    if start is not None:
        conditions.append(column >= dt.datetime.combine(start, dt.time(), dt.UTC))
    if end is not None:
        conditions.append(
            column < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        )
    return conditions


def _day(days: dict[dt.date, LedgerDay], at: dt.datetime | None) -> LedgerDay:
    assert at is not None
    key = at.astimezone(dt.UTC).date()
    day = days[key]
    day.day = key
    return day


def csv_lines(days: list[LedgerDay]) -> Iterator[str]:
    """The export as CSV lines: a header, a row per day, and a ``total`` row."""
    total = LedgerDay(dt.date.min)
    for day in days:
        for name in COLUMNS[1:-2]:
            setattr(total, name, getattr(total, name) + getattr(day, name))
    rows: list[list[object]] = [list(COLUMNS)]
    rows += [[*astuple(d), d.net_cents, d.net_fee_cents] for d in days]
    rows.append(["total", *astuple(total)[1:], total.net_cents, total.net_fee_cents])
    for row in rows:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(
            [v.isoformat() if isinstance(v, dt.date) else v for v in row]
        )
        yield out.getvalue()

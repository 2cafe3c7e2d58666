"""Finance's export (/ops/finance.csv and ``gigco export-ledger``) against the gateway's own
ledger, after a fleet with refusals, retries, a new card, an operator's retry and refunds;
and the operator resolving a dispute from the console."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gigco.models import Dispute, RefundStatus, SimulatedCharge, SimulatedRefund
from tests.harness.console import Ops
from tests.harness.http import Api
from tests.harness.journeys import paid_job, worked_job
from tests.harness.polling import wait_for


def _place(i: int) -> dict[str, float]:
    """A place of its own per job, so that no other job's worker is offered it."""
    return {"lat": 40.0 + i, "lng": -100.0}


def _worked(api: Api, consumer: dict[str, Any], i: int) -> int:
    return worked_job(api, consumer, api.worker(location=_place(i)), location=_place(i))


def _totals(text: str) -> dict[str, int]:
    rows = list(csv.DictReader(io.StringIO(text)))
    (total,) = [r for r in rows if r["day"] == "total"]
    return {k: int(v) for k, v in total.items() if k != "day"}


def _dispute(api: Api, job_id: int, consumer: dict[str, Any], refund: int) -> None:
    r = api.client.post(
        f"/v1/jobs/{job_id}/dispute", json={"reason": "Not right"}, headers=consumer["headers"]
    )
    assert r.status_code == 201, r.json
    r = api.client.post(
        f"/v1/jobs/{job_id}/dispute/resolve",
        json={"refund_cents": refund, "note": "Refunded"},
        headers=api.admin,
    )
    assert r.status_code == 200, r.json


def test_the_export_matches_the_gateways_ledger_after_a_fleet(
    api: Api, ops: Ops, sessions: sessionmaker[Session], test_env: dict[str, str]
) -> None:
    visa = api.consumer()
    paid = [_worked(api, visa, i) for i in range(2)]
    flaky = api.consumer(payment_method="pm_card_flaky")
    refused_twice = _worked(api, flaky, 2)  # two intents refused, the third paid
    declined = api.consumer(payment_method="pm_card_chargeDeclined")
    failed = _worked(api, declined, 3)
    api.wait_status(failed, "payment_failed")
    r = api.client.patch(
        "/v1/consumers/me", json={"payment_method": "pm_card_visa"}, headers=declined["headers"]
    )
    assert r.status_code == 200, r.json
    assert api.signal(failed, "payment/retry").status_code == 200  # a new intent, the new card
    for job_id in (*paid, refused_twice, failed):
        wait_for(
            lambda j=job_id: api.job(j)["status"] in ("review_pending", "closed"),
            what=f"job {job_id} paid",
        )
    disputed, owner, _ = paid_job(api, sessions, _place(4))
    price = api.job(disputed)["price_cents"]
    _dispute(api, disputed, owner, price)  # all of it back
    half, owner, _ = paid_job(api, sessions, _place(5))
    _dispute(api, half, owner, 1234)
    wait_for(lambda: _refunds_done(sessions) == 2, what="both refunds taken at the gateway")

    with sessions() as s:
        charged = s.scalar(
            sa.select(sa.func.sum(SimulatedCharge.amount_cents)).where(
                SimulatedCharge.charge_id.is_not(None)
            )
        )
        charges = s.scalar(sa.select(sa.func.count()).where(SimulatedCharge.charge_id.is_not(None)))
        refunded = s.scalar(sa.select(sa.func.sum(SimulatedRefund.amount_cents)))
        declines = s.scalar(sa.select(sa.func.count()).where(SimulatedCharge.charge_id.is_(None)))
    # flaky refused twice; the declined card refused for the whole budget (3 attempts)
    assert charges == 6 and declines == 5
    assert refunded == price + 1234
    from_console = ops.page("/ops/finance.csv")
    assert from_console.mimetype == "text/csv"
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "gigco"), "export-ledger"],
        env={**os.environ, **test_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for text in (from_console.text, cli.stdout):
        totals = _totals(text)
        assert (totals["charges"], totals["charged_cents"]) == (charges, charged)
        assert (totals["refunds"], totals["refunded_cents"]) == (2, refunded)
        assert totals["net_cents"] == charged - refunded
        assert totals["fee_cents"] + totals["earnings_cents"] == charged
        assert totals["refunded_fee_cents"] + totals["refunded_earnings_cents"] == refunded


def _refunds_done(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return (
            s.scalar(
                sa.select(sa.func.count()).where(Dispute.refund_status == RefundStatus.SUCCEEDED)
            )
            or 0
        )


def test_the_operator_resolves_a_dispute_from_the_console(
    api: Api, ops: Ops, sessions: sessionmaker[Session]
) -> None:
    job_id, consumer, _ = paid_job(api, sessions, _place(6))
    r = api.client.post(
        f"/v1/jobs/{job_id}/dispute", json={"reason": "Late"}, headers=consumer["headers"]
    )
    assert r.status_code == 201
    page = f"/ops/jobs/{job_id}"
    assert "Late" in ops.page(page).text
    action = f"/ops/jobs/{job_id}/dispute/resolve"
    too_much = ops.submit(page, action, refund_cents="99999999", reason="Sorry")
    assert too_much.status_code == 422
    done = ops.submit(page, action, refund_cents="100", reason="Sorry for the delay")
    assert done.status_code == 303
    wait_for(lambda: _refunds_done(sessions) == 1, what="the refund taken")
    shown = api.client.get(f"/v1/jobs/{job_id}/dispute", headers=consumer["headers"]).json
    assert (shown["status"], shown["refund_cents"], shown["note"]) == (
        "resolved",
        100,
        "Sorry for the delay",
    )

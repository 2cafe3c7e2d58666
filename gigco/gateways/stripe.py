"""The Stripe gateway: our charge intents as PaymentIntents, refunds as Refunds, through the
official ``stripe`` SDK (``GIGCO_PAYMENT_GATEWAY=stripe``).

A charge of one intent (idempotency key ``job-<id>-intent-<n>``) is two requests: create the
PaymentIntent unconfirmed (amount in cents, the consumer's payment method, our job and key in
its metadata, our key as Stripe's idempotency key), store its id (``processor_intents``), then
confirm it (under ``<key>-confirm``). Money moves only on the confirmation, and only of the
stored intent, so an in-doubt outcome (a timeout after sending, a 5xx) is settled by the next
attempt of the same intent reading the stored PaymentIntent back — succeeded, declined, or
not yet confirmed (then confirmed) — never by charging again. Every request is bounded by
``GIGCO_STRIPE_TIMEOUT_SECONDS`` and the SDK does not retry on its own (the lifecycle's
attempts do, under the same key), so a charge ends well inside the claim's lease.

A refund is looked for first among the PaymentIntent's refunds by its key (metadata), then
created under that key, so an in-doubt refund is found rather than made twice.

Our simulated test cards map onto Stripe's test PaymentMethods: ``pm_card_visa`` is itself,
``pm_card_chargeDeclined`` is ``pm_card_chargeCustomerFail`` (attaches, then every charge
is declined), and ``pm_card_flaky`` (a simulated behaviour with no Stripe twin) is
``pm_card_visa``.
"""

from __future__ import annotations

import logging
from typing import cast

import sqlalchemy as sa
import stripe
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gigco.lifecycle.gateway import ChargeResult, GatewayRefused
from gigco.models import AttemptOutcome, ProcessorIntent

log = logging.getLogger(__name__)

TEST_CARDS = {
    "pm_card_chargeDeclined": "pm_card_chargeCustomerFail",
    "pm_card_flaky": "pm_card_visa",
}


class InDoubt(Exception):
    """Stripe has the intent in a state that is not an answer yet (processing, an action)."""


def stripe_client(
    api_key: str, api_base: str | None, timeout_seconds: float
) -> stripe.StripeClient:
    """A client with one bounded try per request: the lifecycle retries, not the SDK."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout_seconds),
    )


class StripeGateway:
    """``PaymentGateway`` on Stripe's API; the PaymentIntent ids are kept in our database."""

    def __init__(self, client: stripe.StripeClient, sessions: sessionmaker[Session]):
        self._client = client
        self._sessions = sessions

    def charge(
        self, *, idempotency_key: str, amount_cents: int, payment_method: str, reference: str
    ) -> ChargeResult:
        """Charge one intent: its stored PaymentIntent read back, or a new one made and stored,
        then confirmed. Raises when the outcome is in doubt (the caller repeats the intent)."""
        intents = self._client.v1.payment_intents
        known = self._stored(idempotency_key)
        if known is None:
            created = intents.create(
                {
                    "amount": amount_cents,
                    "currency": "usd",
                    "payment_method": TEST_CARDS.get(payment_method, payment_method),
                    "metadata": {"gigco_job": reference, "gigco_intent": idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
            known = self._store(idempotency_key, created.id)
            intent = created if created.id == known else intents.retrieve(known)
        else:
            intent = intents.retrieve(known)
        if intent.amount != amount_cents:
            raise GatewayRefused(f"idempotency key {idempotency_key} was used for another amount")
        if intent.status == "requires_confirmation":
            try:
                intent = intents.confirm(
                    intent.id, options={"idempotency_key": f"{idempotency_key}-confirm"}
                )
            except stripe.CardError as declined:
                return ChargeResult(AttemptOutcome.DECLINED, None, _decline(declined))
        return _result(intent)

    def refund(self, *, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        """Refund part of a PaymentIntent: the refund made under this key, or a new one."""
        refunds = self._client.v1.refunds
        for refund in refunds.list({"payment_intent": charge_id, "limit": 100}).auto_paging_iter():
            metadata = refund.metadata
            if metadata is not None and metadata.to_dict().get("gigco_refund") == idempotency_key:
                if refund.amount != amount_cents:
                    raise GatewayRefused(f"refund {idempotency_key} was made for another amount")
                return refund.id
        try:
            made = refunds.create(
                {
                    "payment_intent": charge_id,
                    "amount": amount_cents,
                    "metadata": {"gigco_refund": idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as refused:
            raise GatewayRefused(str(refused.user_message or refused)) from refused
        return made.id

    def _stored(self, key: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(
                sa.select(ProcessorIntent.processor_id).where(
                    ProcessorIntent.idempotency_key == key
                )
            )

    def _store(self, key: str, processor_id: str) -> str:
        """Store the PaymentIntent of ``key`` (before confirming it); the one stored first wins."""
        with self._sessions() as session, session.begin():
            table = cast(sa.Table, ProcessorIntent.__table__)
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
            session.execute(
                insert.on_conflict_do_nothing(index_elements=[table.c.idempotency_key]),
                {"idempotency_key": key, "processor_id": processor_id},
            )
            stored = session.get(ProcessorIntent, key, populate_existing=True)
            assert stored is not None
            return stored.processor_id


def _decline(error: stripe.CardError) -> str:
    code = getattr(error, "code", None) or "card_declined"
    return f"{code}: {error.user_message or error}"[:200]


def _result(intent: stripe.PaymentIntent) -> ChargeResult:
    """What a PaymentIntent's status says about our charge; raises when it is no answer."""
    if intent.status == "succeeded":
        return ChargeResult(AttemptOutcome.SUCCEEDED, intent.id)
    if intent.status in ("requires_payment_method", "canceled"):
        failure = intent.last_payment_error
        detail = failure.message if failure is not None and failure.message else intent.status
        return ChargeResult(AttemptOutcome.DECLINED, None, f"declined: {detail}"[:200])
    raise InDoubt(f"PaymentIntent {intent.id} is {intent.status}")

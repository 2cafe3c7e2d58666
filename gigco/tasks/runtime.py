"""What tasks run with: settings, engine, sessions and the payment gateway, built lazily."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gigco.config import Settings, load_settings
from gigco.db import make_engine, session_factory
from gigco.lifecycle.gateway import PaymentGateway, SimulatedGateway


@dataclass
class Runtime:
    """One process's connection to the database, made on first use (after any fork)."""

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        """The process's engine."""
        settings = self.settings
        return make_engine(
            settings.database_url,
            statement_timeout_ms=settings.worker_statement_timeout_ms,
            lock_timeout_ms=settings.worker_statement_timeout_ms,
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory bound to the engine."""
        return session_factory(self.engine)

    @cached_property
    def gateway(self) -> PaymentGateway:
        """The payment gateway: the simulated processor, or Stripe (GIGCO_PAYMENT_GATEWAY)."""
        settings = self.settings
        if settings.payment_gateway == "stripe":
            from gigco.gateways.stripe import StripeGateway, stripe_client

            assert settings.stripe_api_key is not None
            client = stripe_client(
                settings.stripe_api_key, settings.stripe_api_base, settings.stripe_timeout_seconds
            )
            return StripeGateway(client, self.sessions)
        return SimulatedGateway(self.sessions)

    def dispose(self) -> None:
        """Drop pooled connections (after a fork)."""
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, from the environment unless ``configure`` set one."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def use_settings(settings: Settings) -> Runtime:
    """Make ``settings`` this process's runtime (the web app and tests call this)."""
    global _runtime
    if _runtime is None or _runtime.settings != settings:
        _runtime = Runtime(settings)
    return _runtime

"""Alembic, driven from code: ``gigco db upgrade`` and the test suite use this."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

# Columns the schema keeps only for the previous release's code while a rollout runs it
# (expand → migrate → contract, docs/deploy.md): no model maps them, nothing of this release
# reads or writes them, and the next release's contract migration drops them.
KEPT_FOR_PREVIOUS_RELEASE: dict[str, tuple[str, ...]] = {
    "jobs": ("next_match_at", "next_payment_at"),
    "simulated_charges": ("tries",),
}


def alembic_config(database_url: str) -> Config:
    """An Alembic config for the packaged migrations against ``database_url``."""
    config = Config()
    config.set_main_option("script_location", "gigco:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    """Print the database's current revision."""
    command.current(alembic_config(database_url))

"""Alembic environment: migrates the database named by the config's sqlalchemy.url."""

from alembic import context

import gigco.models  # noqa: F401  (registers every table on Base.metadata)
from gigco.db import Base, make_engine

config = context.config


def run_migrations() -> None:
    """Apply migrations online, batch mode on SQLite so ALTERs work there too."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

"""The ``gigco`` pytest fixture: an in-process GigCo with test clocks (``gigco.testing``).

Registered as a pytest plugin by GigCo's distribution (entry point ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gigco.testing import GigCo, migrated_database


@pytest.fixture(scope="session")
def gigco_database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GigCo's schema, migrated once per run; each test gets a copy."""
    return migrated_database(tmp_path_factory.mktemp("gigco-template") / "gigco.db")


@pytest.fixture
def gigco_settings() -> dict[str, str]:
    """Extra GIGCO_* settings of the ``gigco`` fixture's GigCo; override it in a module or
    conftest (say ``{"GIGCO_REVIEW_WINDOW_SECONDS": "86400"}``)."""
    return {}


@pytest.fixture
def gigco(
    tmp_path: Path, gigco_database_template: Path, gigco_settings: dict[str, str]
) -> Iterator[GigCo]:
    """An in-process GigCo of this test's own: API, worker (``gigco.run()``), test clocks.
    The process's Celery app and task runtime are pointed at it, and back afterwards."""
    from gigco.tasks import runtime as runtime_module
    from gigco.tasks.app import app as celery_app
    from gigco.tasks.app import configure

    previous = runtime_module._runtime
    saved = {key: celery_app.conf.get(key) for key in ("broker_url", "broker_transport_options")}
    kit = GigCo.start(tmp_path / "gigco", gigco_database_template, **gigco_settings)
    try:
        yield kit
    finally:
        kit.close()
        if previous is not None:
            configure(previous.settings)
        else:
            celery_app.conf.update(saved)
            celery_app._pool = None
            celery_app.__dict__.pop("amqp", None)
            runtime_module._runtime = None

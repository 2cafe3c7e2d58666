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
def gigco(tmp_path: Path, gigco_database_template: Path) -> Iterator[GigCo]:
    """An in-process GigCo of this test's own: API, worker (``gigco.run()``), test clocks."""
    from gigco.tasks import configure
    from gigco.tasks.runtime import runtime

    previous = runtime().settings if _configured() else None
    kit = GigCo.start(tmp_path / "gigco", gigco_database_template)
    try:
        yield kit
    finally:
        kit.close()
        if previous is not None:
            configure(previous)  # leave the process as the test found it


def _configured() -> bool:
    from gigco.tasks import runtime as module

    return getattr(module, "_runtime", None) is not None

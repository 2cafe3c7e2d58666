"""The operators' console: a client signed in to it."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.harness.console import Ops


@pytest.fixture
def ops(app: Flask) -> Ops:
    """A client signed in to the console."""
    console = Ops(app.test_client())
    assert console.login().status_code == 303
    return console

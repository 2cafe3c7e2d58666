"""A real HTTP receiver on 127.0.0.1 for each webhook test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.webhooks import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A threaded HTTP server on 127.0.0.1 for this test."""
    with receiving() as state:
        yield state

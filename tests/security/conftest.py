"""Fixtures of the security tests: the app inside the test's rolled-back transaction."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def isolated_app(app: Flask, isolated_sessions: sessionmaker[Session]) -> Flask:
    """The app reading and writing inside the test's transaction: no worker ever sees it."""
    app.extensions["gigco_sessions"] = isolated_sessions
    app.extensions["gigco_read_sessions"] = isolated_sessions
    return app

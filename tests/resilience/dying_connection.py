"""Run by test_postgres_restart: requests whose database connection dies as they end.

The app's own teardown (``close_session``) rolls back the request's transaction; a hook
registered after it runs first and terminates the request's PostgreSQL backend, as a
restart would between the last statement and the end of the request. Prints each
request's ``[status, number of categories]`` as JSON. A separate process, because
``create_app`` points the process-wide Celery app at its settings.
"""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from flask import g

from gigco.config import load_settings
from gigco.db import make_engine
from gigco.web import create_app

KILLED_REQUESTS = 40  # more than the pool holds, so a leaked connection would show


def main() -> None:
    """GET /v1/categories with the connection killed, then once more with it alive."""
    settings = load_settings()
    app = create_app(settings)
    killer = make_engine(settings.database_url, isolation_level="AUTOCOMMIT", pool_size=1)

    @app.teardown_appcontext  # teardowns run in reverse order: this one before close_session
    def terminate_backend(_exc: BaseException | None) -> None:
        session = g.get("db_session")
        if session is None or not app.config["KILL"]:
            return
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        alive = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        with killer.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while conn.scalar(alive, {"pid": pid}) and time.monotonic() < deadline:
                time.sleep(0.01)

    client = app.test_client()
    answers = []
    for kill in [True] * KILLED_REQUESTS + [False]:
        app.config["KILL"] = kill
        response = client.get("/v1/categories")
        answers.append([response.status_code, len(response.get_json() or [])])
    print(json.dumps(answers))


if __name__ == "__main__":
    main()

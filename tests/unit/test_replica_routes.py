"""Which routes read from the replica (GIGCO_READ_DATABASE_URL) is read off the app's URL map,
so that a new route cannot slip onto the replica, or off it, without this list changing
(docs/scaling.md, "A read replica", says why each one)."""

from __future__ import annotations

from pathlib import Path

from gigco.config import load_settings
from gigco.web.db import marked

# Lag-tolerant reads that write nothing: a client sees the primary's latest commits a
# replica's lag later. Everything else reads the primary (its own writes, at once).
ON_THE_REPLICA = {
    "GET /v1/jobs",
    "GET /v1/notifications",
    "GET /v1/notifications/feed",
    "GET /ops/",
    "GET /ops/jobs",
    "GET /ops/finance.csv",
    "GET /ops/webhooks",
}


def test_exactly_the_lists_the_feed_and_the_consoles_overview_pages_read_the_replica(
    tmp_path: Path,
) -> None:
    from gigco.web import create_app

    app = create_app(load_settings({"GIGCO_DATA_DIR": str(tmp_path)}))
    found = {
        f"GET {rule.rule}"
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and marked(app.view_functions[rule.endpoint], "GET")
    }
    assert found == ON_THE_REPLICA


def test_no_route_that_writes_is_marked(tmp_path: Path) -> None:
    from gigco.web import create_app

    app = create_app(load_settings({"GIGCO_DATA_DIR": str(tmp_path)}))
    writes = [
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in ("POST", "PUT", "PATCH", "DELETE")
        if method in (rule.methods or ()) and marked(app.view_functions[rule.endpoint], method)
    ]
    assert writes == []

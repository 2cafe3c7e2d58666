"""The console's system panel: workers, beat, queues and the oldest overdue step.

It reads ``gigco.health.check`` with the same parts and the same sessions as ``/healthz``,
and only lays the result out, so the panel and a monitor never disagree.
"""

from __future__ import annotations

from flask import current_app, render_template

import gigco
from gigco import health
from gigco.web.ops.blueprint import blp, settings


def report() -> health.Health:
    """What ``/healthz`` reports, checked now."""
    sessions = current_app.extensions["gigco_read_sessions"]
    return health.check(settings(), sessions, parts=health.PARTS)


@blp.get("/system")
def system() -> tuple[str, int]:
    """Is the system making progress? Green, or red naming each part that is down."""
    result = report()
    page = render_template(
        "ops/system.html", health=result, parts=result.parts, version=gigco.__version__
    )
    # The same status as /healthz, so a monitor may watch this page too.
    return page, 200 if result.ok else 503

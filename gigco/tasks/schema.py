"""Task messages carry the version of their schema, so that two releases can share a queue.

Every message this release publishes (steps, sweeps, webhook deliveries; from the API, a
worker or beat) is stamped with the header ``gigco_schema``. The schema is what a task's
name and arguments mean; it changes only in two releases (docs/deploy.md): one that accepts
the new schema while still sending the old, then one that sends the new.

A worker runs a message whose schema it understands: this release's, and the previous
release's (0.1.0 sent no header). Any other — a newer release's, during a rollout — is not
acknowledged and dropped: it is published again unchanged with a countdown of
``DEFER_SECONDS`` (so a worker that understands it takes it, and this one does not spin on
it), logged, and counted (``gigco.metrics.TASKS_DEFERRED``). So is a message for a task
name this worker has no code for (a newer release's task): Celery rejects it, and it is
published again the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import before_task_publish, task_unknown

from gigco import metrics

HEADER = "gigco_schema"
CURRENT = 1
# None: a message from 0.1.0, which had no header (its names and arguments are schema 1's).
UNDERSTOOD: frozenset[int | None] = frozenset({None, 1})
DEFER_SECONDS = 30.0

log = logging.getLogger("gigco.tasks")


@before_task_publish.connect(weak=False)
def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Stamp every published message with this release's schema (a deferred message keeps
    the schema it came with)."""
    if headers is not None:
        headers.setdefault(HEADER, CURRENT)


def schema_of(request: Any) -> Any:
    """The schema a task's message says it has (None: no header, the previous release)."""
    value = getattr(request, HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    return value


def understood(schema: Any) -> bool:
    """True when this worker may run a message of ``schema``."""
    return schema in UNDERSTOOD


@task_unknown.connect(weak=False)
def _send_back_unregistered(
    sender: Any = None, message: Any = None, name: str = "", **_: Any
) -> None:
    """A message for a task this worker does not know (Celery has just rejected it): publish
    it again, with its arguments and schema, after ``DEFER_SECONDS`` on the same queue."""
    headers = getattr(message, "headers", None) or {}
    found = headers.get(HEADER)
    try:
        args, kwargs, _embed = message.decode()
    except Exception:
        log.exception("could not read a message for unknown task %s; it is dropped", name)
        return
    metrics.TASKS_DEFERRED.labels(task=name, schema=str(found)).inc()
    log.warning(
        "message for a task this worker does not know sent back to the queue",
        extra={"task": name, "schema": found, "defer_seconds": DEFER_SECONDS},
    )
    queue = (getattr(message, "delivery_info", None) or {}).get("routing_key")
    sender.app.send_task(
        name,
        args=args,
        kwargs=kwargs,
        countdown=DEFER_SECONDS,
        headers={HEADER: found},
        **({"queue": queue} if queue else {}),
    )

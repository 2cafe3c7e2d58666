"""GigCo's Flower settings, applied whatever the working directory.

Flower reads ``flowerconfig.py`` from the working directory and silently runs without it
(no login). When Celery loads ``gigco.tasks`` for the ``flower`` command, ``apply`` checks
the accounts (exiting without them) and points Flower's ``--conf`` at the packaged
``gigco/tasks/flowerconfig.py``; a ``--conf`` given on the command line still wins, and
the accounts are checked either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gigco.config import ConfigError, load_settings

CONFIG_FILE = Path(__file__).with_name("flowerconfig.py")
REFUSAL = (
    "gigco: set GIGCO_FLOWER_BASIC_AUTH=user:password (a password of at least 12 characters); "
    "Flower can shut workers down, so it does not run without one"
)


def flower_options() -> dict[str, Any]:
    """Flower's options from GIGCO_* settings; exit with one line when there is no account."""
    try:
        settings = load_settings()
    except ConfigError as error:
        raise SystemExit(f"gigco: {error}") from None
    if not settings.flower_basic_auth:
        raise SystemExit(REFUSAL)
    return {
        "basic_auth": list(settings.flower_basic_auth),
        # The columns an operator reads first; args are [job_id].
        "tasks_columns": "name,uuid,state,args,received,started,runtime,worker,retries",
        "natural_time": False,
    }


def apply() -> None:
    """Under ``celery … flower``: refuse without accounts, and read our config file."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.invoked_subcommand != "flower":
        return
    flower_options()
    from flower.options import options  # only the flower command needs tornado's options

    options.conf = str(CONFIG_FILE)

"""Flower's settings for ``celery -A gigco.tasks flower``, read from the working directory.

Flower can revoke tasks and shut workers down, so it never runs open: it needs
``GIGCO_FLOWER_BASIC_AUTH=user:password`` (several accounts separated by commas), read and
checked by gigco.config like every other setting. Celery's own settings (broker, events)
come from ``celeryconfig.py`` like the worker's; task arguments are only job ids, so the
default ``argsrepr`` shows nothing sensitive. Run it from elsewhere with
``--conf=/path/to/flowerconfig.py``.
"""

from gigco.config import ConfigError, load_settings

try:
    _settings = load_settings()
except ConfigError as error:
    raise SystemExit(f"gigco: {error}") from None
if not _settings.flower_basic_auth:
    raise SystemExit(
        "gigco: set GIGCO_FLOWER_BASIC_AUTH=user:password (a password of at least 12 characters); "
        "Flower can shut workers down, so it does not run without one"
    )

basic_auth = list(_settings.flower_basic_auth)
# The columns an operator reads first; args are [job_id].
tasks_columns = "name,uuid,state,args,received,started,runtime,worker,retries"
natural_time = False

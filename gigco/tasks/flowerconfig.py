"""Flower's settings for ``celery -A gigco.tasks flower``, found from any directory.

``gigco.tasks.flower`` points Flower's ``--conf`` here when the app is loaded for the
``flower`` command, and refuses to start without accounts before Flower reads anything.
Flower can revoke tasks and shut workers down, so it never runs open: it needs
``GIGCO_FLOWER_BASIC_AUTH=user:password`` (several accounts separated by commas). Celery's
own settings (broker, events) come from ``celeryconfig.py`` like the worker's; task
arguments are only job ids, so the default ``argsrepr`` shows nothing sensitive.
"""

from gigco.tasks.flower import flower_options

globals().update(flower_options())

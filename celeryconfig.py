"""Celery settings, read from gigco.config (the GIGCO_* environment variables)."""

from gigco.config import ConfigError, load_settings
from gigco.tasks.celery_settings import celery_settings

try:
    globals().update(celery_settings(load_settings()))
except ConfigError as error:
    raise SystemExit(f"gigco: {error}") from None

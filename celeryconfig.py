"""Celery settings, read from gigco.config (the GIGCO_* environment variables)."""

from gigco.config import load_settings
from gigco.tasks.celery_settings import celery_settings

globals().update(celery_settings(load_settings()))

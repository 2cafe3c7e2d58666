"""Schemas of actions: an action takes no body and answers with the job as it then is."""

from __future__ import annotations

from gigco.web.resources.jobs.schemas import JobSchema

__all__ = ["JobSchema"]

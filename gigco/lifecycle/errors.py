"""Domain errors, free of any transport; ``gigco.web.errors`` maps each to its HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of the errors a caller can act on."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.extra = extra


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class Forbidden(DomainError):
    """The caller can see the job but is the wrong party for the action."""


class Conflict(DomainError):
    """The job (or another row) is not in a state that allows the action."""


class Invalid(DomainError):
    """Input that passed the schema but breaks a domain rule (unknown category, …)."""

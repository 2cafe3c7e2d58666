"""Enumerations stored in the database."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """The states of a job's lifecycle (lifecycle.md, "States")."""

    DRAFT = "draft"
    PRICED = "priced"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    WORKER_ASSIGNED = "worker_assigned"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PAYMENT_FAILED = "payment_failed"
    PAID = "paid"
    REVIEW_PENDING = "review_pending"
    CLOSED = "closed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    NO_WORKER = "no_worker"


class OpportunityStatus(StrEnum):
    """Where one worker's opportunity on a job stands."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class PaymentStatus(StrEnum):
    """Where a job's payment stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DisputeStatus(StrEnum):
    """Where a consumer's dispute of a paid job stands."""

    OPEN = "open"
    RESOLVED = "resolved"


class RefundStatus(StrEnum):
    """Where the refund of a resolved dispute stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"


class AttemptOutcome(StrEnum):
    """What one charge attempt at the gateway came to."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    ERROR = "error"


class Role(StrEnum):
    """Who is calling or acting."""

    CONSUMER = "consumer"
    WORKER = "worker"
    OPERATOR = "operator"
    SYSTEM = "system"

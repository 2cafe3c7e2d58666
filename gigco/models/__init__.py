"""The database rows of GigCo: typed declarative models, no behaviour beyond the row."""

from gigco.models.accounts import ApiToken, Consumer, Worker, WorkerStrike, worker_skills
from gigco.models.activity import IdempotencyKey, Notification, Review
from gigco.models.catalog import Category
from gigco.models.counts import SHARDS, JobEventCount, JobStatusCount
from gigco.models.enums import (
    AttemptOutcome,
    DisputeStatus,
    JobStatus,
    OpportunityStatus,
    PaymentStatus,
    RefundStatus,
    Role,
)
from gigco.models.health import Heartbeat
from gigco.models.jobs import Job, JobEvent, Opportunity
from gigco.models.payments import (
    PAYMENT_KIND_JOB,
    PAYMENT_KIND_LATE_CANCEL_FEE,
    Dispute,
    Payment,
    PaymentAttempt,
    ProcessorIntent,
    SimulatedCharge,
    SimulatedRefund,
)
from gigco.models.policies import LifecyclePolicy
from gigco.models.test_clocks import TestClock
from gigco.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "PAYMENT_KIND_JOB",
    "PAYMENT_KIND_LATE_CANCEL_FEE",
    "SHARDS",
    "ApiToken",
    "AttemptOutcome",
    "Category",
    "Consumer",
    "DeliveryStatus",
    "Dispute",
    "DisputeStatus",
    "Heartbeat",
    "IdempotencyKey",
    "Job",
    "JobEvent",
    "JobEventCount",
    "JobStatus",
    "JobStatusCount",
    "LifecyclePolicy",
    "Notification",
    "Opportunity",
    "OpportunityStatus",
    "Payment",
    "PaymentAttempt",
    "PaymentStatus",
    "ProcessorIntent",
    "RefundStatus",
    "Review",
    "Role",
    "SimulatedCharge",
    "SimulatedRefund",
    "TestClock",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Worker",
    "WorkerStrike",
    "worker_skills",
]

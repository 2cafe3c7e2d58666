"""Outbound webhooks (Standard Webhooks): a sibling of the lifecycle, one module per concept.

``urls`` (the SSRF policy), ``endpoints`` (per party, secrets), ``outbox`` (rows written with
each history event, as a sink of ``gigco.lifecycle.history``), ``leases`` (claim, record,
retry: the delivery's state machine), ``transport`` (the signed POST to a pinned address),
``retries`` (the schedule). The lifecycle never imports this package; ``install`` hooks it in
where the app and the worker start. Callers use the names below.
"""

from gigco.webhooks.endpoints import (
    EVENT_TYPES,
    create_endpoint,
    delete_endpoint,
    endpoint_of,
    endpoints_of,
    new_secret,
    rotate_secret,
    update_endpoint,
)
from gigco.webhooks.leases import (
    Claimed,
    claim,
    claimable,
    due_deliveries,
    record_attempt,
    retry_delivery,
)
from gigco.webhooks.outbox import (
    attempts_of,
    deliveries_of,
    install,
    ping,
    use_sender,
)
from gigco.webhooks.transport import Answer, send
from gigco.webhooks.urls import MAX_URL_LENGTH, UnsafeUrl, resolve_url

__all__ = [
    "EVENT_TYPES",
    "MAX_URL_LENGTH",
    "Answer",
    "Claimed",
    "UnsafeUrl",
    "attempts_of",
    "claim",
    "claimable",
    "create_endpoint",
    "delete_endpoint",
    "deliveries_of",
    "due_deliveries",
    "endpoint_of",
    "endpoints_of",
    "install",
    "new_secret",
    "ping",
    "record_attempt",
    "resolve_url",
    "retry_delivery",
    "rotate_secret",
    "send",
    "update_endpoint",
    "use_sender",
]

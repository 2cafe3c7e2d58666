"""Outbound webhooks (Standard Webhooks), one module per concept.

``urls`` (the SSRF policy), ``endpoints`` (per party, secrets), ``outbox`` (rows written with
the event), ``delivery`` (claim, send, record, the sweep). Callers use the names below.
"""

from gigco.lifecycle.webhooks.delivery import (
    Answer,
    Claimed,
    Recorded,
    claim,
    claimable,
    due_deliveries,
    lease_seconds,
    record_attempt,
    retry_delivery,
    send,
    signature_headers,
)
from gigco.lifecycle.webhooks.endpoints import (
    EVENT_TYPES,
    create_endpoint,
    delete_endpoint,
    endpoint_of,
    endpoints_of,
    new_secret,
    rotate_secret,
    signing_secrets,
    update_endpoint,
)
from gigco.lifecycle.webhooks.outbox import (
    PING,
    attempts_of,
    deliveries_of,
    kick_after_commit,
    message,
    ping,
    use_sender,
    write_outbox,
)
from gigco.lifecycle.webhooks.urls import (
    MAX_URL_LENGTH,
    UnsafeUrl,
    address_refusal,
    check_url_syntax,
    resolve_url,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_URL_LENGTH",
    "PING",
    "Answer",
    "Claimed",
    "Recorded",
    "UnsafeUrl",
    "address_refusal",
    "attempts_of",
    "check_url_syntax",
    "claim",
    "claimable",
    "create_endpoint",
    "delete_endpoint",
    "deliveries_of",
    "due_deliveries",
    "endpoint_of",
    "endpoints_of",
    "kick_after_commit",
    "lease_seconds",
    "message",
    "new_secret",
    "ping",
    "record_attempt",
    "resolve_url",
    "retry_delivery",
    "rotate_secret",
    "send",
    "signature_headers",
    "signing_secrets",
    "update_endpoint",
    "use_sender",
    "write_outbox",
]

"""The URL policy of webhook endpoints (SSRF): syntax, the address rules, resolution."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from gigco.lifecycle.errors import Invalid

MAX_URL_LENGTH = 2048


class UnsafeUrl(Invalid):
    """A webhook URL that is malformed or points somewhere GigCo must not send to."""

    def __init__(self, reason: str):
        super().__init__(reason, errors={"url": [reason]})
        self.reason = reason


def check_url_syntax(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The host and port of ``url`` if it is an absolute https (or, when allowed, http) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    schemes = ("https", "http") if allow_private else ("https",)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("The URL is not a valid absolute URL.") from None
    if parts.scheme not in schemes:
        hint = ""
        if parts.scheme == "http":
            hint = (
                " For local development, GIGCO_WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 allows http:// "
                "and private addresses."
            )
        raise UnsafeUrl(f"The URL must start with {' or '.join(s + '://' for s in schemes)}.{hint}")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL must name a host and carry no credentials.")
    if any(c.isspace() for c in url) or not url.isprintable():
        raise UnsafeUrl("The URL must not contain spaces or control characters.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why GigCo must not connect to ``address``, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a link-local, multicast or unspecified address."
    if not ip.is_global and not allow_private:
        return f"{ip} is not a public address."
    return None


def resolve_url(url: str, *, allow_private: bool) -> list[str]:
    """Every address ``url``'s host resolves to, in the resolver's order, all checked; UnsafeUrl
    otherwise. The first one is where a delivery connects (``delivery.pinned_post``)."""
    host, port = check_url_syntax(url, allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"The host {host!r} does not resolve.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # resolver's order
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            raise UnsafeUrl(f"The URL resolves to {reason}")
    if not addresses:
        raise UnsafeUrl(f"The host {host!r} does not resolve.")
    return addresses

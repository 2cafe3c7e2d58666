"""The URL policy of webhook endpoints (SSRF): syntax, the address rules, resolution."""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
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


# IPv6 prefixes whose addresses carry an IPv4 address that a gateway connects to: NAT64's
# well-known and local-use prefixes (RFC 6052, RFC 8215), and IPv4-compatible addresses.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo's client,
    IPv4-compatible), or None when it carries none."""
    packed = ip.packed
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(packed[12:16])
    if ip in _NAT64_LOCAL:  # a /48 prefix: the address sits in bits 48-63 and 72-87
        return ipaddress.IPv4Address(packed[6:8] + packed[9:11])
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # not :: or ::1, which are IPv6's own
        return ipaddress.IPv4Address(packed[12:16])
    return None


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why GigCo must not connect to ``address``, or None when it may. An IPv6 address that
    carries an IPv4 address is judged by that IPv4 address."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        ip = carried_ipv4(ip) or ip
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a link-local, multicast or unspecified address."
    if not ip.is_global and not allow_private:
        return f"{ip} is not a public address."
    return None


class LookupTimedOut(UnsafeUrl):
    """The host's DNS lookup did not answer within its time."""


# The system resolver has no timeout of its own: lookups run here and are waited for with
# one. A lookup that hangs holds one of these threads until the resolver gives up, never a
# caller; when all are held, further lookups time out waiting for one.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gigco-dns")


def resolve_url(url: str, *, allow_private: bool, timeout: float = 5.0) -> list[str]:
    """Every address ``url``'s host resolves to, in the resolver's order, all checked; UnsafeUrl
    otherwise (``LookupTimedOut`` when DNS takes longer than ``timeout`` seconds). The first
    one is where a delivery connects (``transport.pinned_post``)."""
    host, port = check_url_syntax(url, allow_private=allow_private)
    lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(timeout, 0.0))
    except LookupTimeout:
        lookup.cancel()
        raise LookupTimedOut(f"The host {host!r} did not resolve within {timeout:g} s.") from None
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

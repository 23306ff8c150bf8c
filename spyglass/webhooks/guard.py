"""Where a webhook may go: never to this server's own loopback, link-local, private
(RFC 1918, CGNAT), unique-local, multicast, reserved or unspecified addresses, unless an
admin allows it (`SPYGLASS_WEBHOOK_ALLOW_PRIVATE=1`), so that a user cannot aim deliveries
at internal services. Checked when an endpoint is registered and again at each delivery
(DNS may change): a delivery connects to the address that was checked, not to whatever
the name resolves to a moment later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from spyglass.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Carrier-grade NAT (RFC 6598): shared, not public, and not `is_private` in Python.
SHARED = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__("WEBHOOK_TARGET_REFUSED", message, 400)


def is_internal(address: IPAddress) -> bool:
    """Not a public address: loopback, link-local, private, unique-local, unspecified …"""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and address in SHARED)
        or (isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None)
    )


def check_shape(url: str) -> httpx.URL:
    """An absolute http(s) URL with a host and no credentials in it (else 400)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise TargetRefused("Not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused("A webhook URL is an absolute http:// or https:// URL")
    if parsed.userinfo:
        raise TargetRefused("Put no user name or password in a webhook URL")
    return parsed


@dataclass(frozen=True)
class Target:
    """Where to send: the URL, and the address it was checked at (None: let the client
    resolve it, when internal addresses are allowed)."""

    url: httpx.URL
    address: str | None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Check `url` and the addresses its host resolves to now; 400 WEBHOOK_TARGET_REFUSED
    when any of them is internal (and internal targets are not allowed)."""
    parsed = check_shape(url)
    if allow_private:
        return Target(parsed, None)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            raise TargetRefused(f"The host {host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"The host {host} does not resolve")
    internal = [str(a) for a in addresses if is_internal(a)]
    if internal:
        raise TargetRefused(
            f"The host {host} is an internal address ({', '.join(internal)}): webhooks go "
            "only to public addresses unless an admin sets SPYGLASS_WEBHOOK_ALLOW_PRIVATE=1"
        )
    return Target(parsed, str(addresses[0]))

"""The client's address, trusting X-Forwarded-For only when the peer is a configured proxy."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any


def client_ip(scope: Mapping[str, Any], trusted: list[IPv4Network | IPv6Network]) -> str:
    address = _peer(scope)
    if not from_trusted_proxy(scope, trusted):
        return address
    forwarded = header(scope, b"x-forwarded-for")
    if not forwarded:
        return address
    # Walk right to left: each hop was appended by the proxy before it; the first
    # address not belonging to our proxies is the real client.
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else address


def from_trusted_proxy(scope: Mapping[str, Any], trusted: list[IPv4Network | IPv6Network]) -> bool:
    """Whether the request came through one of our proxies (its X-Forwarded-* are believed)."""
    return bool(trusted) and _is_trusted(_peer(scope), trusted)


def _peer(scope: Mapping[str, Any]) -> str:
    peer = scope.get("client")
    return str(peer[0]) if peer else "unknown"


def _is_trusted(address: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None

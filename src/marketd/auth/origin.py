"""Which domain and URI a sign-in message names, for the request that asks (pure; no I/O).

SIWS_DOMAIN / SIWS_URI win when set, and production must set SIWS_DOMAIN: the domain is what
a wallet compares with the site that asks for the signature, so it must be the public name of
the app, fixed by the operator. When they are unset (development, tests, a first `marketd
demo`), the message names the host the client reached this server at: its Host header, or,
from one of TRUSTED_PROXIES, the X-Forwarded-Host / X-Forwarded-Proto its proxy set. Not
HOST/PORT: HOST is a bind address (0.0.0.0 in the image, 127.0.0.1 by default) and PORT the
port inside a container or behind a balancer, neither what a client or its wallet sees.

Challenge and verify resolve the origin the same way, and verify accepts only a message for
the origin it resolves (as well as the one it issued): a challenge fetched through another
host name cannot be turned into a session here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketd.config import Settings
from marketd.core.clientip import from_trusted_proxy, header

_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")
"""host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 address."""


class BadHost(ValueError):
    """The request names no usable host, so there is no domain to sign in for."""


@dataclass(frozen=True)
class SiwsOrigin:
    domain: str
    uri: str


def siws_origin(scope: Mapping[str, Any], settings: Settings) -> SiwsOrigin:
    """The domain and URI of a sign-in message asked for by this request."""
    if settings.siws_domain is not None and settings.siws_uri is not None:
        return SiwsOrigin(settings.siws_domain, settings.siws_uri)
    host, scheme = served_at(scope, settings)
    domain = settings.siws_domain or host
    return SiwsOrigin(domain, settings.siws_uri or f"{scheme}://{domain}")


def served_at(scope: Mapping[str, Any], settings: Settings) -> tuple[str, str]:
    """(host[:port], scheme) the client used to reach this server."""
    host = header(scope, b"host")
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    if from_trusted_proxy(scope, settings.trusted_proxy_networks):
        # The nearest proxy's value (the rightmost): one the client appended is not believed.
        host = _last(header(scope, b"x-forwarded-host")) or host
        scheme = (_last(header(scope, b"x-forwarded-proto")) or scheme).lower()
    if not host and scope.get("server"):
        address, port = scope["server"]
        host = f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"
    host = (host or "").strip().lower()
    if not _HOST.match(host):
        raise BadHost("The request names no valid host (Host header) to sign in for.")
    if scheme not in ("http", "https"):
        raise BadHost("The forwarded protocol is neither http nor https.")
    return host, scheme


def _last(value: str | None) -> str | None:
    if value is None:
        return None
    return value.rsplit(",", 1)[-1].strip() or None


def require_configured_domain(settings: Settings) -> None:
    """Production names its domain itself (see the module docstring): refuse to serve without."""
    if settings.environment == "production" and settings.siws_domain is None:
        raise ValueError(
            "SIWS_DOMAIN must be set in production: the public host of the app, which wallets "
            "compare with the site asking for a signature"
        )

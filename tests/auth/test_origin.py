"""Which domain and URI a sign-in names (pure: ASGI scopes in, origins out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from marketd.app import create_app
from marketd.auth.origin import BadHost, SiwsOrigin, require_configured_domain, siws_origin
from marketd.auth.siws import SiwsError, SiwsMessage, check_origin
from marketd.config import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def scope(*headers: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "client": ("10.0.0.5", 4000),
        "server": ("127.0.0.1", 8000),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        **extra,
    }


def test_the_host_header_is_the_domain_and_the_scheme_the_uri_s() -> None:
    origin = siws_origin(scope(("Host", "Market.Example:8443"), scheme="https"), settings())
    assert origin == SiwsOrigin("market.example:8443", "https://market.example:8443")


def test_without_a_host_header_the_served_address_is_named() -> None:
    assert siws_origin(scope(), settings()).domain == "127.0.0.1:8000"
    ipv6 = scope(server=("::1", 8000))
    assert siws_origin(ipv6, settings()) == SiwsOrigin("[::1]:8000", "http://[::1]:8000")
    with pytest.raises(BadHost):
        siws_origin(scope(server=None), settings())


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    request = scope(
        ("Host", "10.0.0.9:8000"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Proto", "HTTPS"),
    )
    trusting = settings(trusted_proxies="10.0.0.0/8")
    assert siws_origin(request, trusting) == SiwsOrigin(
        "app.example.com", "https://app.example.com"
    )
    assert siws_origin(request, settings()).domain == "10.0.0.9:8000"
    odd = scope(("Host", "app.example.com"), ("X-Forwarded-Proto", "gopher"))
    with pytest.raises(BadHost):
        siws_origin(odd, trusting)


def test_configured_values_win() -> None:
    configured = settings(siws_domain="app.example.com", siws_uri="https://app.example.com")
    assert siws_origin(scope(), configured) == SiwsOrigin(
        "app.example.com", "https://app.example.com"
    )
    uri_only = settings(siws_uri="https://app.example.com")
    assert siws_origin(scope(("Host", "h:1")), uri_only) == SiwsOrigin(
        "h:1", "https://app.example.com"
    )


def test_production_refuses_to_serve_without_a_domain() -> None:
    with pytest.raises(ValueError, match="SIWS_DOMAIN must be set in production"):
        require_configured_domain(settings(environment="production"))
    with pytest.raises(ValueError, match="SIWS_DOMAIN"):
        create_app(settings(environment="production"))
    require_configured_domain(settings(environment="production", siws_domain="app.example.com"))
    require_configured_domain(settings())


def test_a_message_for_another_uri_is_refused() -> None:
    now = datetime.now(UTC)
    message = SiwsMessage("d", "a", "s", "http://d", "1", "localnet", "n" * 8, now, now)
    check_origin(message, "d", "http://d")
    with pytest.raises(SiwsError) as refused:
        check_origin(message, "d", "https://d")
    assert refused.value.reason == "field_mismatch"

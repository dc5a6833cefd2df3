"""Who is calling: the bearer session resolved once per request (the rate limiter shares it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.types import Scope

from marketd.auth.service import AuthService, cached_session_wallet
from marketd.core.clientip import client_ip
from marketd.core.container import Container
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.errors import Unauthorized
from marketd.core.memo import RecentMemo

_STATE_KEY = "auth_wallet"

IDENTITY_MEMO_SECONDS = 30.0


def bearer_token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            header = bytes(value).decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


async def session_wallet(container: Container, token: str) -> str | None:
    """The wallet of a live session token: from the session cache, else from the database
    (which caches it). HTTP requests and WebSocket `auth` messages both resolve through here."""
    wallet = await cached_session_wallet(container.cache, token)
    if wallet is None:
        # A database session only when the session cache does not know the token.
        async with container.database.session(read_only=True) as session:
            service = AuthService(session, container.settings, container.cache)
            wallet = await service.stored_wallet_for_token(token)
    return wallet


async def resolve_wallet(scope: Scope, container: Container) -> str | None:
    """The signed-in wallet for this request (memoised in the ASGI scope)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    if _STATE_KEY in state:
        return str(state[_STATE_KEY]) if state[_STATE_KEY] is not None else None
    token = bearer_token(scope)
    wallet = await session_wallet(container, token) if token is not None else None
    state[_STATE_KEY] = wallet
    return wallet


class RequestCaller:
    """Who sends a request, for the rate limiter (`marketd.core.ratelimit.Caller`).

    Token -> wallet is remembered in the process for half a minute, so a signed-in client's
    reads spend no Redis round trip on who they are (with 5 s, every pause of a reader longer
    than that cost one). The memo decides only whose budget is counted: a route that needs the
    wallet still resolves the session itself (a revoked token is refused at once), and a stale
    entry at worst counts a request against its wallet.
    """

    def __init__(self, container: Container, memo: RecentMemo[str, str] | None = None) -> None:
        self.container = container
        self.wallets = memo if memo is not None else RecentMemo[str, str](IDENTITY_MEMO_SECONDS)

    def address(self, scope: Scope) -> str:
        return client_ip(scope, self.container.settings.trusted_proxy_networks)

    def has_token(self, scope: Scope) -> bool:
        return bearer_token(scope) is not None

    def remembered(self, scope: Scope) -> str | None:
        token = bearer_token(scope)
        return self.wallets.get(token) if token is not None else None

    async def resolve(self, scope: Scope) -> str | None:
        wallet = await resolve_wallet(scope, self.container)
        token = bearer_token(scope)
        if token is not None and wallet is not None:
            self.wallets.put(token, wallet)
        return wallet


async def require_wallet(request: Request) -> str:
    wallet = await resolve_wallet(request.scope, request.app.state.container)
    if wallet is None:
        if bearer_token(request.scope) is None:
            raise Unauthorized("Sign in: send `Authorization: Bearer <token>`.")
        raise Unauthorized("The session token is invalid, expired or revoked.")
    return wallet


CurrentWallet = Annotated[str, Depends(require_wallet)]


async def auth_service(session: SessionDep, container: ContainerDep) -> AuthService:
    return AuthService(session, container.settings, container.cache)


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]

"""Queries over sign-in nonces and sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.models import AuthNonce, AuthSession


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add_nonce(self, nonce: AuthNonce) -> None:
        self.session.add(nonce)

    async def get_nonce(self, nonce: str) -> AuthNonce | None:
        return await self.session.get(AuthNonce, nonce)

    async def consume_nonce(self, nonce: str, now: datetime) -> bool:
        """Mark the nonce used; False when another request already used it (atomic)."""
        result = await self.session.execute(
            update(AuthNonce)
            .where(AuthNonce.nonce == nonce, AuthNonce.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge_nonces(self, before: datetime) -> None:
        await self.session.execute(delete(AuthNonce).where(AuthNonce.expires_at < before))

    def add_session(self, auth_session: AuthSession) -> None:
        self.session.add(auth_session)

    async def active_session(self, token_hash: bytes, now: datetime) -> AuthSession | None:
        return await self.session.scalar(
            select(AuthSession).where(
                AuthSession.token_hash == token_hash,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
        )

    async def revoke(self, token_hash: bytes, now: datetime) -> bool:
        result = await self.session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == token_hash, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

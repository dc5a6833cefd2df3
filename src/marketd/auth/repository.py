"""Queries over sign-in nonces and sessions.

Core statements on the tables, not the ORM: every sign-in runs five of them, and a burst of
sign-ins (clients arriving together) is where the ORM's unit of work, identity map and
update synchronisation cost more than the statements themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.models import AuthNonce, AuthSession

_NONCES = cast(Table, AuthNonce.__table__)
_SESSIONS = cast(Table, AuthSession.__table__)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_nonce(
        self, nonce: str, wallet: str, message: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            insert(_NONCES).values(
                nonce=nonce,
                wallet=wallet,
                message=message,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )

    async def get_nonce(self, nonce: str) -> Row[Any, Any] | None:
        """The issued challenge: `message` and `used_at` (None: never issued)."""
        nonces = _NONCES.c
        query = select(nonces.message, nonces.used_at).where(nonces.nonce == nonce)
        return (await self.session.execute(query)).first()

    async def consume_nonce(self, nonce: str, now: datetime) -> bool:
        """Mark the nonce used; False when another request already used it (atomic)."""
        nonces = _NONCES.c
        result = await self.session.execute(
            update(_NONCES)
            .where(nonces.nonce == nonce, nonces.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge_nonces(self, before: datetime) -> None:
        await self.session.execute(delete(_NONCES).where(_NONCES.c.expires_at < before))

    async def add_session(
        self, token_hash: bytes, wallet: str, now: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            insert(_SESSIONS).values(
                id=uuid.uuid4(),
                token_hash=token_hash,
                wallet=wallet,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def active_session(self, token_hash: bytes, now: datetime) -> Row[Any, Any] | None:
        """The live session's `wallet` and `expires_at` (None: unknown, revoked or expired)."""
        sessions = _SESSIONS.c
        query = select(sessions.wallet, sessions.expires_at).where(
            sessions.token_hash == token_hash,
            sessions.revoked_at.is_(None),
            sessions.expires_at > now,
        )
        return (await self.session.execute(query)).first()

    async def revoke(self, token_hash: bytes, now: datetime) -> bool:
        sessions = _SESSIONS.c
        result = await self.session.execute(
            update(_SESSIONS)
            .where(sessions.token_hash == token_hash, sessions.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

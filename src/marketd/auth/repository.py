"""Queries over sign-in nonces and sessions.

Core statements on the tables, not the ORM: every sign-in runs five of them, and a burst of
sign-ins (clients arriving together) is where the ORM's unit of work, identity map and
update synchronisation cost more than the statements themselves. They are built once, with
bind parameters (see markets.repository).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.models import AuthNonce, AuthSession

_NONCES = cast(Table, AuthNonce.__table__)
_SESSIONS = cast(Table, AuthSession.__table__)
_ADD_NONCE = insert(_NONCES)
_ISSUED = select(_NONCES.c.message, _NONCES.c.used_at).where(_NONCES.c.nonce == bindparam("nonce"))
_CONSUME = (
    update(_NONCES)
    .where(_NONCES.c.nonce == bindparam("issued_nonce"), _NONCES.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_ADD_SESSION = insert(_SESSIONS)
_LIVE_SESSION = select(_SESSIONS.c.wallet, _SESSIONS.c.expires_at).where(
    _SESSIONS.c.token_hash == bindparam("token_hash"),
    _SESSIONS.c.revoked_at.is_(None),
    _SESSIONS.c.expires_at > bindparam("now"),
)
_REVOKE = (
    update(_SESSIONS)
    .where(_SESSIONS.c.token_hash == bindparam("hash"), _SESSIONS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_nonce(
        self, nonce: str, wallet: str, message: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            _ADD_NONCE,
            {
                "nonce": nonce,
                "wallet": wallet,
                "message": message,
                "issued_at": issued_at,
                "expires_at": expires_at,
            },
        )

    async def get_nonce(self, nonce: str) -> Row[Any, Any] | None:
        """The issued challenge: `message` and `used_at` (None: never issued)."""
        return (await self.session.execute(_ISSUED, {"nonce": nonce})).first()

    async def consume_nonce(self, nonce: str, now: datetime) -> bool:
        """Mark the nonce used; False when another request already used it (atomic)."""
        result = await self.session.execute(_CONSUME, {"issued_nonce": nonce, "now": now})
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge_nonces(self, before: datetime) -> None:
        await self.session.execute(delete(_NONCES).where(_NONCES.c.expires_at < before))

    async def add_session(
        self, token_hash: bytes, wallet: str, now: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            _ADD_SESSION,
            {
                "id": uuid.uuid4(),
                "token_hash": token_hash,
                "wallet": wallet,
                "created_at": now,
                "expires_at": expires_at,
            },
        )

    async def active_session(self, token_hash: bytes, now: datetime) -> Row[Any, Any] | None:
        """The live session's `wallet` and `expires_at` (None: unknown, revoked or expired)."""
        params = {"token_hash": token_hash, "now": now}
        return (await self.session.execute(_LIVE_SESSION, params)).first()

    async def revoke(self, token_hash: bytes, now: datetime) -> bool:
        result = await self.session.execute(_REVOKE, {"hash": token_hash, "now": now})
        return bool(getattr(result, "rowcount", 0) == 1)

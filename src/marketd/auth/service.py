"""Sign-in use cases: issue a challenge, verify it into a session, resolve and revoke sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.auth.origin import SiwsOrigin
from marketd.auth.repository import AuthRepository
from marketd.auth.siws import (
    SiwsError,
    SiwsMessage,
    check_against_issued,
    check_origin,
    parse_message,
    parse_wallet,
    verify_signature,
)
from marketd.config import Settings
from marketd.core import metrics
from marketd.core.cache import Cache
from marketd.core.errors import Problem, Unauthorized
from marketd.core.memo import Throttle, spread
from marketd.users.service import UserService

_MALFORMED = {"malformed_message", "malformed_signature", "invalid_wallet"}


class SignInRejected(Unauthorized):
    slug, title = "sign-in-rejected", "Sign-in rejected"


class MalformedSignIn(Problem):
    status, slug, title = 422, "malformed-sign-in", "Malformed sign-in"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now() -> datetime:
    # Millisecond precision: the issued message carries milliseconds, and the stored copy
    # must compare equal to what the client signs.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class IssuedSession:
    token: str
    wallet: str
    expires_at: datetime


SESSION_CACHE_SECONDS = 300
"""How long a resolved session stays in the cache (minus up to 25% jitter). Logout deletes the
entry and expiry is checked on every read, so the lifetime only decides how often an active
client's session is read from PostgreSQL again (under the load test a 60 s lifetime sent ~20
session reads a second to the database)."""


def _session_key(token_hash: bytes) -> str:
    return "session:" + token_hash.hex()


async def cached_session_wallet(cache: Cache, token: str) -> str | None:
    """The wallet of a session seen within the last SESSION_CACHE_SECONDS (logout drops it),
    without a database session: most requests of a signed-in client stop here."""
    cached = await cache.get(_session_key(hash_token(token)))
    if cached is not None and datetime.fromisoformat(cached["expires_at"]) > datetime.now(UTC):
        return str(cached["wallet"])
    return None


NONCE_PURGE = Throttle(60.0)
"""Nonces expired over a day ago are deleted by a challenge at most once a minute per process
(a statement on every challenge would be wasted: there is rarely anything to delete)."""


class AuthService:
    """`cache` keeps token -> wallet for a few minutes so most requests resolve their session
    without a database round trip; logout deletes the entry (shared through Redis, so every
    instance sees the revocation). Required: a logout that skipped it would leave the session
    usable from the cache until it expires."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        cache: Cache,
        nonce_purge: Throttle = NONCE_PURGE,
    ) -> None:
        self.session = session
        self.settings = settings
        self.cache = cache
        self.nonce_purge = nonce_purge
        self.repository = AuthRepository(session)

    async def challenge(self, wallet: str, origin: SiwsOrigin) -> SiwsMessage:
        try:
            parse_wallet(wallet)
        except SiwsError as exc:
            raise MalformedSignIn(str(exc), reason=exc.reason) from exc
        issued_at = _now()
        message = SiwsMessage(
            domain=origin.domain,
            address=wallet,
            statement=self.settings.siws_statement,
            uri=origin.uri,
            version="1",
            chain_id=self.settings.siws_chain_id,
            nonce=secrets.token_hex(16),
            issued_at=issued_at,
            expiration_time=issued_at + timedelta(seconds=self.settings.nonce_ttl_seconds),
        )
        await self.repository.add_nonce(
            message.nonce,
            wallet,
            message.to_text(),
            message.issued_at,
            message.expiration_time,
        )
        if self.nonce_purge.due():
            await self.repository.purge_nonces(issued_at - timedelta(days=1))
        await self.session.commit()
        return message

    async def verify(self, text: str, signature: str, origin: SiwsOrigin) -> IssuedSession:
        """A session for a message this server issued, for the origin this request resolves
        (`origin`, the same way the challenge did), signed by its wallet."""
        now = datetime.now(UTC)
        try:
            received = parse_message(text)
            issued_row = await self.repository.get_nonce(received.nonce)
            if issued_row is None:
                raise SiwsError("unknown_nonce", "the nonce was not issued by this server")
            if issued_row.used_at is not None:
                raise SiwsError("nonce_used", "the nonce has already been used")
            check_against_issued(received, parse_message(issued_row.message), now)
            check_origin(received, origin.domain, origin.uri)
            verify_signature(text, signature, received.address)
            if not await self.repository.consume_nonce(received.nonce, now):
                raise SiwsError("nonce_used", "the nonce has already been used")
        except SiwsError as exc:
            metrics.SIGN_INS.labels(exc.reason).inc()
            await self.session.rollback()
            if exc.reason in _MALFORMED:
                raise MalformedSignIn(str(exc), reason=exc.reason) from exc
            raise SignInRejected(str(exc), reason=exc.reason) from exc
        token = secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=self.settings.session_ttl_seconds)
        await self.repository.add_session(hash_token(token), received.address, now, expires_at)
        await UserService(self.session).touch(received.address, now)
        await self.session.commit()
        metrics.SIGN_INS.labels("ok").inc()
        return IssuedSession(token, received.address, expires_at)

    async def stored_wallet_for_token(self, token: str) -> str | None:
        """The session's wallet from the database (then cached), past the session cache."""
        token_hash, now = hash_token(token), datetime.now(UTC)
        found = await self.repository.active_session(token_hash, now)
        if found is None:
            return None
        remaining = int((found.expires_at - now).total_seconds())
        await self.cache.set(
            _session_key(token_hash),
            {"wallet": found.wallet, "expires_at": found.expires_at.isoformat()},
            # Up to 25% shorter at random: sessions cached together (clients that signed in
            # together) must not all fall back to the database together.
            ttl_seconds=max(1, min(int(SESSION_CACHE_SECONDS * spread(0.25)), remaining)),
        )
        return str(found.wallet)

    async def logout(self, token: str) -> None:
        token_hash = hash_token(token)
        revoked = await self.repository.revoke(token_hash, datetime.now(UTC))
        await self.session.commit()
        await self.cache.delete(_session_key(token_hash))
        if not revoked:
            raise Unauthorized("The session is unknown or already ended.")

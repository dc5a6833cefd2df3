"""Snapshot test helpers: markets and posts written straight to the database at chosen times,
and a snapshot configuration that never reads the process environment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from solders.keypair import Keypair

from marketd.chain.addresses import new_market_id
from marketd.config import SnapshotSettings
from marketd.models import Discussion, DisputeVote, Market, ProposalVote, User
from marketd.snapshots.dependencies import get_snapshot_config
from marketd.snapshots.endpoints import router
from marketd.snapshots.service import SnapshotService
from marketd.snapshots.stores import SnapshotStores, build_stores

DAY = date(2026, 3, 14)


def snapshot_settings(**overrides: Any) -> SnapshotSettings:
    values: dict[str, Any] = {
        "ipfs_api_url": None,
        "pinning_service_url": None,
        "ipfs_gateways": [],
        "ipfs_upload_attempts": 1,
        "ipfs_upload_backoff_seconds": 0.01,
        "snapshot_lock_ttl_seconds": 30.0,
    }
    return SnapshotSettings(**(values | overrides))


def at(day: date, hours: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


@dataclass
class Snap:
    api: Any
    config: SnapshotSettings

    @property
    def container(self) -> Any:
        return self.api.container

    async def market(self, state: str = "ACTIVE", created_at: datetime | None = None) -> str:
        """A market created (by default) the day before ``DAY``."""
        market_id, creator = new_market_id(), str(Keypair().pubkey())
        async with self.container.database.session() as session:
            session.add(User(wallet=creator))  # the platform's markets reference users
            await session.flush()
            session.add(
                Market(
                    id=market_id,
                    on_chain_address=str(Keypair().pubkey()),
                    question="Will it snow?",
                    creator_wallet=creator,
                    state=state,
                    created_at=created_at or at(DAY, -24),
                )
            )
            await session.commit()
        return market_id

    async def post(
        self,
        market_id: str,
        content: str,
        created_at: datetime,
        *,
        wallet: str | None = None,
        deleted: bool = False,
    ) -> str:
        post_id, author = uuid.uuid4(), wallet or str(Keypair().pubkey())
        async with self.container.database.session() as session:
            await session.merge(User(wallet=author))
            await session.flush()
            session.add(
                Discussion(
                    id=post_id,
                    market_id=market_id,
                    user_wallet=author,
                    content=content,
                    created_at=created_at,
                    deleted_at=created_at + timedelta(minutes=1) if deleted else None,
                )
            )
            await session.commit()
        return str(post_id)

    async def vote(self, market_id: str, kind: str, vote: bool) -> None:
        table = ProposalVote if kind == "proposal" else DisputeVote
        async with self.container.database.session() as session:
            voter = str(Keypair().pubkey())
            session.add(User(wallet=voter))
            await session.flush()
            session.add(table(market_id=market_id, user_wallet=voter, vote=vote))
            await session.commit()

    def stores(self, config: SnapshotSettings | None = None) -> SnapshotStores:
        return build_stores(self.container.settings, config or self.config)

    def service(self, stores: SnapshotStores, config: SnapshotSettings | None = None) -> Any:
        config = config or self.config
        return SnapshotService(self.container.database, self.container.bus, stores, config)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        result: list[Any] = await self.api.execute(sql, **params)
        return result

    def serve(self, config: SnapshotSettings | None = None) -> None:
        """Mount the snapshot routes on the test app, with ``config``."""
        app = self.api.client._transport.app
        if not any(getattr(r, "path", "") == "/api/snapshots/{cid}" for r in app.routes):
            app.include_router(router)
        chosen = config or self.config
        app.dependency_overrides[get_snapshot_config] = lambda: chosen

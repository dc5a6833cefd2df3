"""Every query of the snapshots domain.

The snapshotter reads a whole day for every live market at once, so the reads here are batched
(one query for the day's posts, one per other kind of row for a chunk of markets) instead of
going through the discussions and votes services one market at a time: at 1,000 markets that
is the difference between a few queries and several thousand.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import (
    Discussion,
    DisputeVote,
    IpfsAnchor,
    Market,
    ProposalVote,
    SnapshotPin,
)
from marketd.snapshots.rules import Post, VoteCounts, vote_counts

CHUNK = 500  # ids per IN (...) list: well under SQLite's and asyncpg's parameter limits


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass(frozen=True, slots=True)
class PinnedSnapshot:
    """A snapshot just marked pinned (what its bus event announces)."""

    market_id: str
    day: date
    cid: str
    discussions_count: int


@dataclass(frozen=True, slots=True)
class MarketTallies:
    proposal: VoteCounts
    dispute: VoteCounts


class SnapshotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- markets and the day's content -------------------------------------------------

    async def market_ids(
        self, states: Collection[str], created_before: datetime, market_id: str | None = None
    ) -> list[str]:
        """Markets in ``states`` that existed before ``created_before`` (or just ``market_id``
        when given and matching)."""
        query = select(Market.id).where(
            Market.state.in_(list(states)), Market.created_at < created_before
        )
        if market_id is not None:
            query = query.where(Market.id == market_id)
        return list((await self.session.scalars(query.order_by(Market.id))).all())

    async def market_state(self, market_id: str) -> str | None:
        state: str | None = await self.session.scalar(
            select(Market.state).where(Market.id == market_id)
        )
        return state

    async def markets_done(self, day: date, market_ids: Sequence[str]) -> set[str]:
        """Markets that already have a snapshot row (any status) for ``day``."""
        done: set[str] = set()
        for chunk in _chunks(market_ids):
            query = select(SnapshotPin.market_id).where(
                SnapshotPin.snapshot_date == day, SnapshotPin.market_id.in_(chunk)
            )
            done.update((await self.session.scalars(query)).all())
        return done

    async def previous_cids(self, day: date, market_ids: Sequence[str]) -> dict[str, str]:
        """Each market's newest snapshot CID dated before ``day``."""
        found: dict[str, str] = {}
        for chunk in _chunks(market_ids):
            latest = (
                select(SnapshotPin.market_id, func.max(SnapshotPin.snapshot_date).label("day"))
                .where(SnapshotPin.snapshot_date < day, SnapshotPin.market_id.in_(chunk))
                .group_by(SnapshotPin.market_id)
                .subquery()
            )
            query = select(SnapshotPin.market_id, SnapshotPin.cid).join(
                latest,
                and_(
                    SnapshotPin.market_id == latest.c.market_id,
                    SnapshotPin.snapshot_date == latest.c.day,
                ),
            )
            found.update({row.market_id: row.cid for row in await self.session.execute(query)})
        return found

    async def day_posts(
        self, states: Collection[str], start: datetime, end: datetime, market_id: str | None = None
    ) -> list[tuple[str, Post]]:
        """Live (not deleted) posts created in ``[start, end)`` on markets in ``states`` that
        existed before ``end`` (or on ``market_id`` alone), as (market id, post): one query for
        the whole day instead of lists of market ids."""
        query = (
            select(
                Discussion.market_id,
                Discussion.id,
                Discussion.user_wallet,
                Discussion.content,
                Discussion.created_at,
            )
            .join(Market, Market.id == Discussion.market_id)
            .where(
                Market.state.in_(list(states)),
                Market.created_at < end,
                Discussion.deleted_at.is_(None),
                Discussion.created_at >= start,
                Discussion.created_at < end,
            )
        )
        if market_id is not None:
            query = query.where(Discussion.market_id == market_id)
        result = await self.session.execute(query)
        return [
            (market, Post(str(post_id), wallet, content, created_at))
            for market, post_id, wallet, content, created_at in result
        ]

    async def tallies(self, market_ids: Sequence[str]) -> dict[str, MarketTallies]:
        """Proposal and dispute tallies (one vote per wallet per market, as stored)."""
        counts: dict[str, dict[str, dict[bool, int]]] = {
            market_id: {"proposal": {}, "dispute": {}} for market_id in market_ids
        }
        tables: dict[str, Any] = {"proposal": ProposalVote, "dispute": DisputeVote}
        for kind, table in tables.items():
            for chunk in _chunks(market_ids):
                query = (
                    select(table.market_id, table.vote, func.count())
                    .where(table.market_id.in_(chunk))
                    .group_by(table.market_id, table.vote)
                )
                for market_id, vote, count in await self.session.execute(query):
                    counts[market_id][kind][bool(vote)] = int(count)
        return {
            market_id: MarketTallies(vote_counts(kinds["proposal"]), vote_counts(kinds["dispute"]))
            for market_id, kinds in counts.items()
        }

    # --- snapshot rows -----------------------------------------------------------------

    async def insert_pending(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert pending rows; a row whose (market, day) exists already is left alone, so two
        runs racing past the lock still create one snapshot per market and day. ``rows`` must
        not be empty."""
        statement = upsert_insert(self.session)(SnapshotPin).on_conflict_do_nothing(
            index_elements=[SnapshotPin.market_id, SnapshotPin.snapshot_date]
        )
        await self.session.execute(statement, list(rows))

    async def pending_ids(self, market_id: str | None = None) -> list[uuid.UUID]:
        """Rows created but not yet pinned (this run's, or a crashed run's), oldest first."""
        query = select(SnapshotPin.id).where(SnapshotPin.status == "pending")
        if market_id is not None:
            query = query.where(SnapshotPin.market_id == market_id)
        query = query.order_by(SnapshotPin.snapshot_date, SnapshotPin.market_id)
        return list((await self.session.scalars(query)).all())

    async def load(self, pin_ids: Sequence[uuid.UUID]) -> list[SnapshotPin]:
        """The rows (documents included) of ``pin_ids``, in that order."""
        query = select(SnapshotPin).where(SnapshotPin.id.in_(list(pin_ids)))
        by_id = {pin.id: pin for pin in (await self.session.scalars(query)).all()}
        return [by_id[pin_id] for pin_id in pin_ids if pin_id in by_id]

    async def mark_pinned(
        self, pin_ids: Sequence[uuid.UUID], stores: list[str], now: datetime
    ) -> list[PinnedSnapshot]:
        """Pending -> pinned, and an ``ipfs_anchors`` row for each. Rows another run marked
        first are left out (no second anchor)."""
        if not pin_ids:
            return []
        statement = (
            update(SnapshotPin)
            .where(SnapshotPin.id.in_(list(pin_ids)), SnapshotPin.status == "pending")
            .values(status="pinned", stores=stores, pinned_at=now)
            .returning(
                SnapshotPin.market_id,
                SnapshotPin.snapshot_date,
                SnapshotPin.cid,
                SnapshotPin.discussions_count,
            )
            .execution_options(synchronize_session=False)
        )
        pinned = [PinnedSnapshot(*row) for row in await self.session.execute(statement)]
        if pinned:
            anchors = [
                {
                    "id": uuid.uuid4(),
                    "market_id": row.market_id,
                    "ipfs_hash": row.cid,
                    "discussions_count": row.discussions_count,
                    "snapshot_date": row.day,
                    "created_at": now,
                }
                for row in pinned
            ]
            await self.session.execute(insert(IpfsAnchor), anchors)
        return pinned

    async def page(self, market_id: str, limit: int, before: date | None) -> Sequence[SnapshotPin]:
        """A market's snapshots, newest day first."""
        query = select(SnapshotPin).where(SnapshotPin.market_id == market_id)
        if before is not None:
            query = query.where(SnapshotPin.snapshot_date < before)
        query = query.order_by(SnapshotPin.snapshot_date.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def is_known_cid(self, cids: Collection[str]) -> bool:
        """Whether any spelling in ``cids`` is a snapshot or an anchor of ours."""
        wanted = list(cids)
        pin = await self.session.scalar(
            select(SnapshotPin.id).where(SnapshotPin.cid.in_(wanted)).limit(1)
        )
        if pin is not None:
            return True
        anchor = await self.session.scalar(
            select(IpfsAnchor.id).where(IpfsAnchor.ipfs_hash.in_(wanted)).limit(1)
        )
        return anchor is not None

    # --- retention ---------------------------------------------------------------------

    async def prunable(self, cutoff: date) -> list[SnapshotPin]:
        """Pinned snapshots dated before ``cutoff``."""
        query = (
            select(SnapshotPin)
            .where(SnapshotPin.status == "pinned", SnapshotPin.snapshot_date < cutoff)
            .order_by(SnapshotPin.snapshot_date, SnapshotPin.market_id)
        )
        return list((await self.session.scalars(query)).all())

    async def mark_pruned(self, pin_ids: Sequence[uuid.UUID], now: datetime) -> int:
        if not pin_ids:
            return 0
        statement = (
            update(SnapshotPin)
            .where(SnapshotPin.id.in_(list(pin_ids)), SnapshotPin.status == "pinned")
            .values(status="pruned", pruned_at=now)
            .execution_options(synchronize_session=False)
        )
        result: Any = await self.session.execute(statement)
        return int(result.rowcount)

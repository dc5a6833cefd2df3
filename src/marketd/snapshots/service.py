"""Snapshot use cases: archive a day, complete crashed runs, prune, list, serve content.

A day's run has two phases, each safe to repeat:

1. *prepare*: for every live market without a row for the day, build the document, compute its
   CID and insert a ``pending`` row holding the document (one transaction; the unique
   (market_id, snapshot_date) makes a repeat, or a racing instance, add nothing);
2. *pin*: upload every ``pending`` row, whichever day it belongs to (so a crashed run is
   completed by the next), then mark it ``pinned`` and write its ``ipfs_anchors`` row in one
   transaction, and publish a ``snapshot`` event. A crash between upload and commit leaves the
   row pending; the next run uploads the same bytes again (an idempotent pin) and commits.

Both phases work in bulk, as a day's run covers every live market at once: *prepare* reads the
day's posts with one query and inserts every row with one statement; *pin* uploads a batch of
rows with one ``put_many`` (one flush of the local store, a few CAR imports on a Kubo node) and
records it with one UPDATE and one INSERT.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from marketd.config import SnapshotSettings
from marketd.core.bus import EventBus
from marketd.core.database import Database
from marketd.core.errors import BadGateway, BadRequest, Conflict, NotFound
from marketd.core.events import SnapshotPinned, publish
from marketd.core.metrics import SNAPSHOTS_FAILED, SNAPSHOTS_PINNED
from marketd.core.pagination import decode_cursor, encode_cursor
from marketd.core.schemas import Page
from marketd.ipfs.blockstore import put_many
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str, parse_cid
from marketd.ipfs.errors import (
    CidMismatchError,
    ContentUnavailableError,
    InvalidCidError,
    IpfsError,
)
from marketd.ipfs.profile import DEFAULT_PROFILE, profile_by_name
from marketd.models import SnapshotPin
from marketd.snapshots.repository import MarketTallies, PinnedSnapshot, SnapshotRepository
from marketd.snapshots.rules import (
    Post,
    SnapshotInput,
    Window,
    day_window,
    group_posts,
    is_complete,
    retention_cutoff,
    snapshot_bytes,
)
from marketd.snapshots.schemas import SnapshotOut
from marketd.snapshots.stores import SnapshotStores

log = structlog.get_logger("marketd.snapshots")

PIN_BATCH = 200  # rows uploaded with one put_many, then committed together


class DayNotOver(Conflict):
    slug, title = "day-not-over", "Day not over"


class MarketNotSnapshotted(Conflict):
    slug, title = "market-not-snapshotted", "Market not snapshotted"


class InvalidCid(BadRequest):
    status, slug, title = 422, "invalid-cid", "Invalid CID"


class SnapshotUnavailable(BadGateway):
    slug, title = "snapshot-unavailable", "Snapshot content unavailable"


@dataclass
class SnapshotRun:
    day: date
    created: int = 0
    pinned: list[PinnedSnapshot] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # "<market>/<day>" -> error


@dataclass
class PruneResult:
    cutoff: date
    pruned: list[str] = field(default_factory=list)  # CIDs
    failed: dict[str, str] = field(default_factory=dict)  # CID -> error


class SnapshotService:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        stores: SnapshotStores,
        config: SnapshotSettings,
    ) -> None:
        self.database = database
        self.bus = bus
        self.stores = stores
        self.config = config

    # --- archiving -----------------------------------------------------------------------

    async def run(
        self,
        day: date,
        market_id: str | None = None,
        *,
        now: datetime | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SnapshotRun:
        """Snapshot ``day`` for every live market (or one), then pin everything pending."""
        now = now or datetime.now(UTC)
        if not is_complete(day, now):
            raise DayNotOver(
                f"{day.isoformat()} (UTC) has not ended; a day is snapshotted once, when over."
            )
        run = SnapshotRun(day=day)
        run.created = await self.prepare(day, market_id)
        await self.pin_pending(run, market_id, should_stop)
        await log.ainfo(
            "snapshot run",
            day=day.isoformat(),
            created=run.created,
            pinned=len(run.pinned),
            failed=len(run.failed),
        )
        return run

    async def prepare(self, day: date, market_id: str | None = None) -> int:
        """Insert a pending row for each live market lacking one for ``day``; return how many
        this call wrote (a racing instance's rows make some of them no-ops)."""
        states = [state.value for state in self.config.snapshot_market_states]
        async with self.database.session() as session:
            repository = SnapshotRepository(session)
            if market_id is not None:
                await self._require_snapshottable(repository, market_id, states)
            window = day_window(day)
            # A market created after the day has no discussion of that day to archive.
            market_ids = await repository.market_ids(states, window.end, market_id)
            done = await repository.markets_done(day, market_ids)
            todo = [m for m in market_ids if m not in done]
            if not todo:
                return 0
            previous = await repository.previous_cids(day, todo)
            posts = group_posts(
                await repository.day_posts(states, window.start, window.end, market_id)
            )
            tallies = await repository.tallies(todo)
            # CPU work (documents, CIDs: ~1 ms a market) off the event loop the worker shares.
            rows = await asyncio.to_thread(
                _pending_rows, day, window, todo, posts, previous, tallies
            )
            await repository.insert_pending(rows)
            await session.commit()
        return len(rows)

    async def _require_snapshottable(
        self, repository: SnapshotRepository, market_id: str, states: Sequence[str]
    ) -> None:
        state = await repository.market_state(market_id)
        if state is None:
            raise NotFound(f"No market with id {market_id}.")
        if state not in states:
            raise MarketNotSnapshotted(
                f"Market {market_id} is {state}; snapshots cover {', '.join(states)}.",
                state=state,
            )

    async def pin_pending(
        self,
        run: SnapshotRun,
        market_id: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Upload and record every pending row (of ``market_id``, or all), a batch at a time
        (only one batch of documents is held in memory)."""
        async with self.database.session() as session:
            pending = await SnapshotRepository(session).pending_ids(market_id)
        for start in range(0, len(pending), PIN_BATCH):
            if should_stop():
                await log.awarning("snapshot run stopped: lock lost", left=len(pending) - start)
                return
            async with self.database.session() as session:
                batch = await SnapshotRepository(session).load(pending[start : start + PIN_BATCH])
            uploaded = await self._upload(batch, run)
            pinned = await self._record_pinned(uploaded)
            SNAPSHOTS_PINNED.inc(len(pinned))
            for snapshot in pinned:
                run.pinned.append(snapshot)
                await publish(
                    self.bus,
                    SnapshotPinned(
                        market_id=snapshot.market_id,
                        cid=snapshot.cid,
                        day=snapshot.day,
                        discussions_count=snapshot.discussions_count,
                    ),
                )

    async def _upload(self, batch: Sequence[SnapshotPin], run: SnapshotRun) -> list[SnapshotPin]:
        """Store a batch (one ``put_many`` per layout profile); the rows whose upload was
        confirmed under their recorded CID. The others stay pending, listed in ``run.failed``."""
        by_profile: dict[str, list[SnapshotPin]] = {}
        for pin in batch:
            by_profile.setdefault(pin.layout_profile, []).append(pin)
        uploaded: list[SnapshotPin] = []
        for profile_name, pins in by_profile.items():
            try:
                stored = await put_many(
                    self.stores.store,
                    [pin.document for pin in pins],
                    profile_by_name(profile_name),
                    concurrency=self.config.snapshot_concurrency,
                )
            except (IpfsError, OSError) as exc:
                reason = "cid_mismatch" if isinstance(exc, CidMismatchError) else "upload"
                await log.aerror("snapshot upload failed", count=len(pins), error=repr(exc))
                for pin in pins:
                    _fail(run, pin, repr(exc), reason)
                continue
            for pin, content in zip(pins, stored, strict=True):
                if content.cid_str == pin.cid:
                    uploaded.append(pin)
                    continue
                await log.aerror("snapshot CID mismatch", cid=pin.cid, stored=content.cid_str)
                _fail(
                    run,
                    pin,
                    f"store returned {content.cid_str}, recorded {pin.cid}",
                    "cid_mismatch",
                )
        return uploaded

    async def _record_pinned(self, uploaded: Sequence[SnapshotPin]) -> list[PinnedSnapshot]:
        async with self.database.session() as session:
            pinned = await SnapshotRepository(session).mark_pinned(
                [pin.id for pin in uploaded], self.stores.names, datetime.now(UTC)
            )
            await session.commit()
        return pinned

    # --- retention -----------------------------------------------------------------------

    async def prune(self, today: date) -> PruneResult:
        """Unpin snapshots past retention from every store and mark them pruned."""
        result = PruneResult(cutoff=retention_cutoff(today, self.config.snapshot_retention_days))
        async with self.database.session() as session:
            candidates = await SnapshotRepository(session).prunable(result.cutoff)
        unpinned: list[uuid.UUID] = []
        for pin in candidates:
            try:
                await self.stores.store.unpin(pin.cid)
            except (IpfsError, OSError) as exc:
                await log.aerror("snapshot unpin failed", cid=pin.cid, error=repr(exc))
                result.failed[pin.cid] = repr(exc)
                continue
            unpinned.append(pin.id)
            result.pruned.append(pin.cid)
        async with self.database.session() as session:
            await SnapshotRepository(session).mark_pruned(unpinned, datetime.now(UTC))
            await session.commit()
        await log.ainfo(
            "snapshot prune",
            cutoff=result.cutoff.isoformat(),
            pruned=len(result.pruned),
            failed=len(result.failed),
        )
        return result

    # --- reads ---------------------------------------------------------------------------

    async def market_snapshots(
        self, market_id: str, limit: int, cursor: str | None
    ) -> Page[SnapshotOut]:
        before = None
        if cursor:
            (before,) = decode_cursor(cursor, "snapshots", (date,))
        async with self.database.session() as session:
            rows = await SnapshotRepository(session).page(market_id, limit + 1, before)
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor("snapshots", [rows[limit - 1].snapshot_date.isoformat()])
        return Page[SnapshotOut](
            items=[SnapshotOut.model_validate(row) for row in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def content(self, cid_text: str) -> tuple[str, bytes]:
        """The canonical CID and the verified bytes of a snapshot (or anchor) of ours."""
        try:
            cid = parse_cid(cid_text)
        except InvalidCidError as exc:
            raise InvalidCid(f"{cid_text!r} is not a CID.") from exc
        canonical = cid_to_str(cid)
        async with self.database.session() as session:
            known = await SnapshotRepository(session).is_known_cid({cid_text, canonical})
        if not known:
            raise NotFound(f"No snapshot with CID {canonical}.")
        try:
            return canonical, await self.stores.fetch(cid)
        except ContentUnavailableError as exc:
            raise SnapshotUnavailable(
                f"Snapshot {canonical} is known but no source served content matching its CID "
                "(not held locally, every configured gateway failed or served wrong bytes).",
                cid=canonical,
                gateways=list(self.stores.reader.gateways) if self.stores.reader else [],
                reason=str(exc),
            ) from exc


def _fail(run: SnapshotRun, pin: SnapshotPin, error: str, reason: str) -> None:
    run.failed[f"{pin.market_id}/{pin.snapshot_date.isoformat()}"] = error
    SNAPSHOTS_FAILED.labels(reason=reason).inc()


def _pending_rows(
    day: date,
    window: Window,
    markets: Sequence[str],
    posts: dict[str, list[Post]],
    previous: dict[str, str],
    tallies: dict[str, MarketTallies],
) -> list[dict[str, Any]]:
    """The ``pending`` rows of ``markets`` for ``day``: each document, its CID and size."""
    created_at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for market in markets:
        snapshot = SnapshotInput(
            market_id=market,
            day=day,
            posts=posts.get(market, []),
            previous_cid=previous.get(market),
            proposal=tallies[market].proposal,
            dispute=tallies[market].dispute,
        )
        data = snapshot_bytes(snapshot)
        rows.append(
            {
                "id": uuid.uuid4(),
                "market_id": market,
                "snapshot_date": day,
                "window_start": window.start,
                "window_end": window.end,
                "cid": cid_to_str(file_cid(data, DEFAULT_PROFILE)),
                "layout_profile": DEFAULT_PROFILE.name,
                "size": len(data),
                "previous_cid": snapshot.previous_cid,
                "discussions_count": len(snapshot.posts),
                "document": data,
                "status": "pending",
                "stores": [],
                "created_at": created_at,
            }
        )
    return rows

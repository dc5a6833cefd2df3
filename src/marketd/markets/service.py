"""Market use cases: browse, read, propose, price history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from solders.pubkey import Pubkey
from sqlalchemy import RowMapping, Table
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import looks_like_address, market_address, new_market_id
from marketd.config import Settings
from marketd.core.bus import EventBus
from marketd.core.errors import BadRequest, NotFound
from marketd.core.events import MarketCreated, publish
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page
from marketd.markets import rules
from marketd.markets.cache import MarketCache
from marketd.markets.repository import MarketFilter, MarketRepository
from marketd.markets.schemas import (
    CARD_COLUMNS,
    LIVE_COLUMNS,
    CategoriesOut,
    CategoryOut,
    MarketCreate,
    MarketDetailOut,
    MarketOut,
    MarketSort,
    price_history_json,
)
from marketd.models import Market
from marketd.shared.market_state import MarketState
from marketd.users.repository import UserRepository

_CURSOR_TYPES: dict[MarketSort, tuple[type, type]] = {
    MarketSort.NEWEST: (datetime, str),
    MarketSort.VOLUME: (int, str),
    MarketSort.CLOSING_SOON: (datetime, str),
}


_MARKET_COLUMNS = cast(Table, Market.__table__).columns


RELATED_CANDIDATES = 200
"""Related markets are ranked among at most this many of the same category or sharing a tag
(active, same-category and more traded ones are read first)."""


class InvalidRange(BadRequest):
    status, slug, title = 422, "invalid-range", "Invalid range"


def _sort_key(sort: MarketSort, row: RowMapping) -> list[Any]:
    if sort is MarketSort.NEWEST:
        return [row["created_at"], row["id"]]
    if sort is MarketSort.VOLUME:
        return [row["total_volume"], row["id"]]
    return [row["closes_at"], row["id"]]


class MarketService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        bus: EventBus,
        cache: MarketCache,
    ) -> None:
        self.session = session
        self.settings = settings
        self.bus = bus
        self.cache = cache
        self.repository = MarketRepository(session)

    async def list_markets(
        self, filters: MarketFilter, sort: MarketSort, limit: int, cursor: str | None
    ) -> Page[MarketOut]:
        after = decode_cursor(cursor, sort.value, _CURSOR_TYPES[sort]) if cursor else None
        rows = await self.repository.page(filters, sort, limit + 1, after, datetime.now(UTC))
        page, next_cursor = split_page(rows, limit, sort.value, lambda row: _sort_key(sort, row))
        items = [MarketOut.of_row(row) for row in page]
        return Page[MarketOut](items=items, next_cursor=next_cursor)

    async def get_market(self, market_id: str) -> MarketDetailOut:
        row = await self.repository.detail(market_id, datetime.now(UTC))
        if row is None:
            raise NotFound(f"No market with id {market_id}.")
        return MarketDetailOut.of_row(row)

    async def resolve(self, address: str) -> str:
        """The id of the market whose account is at `address` (a base58 address, which is
        never the shape of an id: `looks_like_address`); `address` itself when no market has
        it, so the read that follows answers 404 naming what was asked for."""
        return await self.repository.id_by_address(address) or address

    async def categories(self) -> CategoriesOut:
        counts: dict[str | None, dict[MarketState, int]] = {}
        for category, state, count in await self.repository.category_counts():
            by_state = counts.setdefault(category, dict.fromkeys(MarketState, 0))
            by_state[MarketState(state)] += count
        items = [
            CategoryOut(category=category, total=sum(by_state.values()), by_state=by_state)
            for category, by_state in counts.items()
        ]
        items.sort(key=lambda item: (-item.total, item.category is None, item.category or ""))
        return CategoriesOut(items=items)

    async def trending(self, limit: int) -> Page[MarketOut]:
        """ACTIVE markets by `rules.trending_score`; when fewer than `limit` traded in the
        window, the most traded other ACTIVE markets follow."""
        now = datetime.now(UTC)
        scored = sorted(
            (
                (
                    rules.trending_score(
                        volume,
                        rules.price_change(
                            Decimal(price), None if opening is None else Decimal(opening)
                        ),
                    ),
                    market_id,
                )
                for market_id, price, volume, opening in await self.repository.trending_candidates(
                    now
                )
            ),
            reverse=True,
        )
        top = [market_id for _score, market_id in scored[:limit]]
        rows = {row["id"]: row for row in await self.repository.cards(top, now)}
        items = [MarketOut.of_row(rows[market_id]) for market_id in top if market_id in rows]
        if len(items) < limit:
            more = await self.repository.most_traded_active(top, limit - len(items), now)
            items += [MarketOut.of_row(row) for row in more]
        return Page[MarketOut](items=items)

    async def related(self, market_id: str, limit: int) -> Page[MarketOut]:
        found = await self.repository.get(market_id)
        if found is None:
            raise NotFound(f"No market with id {market_id}.")
        category, tags = found["category"], list(found["tags"] or [])
        candidates = await self.repository.related_candidates(
            market_id, category, tags, RELATED_CANDIDATES
        )
        ranked = sorted(
            candidates,
            key=lambda c: rules.related_rank((category, tags), (c[1], c[2], c[3], c[4], c[0])),
        )
        ids = [candidate[0] for candidate in ranked[:limit]]
        rows = {row["id"]: row for row in await self.repository.cards(ids, datetime.now(UTC))}
        return Page[MarketOut](items=[MarketOut.of_row(rows[i]) for i in ids if i in rows])

    async def require_market(self, market_id: str) -> None:
        if not await self.repository.exists(market_id):
            raise NotFound(f"No market with id {market_id}.")

    async def propose(self, wallet: str, body: MarketCreate) -> MarketDetailOut:
        now = datetime.now(UTC)
        if body.closes_at is not None and body.closes_at <= now:
            raise InvalidRange("closes_at must be in the future.", field="closes_at")
        if body.resolver_wallet is not None and not looks_like_address(body.resolver_wallet):
            raise InvalidRange("resolver_wallet is not a Solana address.", field="resolver_wallet")
        # The platform's markets reference their creator and resolver in `users` (sign-in
        # creates the creator's row; a resolver may never have signed in).
        users = UserRepository(self.session)
        for user in sorted({wallet, body.resolver_wallet or wallet}):
            await users.ensure(user, now)
        market_id = new_market_id()  # 32 random bytes as hex, as the platform's front end
        market = Market.new(
            id=market_id,
            on_chain_address=str(
                market_address(Pubkey.from_string(self.settings.program_id), market_id)
            ),
            question=body.question,
            description=body.description,
            category=body.category,
            tags=body.tags,
            creator_wallet=wallet,
            resolver_wallet=body.resolver_wallet or wallet,
            state=MarketState.PROPOSED.value,
            b_parameter=body.b_parameter,
            initial_liquidity=body.initial_liquidity,
            current_liquidity=body.initial_liquidity,
            created_at=now,
            updated_at=now,
        )
        await self.repository.add(market, body.closes_at)
        await self.session.commit()
        columns = {column.key: getattr(market, column.key) for column in _MARKET_COLUMNS}
        no_votes = dict.fromkeys(LIVE_COLUMNS, 0)
        no_trades = dict.fromkeys(CARD_COLUMNS, 0) | {"price_24h_ago": None}
        out = MarketDetailOut.of_row(columns | no_votes | no_trades | {"closes_at": body.closes_at})
        await self.cache.drop_listing()
        await publish(self.bus, MarketCreated(market_id=market_id, state=out.state.value))
        return out

    async def price_history(
        self, market_id: str, interval: str, start: datetime | None, end: datetime | None
    ) -> bytes:
        """OHLC buckets and the chart's series, as `PriceHistoryOut`'s JSON. Hourly and longer
        intervals read the hour rollups grouped per bucket in SQL (one row per bucket, whatever
        the number of trades) when the range ends on an hour or at the current time; shorter
        ones read the range's trades."""
        found = await self.repository.get(market_id)
        if found is None:
            raise NotFound(f"No market with id {market_id}.")
        step = rules.INTERVALS[interval]
        now = datetime.now(UTC)
        end = end or now
        start = start or max(found["created_at"], end - step * 200)
        if start >= end:
            raise InvalidRange("`from` must be before `to`.", field="from")
        if rules.bucket_count(start, end, step) > rules.MAX_BUCKETS:
            raise InvalidRange(
                f"At most {rules.MAX_BUCKETS} buckets per request; widen the interval.",
                field="interval",
            )
        aligned = rules.bucket_start(start, step)
        if step >= rules.HOUR and (end >= now or rules.hour_of(end) == end):
            opening = await self.repository.hour_close_before(market_id, aligned)
            groups = await self.repository.bucket_prices(market_id, aligned, end, step)
            buckets = rules.buckets_from_groups(groups, aligned, end, step, _price(opening))
        else:
            opening = await self.repository.price_before(market_id, aligned)
            points = await self.repository.price_points(market_id, aligned, end)
            buckets = rules.price_buckets(points, aligned, end, step, _price(opening))
        if end >= now:
            last_at, last_price = now, Decimal(found["current_price_yes"])
        else:
            last_at, last_price = end, buckets[-1].close
        series = rules.price_series(buckets, last_at, last_price)
        return price_history_json(market_id, interval, buckets, series)


def _price(stored: Any) -> Decimal:
    return rules.OPENING_PRICE if stored is None else Decimal(stored)

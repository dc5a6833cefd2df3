"""The indexer's bulk statements on PostgreSQL and SQLite (the `api` fixture runs both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError

from marketd.indexer import bulk
from marketd.indexer.bulk import BulkInsert, BulkUpdate
from marketd.indexer.rows import POSITION_COLUMNS
from marketd.indexer.store import CHAIN_EVENTS
from marketd.models import IndexedEventRow, Position, User

from ..helpers.indexer import T0

POSITIONS = cast(Table, Position.__table__)
USERS = cast(Table, User.__table__)
AT = datetime.fromtimestamp(T0, UTC)

RECORD = CHAIN_EVENTS  # the store's own statement
POSITION_UPSERT = BulkInsert(
    POSITIONS,
    POSITION_COLUMNS,
    conflict=("market_id", "user_wallet"),
    update=("shares_yes", "trades_count"),
    fresh_id="id",
)


def event_row(signature: str, index: int, data: dict[str, Any]) -> tuple[Any, ...]:
    return (signature, index, 7, "SharesBought", None, data, AT, "confirmed", AT)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK", 2)  # several statements per call


async def test_insert_if_absent_returns_only_the_new_rows_across_chunks(api, small_chunks):
    data = {"user": "alice", "shares": 3, "nested": {"list": [1, 2]}, "none": None}
    first = [event_row("s1", 0, data), event_row("s1", 1, {}), event_row("s2", 0, {})]
    async with api.container.database.session() as session, session.begin():
        assert sorted(await RECORD.execute(session, first)) == [("s1", 0), ("s1", 1), ("s2", 0)]
    again = [*first, event_row("s3", 0, {"k": "v"}), event_row("s3", 1, {})]
    async with api.container.database.session() as session, session.begin():
        assert sorted(await RECORD.execute(session, again)) == [("s3", 0), ("s3", 1)]
        assert await RECORD.execute(session, []) == []
        stored = await session.scalar(
            select(IndexedEventRow.data).where(
                IndexedEventRow.signature == "s1", IndexedEventRow.event_index == 0
            )
        )
        count = len((await session.scalars(select(IndexedEventRow.signature))).all())
    assert stored == data  # JSON kept as given
    assert count == 5


def position(market: tuple[str, str], wallet: str, yes: int, no: int, invested: int, trades: int):
    """A POSITION_COLUMNS row of `market` (id, address)."""
    market_id, address = market
    head = (market_id, wallet, yes, no, invested, trades, 0, AT, AT)
    return (*head, address, wallet, False, None, AT, AT)


async def test_upsert_updates_only_the_named_columns_and_gives_new_rows_an_id(api, small_chunks):
    market = await _market(api)
    rows = [position(market, f"w{i}", i, 0, 10 * i, 1) for i in range(3)]
    async with api.container.database.session() as session, session.begin():
        assert await POSITION_UPSERT.execute(session, rows) == []
    async with api.container.database.session() as session:
        before = {p.user_wallet: p for p in (await session.scalars(select(Position))).all()}
    assert len({p.id for p in before.values()}) == 3 and None not in {p.id for p in before.values()}

    changed = [position(market, "w0", 100, 9, 999, 5), position(market, "w3", 1, 1, 1, 1)]
    async with api.container.database.session() as session, session.begin():
        await POSITION_UPSERT.execute(session, changed)
    async with api.container.database.session() as session:
        after = {p.user_wallet: p for p in (await session.scalars(select(Position))).all()}
    w0 = after["w0"]
    assert (w0.id, w0.shares_yes, w0.trades_count) == (before["w0"].id, 100, 5)
    assert (w0.shares_no, w0.total_invested) == (0, 0)  # not in `update`: kept
    assert set(after) == {"w0", "w1", "w2", "w3"}


async def test_update_by_key_writes_each_row_its_own_values(api, small_chunks):
    market = await _market(api)
    async with api.container.database.session() as session, session.begin():
        await POSITION_UPSERT.execute(
            session, [position(market, f"w{i}", 0, 0, 0, 0) for i in range(3)]
        )
    async with api.container.database.session() as session:
        ids = {p.user_wallet: p.id for p in (await session.scalars(select(Position))).all()}
    later = AT + timedelta(days=1)
    update = BulkUpdate(POSITIONS, "id", ("shares_no", "updated_at"))
    async with api.container.database.session() as session, session.begin():
        await update.execute(session, [(ids["w0"], 5, later), (ids["w2"], 7, later)])
        await update.execute(session, [])
    async with api.container.database.session() as session:
        rows = (await session.scalars(select(Position))).all()
    assert {p.user_wallet: p.shares_no for p in rows} == {"w0": 5, "w1": 0, "w2": 7}
    assert {p.user_wallet for p in rows if p.updated_at == later} == {"w0", "w2"}


async def test_a_value_too_long_for_its_column_is_rejected_on_postgresql(api):
    users = BulkInsert(USERS, ("wallet", "display_name", "created_at"), conflict=("wallet",))
    too_long = "x" * 65  # display_name is VARCHAR(64): the arrays are TEXT[], no truncation
    async with api.container.database.session() as session:
        if api.container.database.dialect == "postgresql":
            with pytest.raises(DBAPIError):
                await users.execute(session, [("w", too_long, AT)])
        else:  # SQLite does not enforce lengths
            await users.execute(session, [("w", too_long, AT)])
            assert await session.scalar(select(User.display_name)) == too_long
        await session.rollback()


async def _market(api: Any) -> tuple[str, str]:
    """A market, and the users w0-w3 whose positions the tests write (the platform's positions
    reference users)."""
    _keypair, headers = await api.sign_in()
    market_id: str = await api.market(headers)
    async with api.container.database.session() as session, session.begin():
        session.add_all([User(wallet=f"w{i}") for i in range(4)])
    rows = await api.execute("SELECT on_chain_address FROM markets WHERE id = :id", id=market_id)
    return market_id, rows[0][0]

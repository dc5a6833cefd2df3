"""Queries over proposal and dispute votes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Row,
    Select,
    Table,
    TextClause,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import dialect_of, upsert_insert
from marketd.markets.repository import MarketRepository
from marketd.models import DisputeVote, Market, Position, ProposalVote, VoteLog
from marketd.votes.rules import Tally, VoteKind

VoteTable = type[ProposalVote] | type[DisputeVote]
TABLES: dict[VoteKind, VoteTable] = {
    VoteKind.PROPOSAL: ProposalVote,
    VoteKind.DISPUTE: DisputeVote,
}


VoteRow = Row[Any, Any, Any, Any, Any]
"""`user_wallet`, `vote`, `voted_at`, `tx_signature`, `eligibility` of one vote."""
_VOTE_LOG = cast(Table, VoteLog.__table__)
_MARKETS = cast(Table, Market.__table__)


def _table(kind: VoteKind) -> Table:
    return cast(Table, TABLES[kind].__table__)


COUNTED_SQL = "(tx_signature IS NOT NULL OR eligibility IS NOT NULL)"
"""A vote counts when it was cast on chain or met the eligibility strategies when cast; an
off-chain row without a record (cast before eligibility was checked) does not."""


def counted(table: Table | VoteTable) -> ColumnElement[bool]:
    """`COUNTED_SQL` as an expression over `table`."""
    columns = table.c if isinstance(table, Table) else cast(Table, table.__table__).c
    return or_(columns.tx_signature.is_not(None), columns.eligibility.is_not(None))


@dataclass(frozen=True, slots=True)
class CastOutcome:
    """What became of an off-chain vote."""

    state: str | None
    """The market's state when the vote was cast (None: no such market)."""
    written: bool
    """The vote and its log row were written: the market was open to this kind of vote and
    the wallet had not voted on-chain already."""
    tally: Tally
    """The market's votes of this kind, this one included (when written)."""


def _cast_statement(kind: VoteKind) -> TextClause:
    """PostgreSQL: the whole cast in one statement (a vote is the hottest write; four
    statements cost four round trips and four times SQLAlchemy's per-statement work).

    The market row is share-locked so its state cannot change under the vote. A data-modifying
    CTE's rows are invisible to the rest of its statement, so the tally counts the other
    wallets' (counted) votes and the caller adds this one."""
    votes = _table(kind).name  # of the two vote tables; every value below is a bound parameter
    return text(
        f"""
        WITH market_row AS (
            SELECT state FROM markets WHERE id = :market_id FOR SHARE
        ), written AS (
            INSERT INTO {votes} (id, market_id, user_wallet, vote, voted_at, eligibility)
            SELECT :vote_id, :market_id, :wallet, :vote, :now, :eligibility
            FROM market_row WHERE state = :open_state
            ON CONFLICT (market_id, user_wallet) DO UPDATE
                SET vote = excluded.vote, voted_at = excluded.voted_at,
                    eligibility = excluded.eligibility
                WHERE {votes}.tx_signature IS NULL
            RETURNING market_id
        ), logged AS (
            INSERT INTO vote_log (id, kind, market_id, user_wallet, vote, source, recorded_at)
            SELECT :log_id, :kind, market_id, :wallet, :vote, 'api', :now FROM written
        )
        SELECT
            (SELECT state FROM market_row) AS state,
            EXISTS (SELECT 1 FROM written) AS written,
            count(*) FILTER (WHERE vote) AS others_yes,
            count(*) AS others_total
        FROM {votes} WHERE market_id = :market_id AND user_wallet <> :wallet
            AND {COUNTED_SQL}
        """  # noqa: S608
    ).bindparams(bindparam("eligibility", type_=JSON))


_CAST_STATEMENTS = {kind: _cast_statement(kind) for kind in VoteKind}


def _tally_statement(kind: VoteKind) -> Select[Any]:
    votes = _table(kind).c
    return select(
        func.coalesce(func.sum(case((votes.vote.is_(True), 1), else_=0)), 0), func.count()
    ).where(votes.market_id == bindparam("market_id"), counted(_table(kind)))


def _page_statement(kind: VoteKind, after: bool) -> Select[Any]:
    votes = _table(kind).c
    query = select(
        votes.user_wallet, votes.vote, votes.voted_at, votes.tx_signature, votes.eligibility
    ).where(votes.market_id == bindparam("market_id"), counted(_table(kind)))
    if after:
        query = query.where(votes.user_wallet > bindparam("after"))
    return query.order_by(votes.user_wallet).limit(bindparam("limit"))


# Prebuilt with bind parameters (see markets.repository): the votes page's reads.
_TALLIES = {kind: _tally_statement(kind) for kind in VoteKind}
_PAGES = {
    (kind, after): _page_statement(kind, after) for kind in VoteKind for after in (False, True)
}


class VoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def cast(
        self,
        kind: VoteKind,
        market_id: str,
        wallet: str,
        vote: bool,
        now: datetime,
        open_state: str,
        eligibility: Mapping[str, Any],
    ) -> CastOutcome:
        """Write the wallet's off-chain vote (with the record of why it was eligible) and its
        log row if the market is in `open_state` and the wallet has no on-chain vote (which
        outranks any off-chain one)."""
        if dialect_of(self.session) == "postgresql":
            params = {
                "market_id": market_id,
                "wallet": wallet,
                "vote": vote,
                "now": now,
                "open_state": open_state,
                "kind": kind.value,
                "vote_id": uuid.uuid4(),
                "log_id": uuid.uuid4(),
                "eligibility": eligibility,
            }
            row = (await self.session.execute(_CAST_STATEMENTS[kind], params)).one()
            yes = int(row.others_yes) + int(row.written and vote)
            no = int(row.others_total) - int(row.others_yes) + int(row.written and not vote)
            return CastOutcome(row.state, bool(row.written), Tally(yes=yes, no=no))
        state = await MarketRepository(self.session).state_for_share(market_id)
        if state != open_state:
            return CastOutcome(state, False, Tally(yes=0, no=0))
        if not await self.upsert_off_chain(kind, market_id, wallet, vote, now, eligibility):
            return CastOutcome(state, False, Tally(yes=0, no=0))
        return CastOutcome(state, True, await self.tally(kind, market_id))

    async def upsert_off_chain(
        self,
        kind: VoteKind,
        market_id: str,
        wallet: str,
        vote: bool,
        now: datetime,
        eligibility: Mapping[str, Any],
    ) -> bool:
        """Insert or replace the wallet's off-chain vote, and log it. False when an on-chain
        vote of the wallet is already recorded (it outranks any off-chain vote).

        Core statements on the tables: this is the hottest write path, and the ORM's
        per-statement work (bulk-insert planning, a flush for the log row) costs more than
        the statements themselves."""
        table = _table(kind)
        statement = upsert_insert(self.session)(table).values(
            market_id=market_id,
            user_wallet=wallet,
            vote=vote,
            voted_at=now,
            eligibility=dict(eligibility),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.market_id, table.c.user_wallet],
            set_={"vote": vote, "voted_at": now, "eligibility": dict(eligibility)},
            where=table.c.tx_signature.is_(None),
        ).returning(table.c.id)
        inserted = (await self.session.execute(statement)).first()
        if inserted is None:
            return False
        await self.session.execute(
            insert(_VOTE_LOG).values(
                kind=kind.value,
                market_id=market_id,
                user_wallet=wallet,
                vote=vote,
                source="api",
                recorded_at=now,
            )
        )
        return True

    async def tally(self, kind: VoteKind, market_id: str) -> Tally:
        params = {"market_id": market_id}
        yes, total = (await self.session.execute(_TALLIES[kind], params)).one()
        return Tally(yes=int(yes), no=int(total) - int(yes))

    async def page(
        self, kind: VoteKind, market_id: str, limit: int, after: str | None
    ) -> Sequence[VoteRow]:
        """Counted votes ordered by wallet: a stable order a recount can walk page by page.
        Rows with `user_wallet`, `vote`, `voted_at`, `tx_signature` and `eligibility`."""
        query = _PAGES[kind, after is not None]
        params = {"market_id": market_id, "after": after, "limit": limit}
        rows: Sequence[VoteRow] = (await self.session.execute(query, params)).all()
        return rows

    async def before_cast(
        self, kind: VoteKind, market_id: str, wallet: str
    ) -> tuple[str | None, bool]:
        """(the market's state or None, whether the wallet's vote on it was cast on chain):
        what refuses a vote before its eligibility is checked. One statement."""
        votes = _table(kind).c
        on_chain = (
            select(votes.id)
            .where(
                votes.market_id == market_id,
                votes.user_wallet == wallet,
                votes.tx_signature.is_not(None),
            )
            .exists()
        )
        row = (
            await self.session.execute(
                select(_MARKETS.c.state, on_chain).where(_MARKETS.c.id == market_id)
            )
        ).first()
        return (None, False) if row is None else (str(row[0]), bool(row[1]))

    async def position_shares(self, market_id: str, wallet: str) -> tuple[int, int] | None:
        """(shares_yes, shares_no) of the wallet in the market; None without a position."""
        row = (
            await self.session.execute(
                select(Position.shares_yes, Position.shares_no).where(
                    Position.market_id == market_id, Position.user_wallet == wallet
                )
            )
        ).first()
        return None if row is None else (int(row[0]), int(row[1]))

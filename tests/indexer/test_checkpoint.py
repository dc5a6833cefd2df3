"""The checkpoint row: created on first use, moved forward and back, finalized slot kept."""

from __future__ import annotations

from marketd.chain.stream import Checkpoint
from marketd.indexer.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    save_checkpoint,
    save_finalized_slot,
)
from marketd.models import IndexerCheckpoint

NAME = checkpoint_name("Prog1111111111111111111111111111111111111111")


async def row(api) -> IndexerCheckpoint | None:
    async with api.container.database.session() as session:
        return await session.get(IndexerCheckpoint, NAME)


async def test_a_finalized_slot_before_any_checkpoint_creates_the_row(api):
    assert NAME == "program:Prog1111111111111111111111111111111111111111"
    async with api.container.database.session() as session, session.begin():
        assert await load_checkpoint(session, NAME) is None
        await save_finalized_slot(session, NAME, 40)
    async with api.container.database.session() as session, session.begin():
        assert await load_checkpoint(session, NAME) is None  # no transaction indexed yet
        await save_finalized_slot(session, NAME, 30)  # never moves back
    stored = await row(api)
    assert stored is not None
    assert (stored.last_signature, stored.last_slot, stored.finalized_slot) == (None, 0, 40)


async def test_the_checkpoint_moves_and_returns_to_the_start_of_history(api):
    async with api.container.database.session() as session, session.begin():
        await save_checkpoint(session, NAME, Checkpoint("sig-a", 41))
        await save_finalized_slot(session, NAME, 12)
    async with api.container.database.session() as session, session.begin():
        assert await load_checkpoint(session, NAME) == Checkpoint("sig-a", 41)
        await save_checkpoint(session, NAME, Checkpoint("sig-b", 45))
    async with api.container.database.session() as session, session.begin():
        assert await load_checkpoint(session, NAME) == Checkpoint("sig-b", 45)
        await save_checkpoint(session, NAME, None)  # a fork dropped everything indexed
    async with api.container.database.session() as session:
        assert await load_checkpoint(session, NAME) is None
    stored = await row(api)
    assert stored is not None and (stored.last_slot, stored.finalized_slot) == (0, 12)

"""The indexer's checkpoint: the last transaction fully indexed, saved with its effects.

It is written in the same database transaction as the events it covers, and the stream yields
transactions in chain order without gaps, so the checkpoint never moves past a transaction that
was not indexed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.stream import Checkpoint
from marketd.models import IndexerCheckpoint, utcnow


def checkpoint_name(program_id: str) -> str:
    return f"program:{program_id}"


async def load_checkpoint(session: AsyncSession, name: str) -> Checkpoint | None:
    row = await session.get(IndexerCheckpoint, name)
    if row is None or row.last_signature is None:
        return None
    return Checkpoint(row.last_signature, row.last_slot)


async def save_checkpoint(session: AsyncSession, name: str, checkpoint: Checkpoint | None) -> None:
    """Move the checkpoint (None: back to the start of history)."""
    row = await session.get(IndexerCheckpoint, name)
    if row is None:
        row = IndexerCheckpoint(name=name, last_slot=0, finalized_slot=0)
        session.add(row)
    row.last_signature = checkpoint.signature if checkpoint is not None else None
    row.last_slot = checkpoint.slot if checkpoint is not None else 0
    row.updated_at = utcnow()


async def save_finalized_slot(session: AsyncSession, name: str, slot: int) -> None:
    row = await session.get(IndexerCheckpoint, name)
    if row is None:
        row = IndexerCheckpoint(name=name, last_slot=0, finalized_slot=0)
        session.add(row)
    row.finalized_slot = max(row.finalized_slot or 0, slot)
    row.updated_at = utcnow()

"""The chain's clock: the Clock sysvar's unix_timestamp, which the program's checks judge by.

Deadlines derived from on-chain timestamps (a dispute period's end, the resolution delay) are
compared with this time, never with the local wall clock, so marketd and the program agree on
whether a period has ended (a localnet's clock can be warped; a cluster's drifts from ours).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from solders.pubkey import Pubkey

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
_CLOCK_UNIX_TIMESTAMP = slice(32, 40)  # slot, epoch_start_timestamp, epoch, leader_epoch, unix


class AccountDataReader(Protocol):
    async def account_data(self, address: Pubkey) -> bytes | None: ...


async def chain_time(client: AccountDataReader) -> int:
    """The cluster's unix time (the Clock sysvar), which the program's checks use."""
    data = await client.account_data(CLOCK_SYSVAR)
    if data is None or len(data) < 40:
        raise RuntimeError("the Clock sysvar is not readable")
    return int.from_bytes(data[_CLOCK_UNIX_TIMESTAMP], "little", signed=True)


class ChainClock:
    """`await ChainClock(client)()`: the chain's time as an aware datetime."""

    def __init__(self, client: AccountDataReader) -> None:
        self.client = client

    async def __call__(self) -> datetime:
        return datetime.fromtimestamp(await chain_time(self.client), UTC)

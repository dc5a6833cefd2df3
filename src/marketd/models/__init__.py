"""ORM models: the platform schema (`tables`) and marketd's own tables (`service_tables`)."""

from marketd.models.base import Base, utcnow
from marketd.models.chain_tables import ChainOutbox, IndexedEventRow, IndexerCheckpoint, SnapshotPin
from marketd.models.service_tables import (
    AuthNonce,
    AuthSession,
    MarketSchedule,
    MarketStats,
    MarketTradeHour,
    TradeSubmission,
    VoteLog,
)
from marketd.models.tables import (
    Discussion,
    DisputeVote,
    IpfsAnchor,
    Market,
    Position,
    ProposalVote,
    Trade,
    User,
)

__all__ = [
    "AuthNonce",
    "AuthSession",
    "Base",
    "ChainOutbox",
    "Discussion",
    "DisputeVote",
    "IndexedEventRow",
    "IndexerCheckpoint",
    "IpfsAnchor",
    "Market",
    "MarketSchedule",
    "MarketStats",
    "MarketTradeHour",
    "Position",
    "ProposalVote",
    "SnapshotPin",
    "Trade",
    "TradeSubmission",
    "User",
    "VoteLog",
    "utcnow",
]

"""The vote thresholds the aggregator decides with: the program's GlobalConfig, cached briefly.

The chain is the authority (the program re-checks the counts against its own thresholds), so a
decision taken with another threshold would be refused on chain. Hence:

* GlobalConfig readable -> its thresholds and dispute period (cached for `ttl_seconds`);
* no GlobalConfig account (or no chain client at all) -> the configured fallbacks;
* the RPC fails -> the last value read from the chain if there is one, else the error
  propagates and the caller retries later. Never a silent switch to the fallback values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from marketd.chain.client import GlobalConfigAccount
from marketd.chain.errors import ChainError
from marketd.config import Settings

log = structlog.get_logger("marketd.votes.thresholds")

DEFAULT_DISPUTE_PERIOD_SECONDS = 3 * 24 * 3600  # the program's default GlobalConfig value


@dataclass(frozen=True)
class VoteThresholds:
    proposal_approval_bps: int
    dispute_success_bps: int
    dispute_period_seconds: int
    source: str  # "chain" | "config"


class GlobalConfigReader(Protocol):
    async def global_config(self) -> GlobalConfigAccount | None: ...


def configured_thresholds(settings: Settings) -> VoteThresholds:
    return VoteThresholds(
        settings.proposal_approval_threshold_bps,
        settings.dispute_success_threshold_bps,
        DEFAULT_DISPUTE_PERIOD_SECONDS,
        "config",
    )


def chain_thresholds(config: GlobalConfigAccount) -> VoteThresholds:
    return VoteThresholds(
        config.proposal_approval_threshold,
        config.dispute_success_threshold,
        int(config.data.get("dispute_period", DEFAULT_DISPUTE_PERIOD_SECONDS)),
        "chain",
    )


class ThresholdSource:
    """`await source.get()`: the thresholds now in force (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        reader: GlobalConfigReader | None,
        *,
        ttl_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._cached: VoteThresholds | None = None
        self._expires = 0.0
        self._last_from_chain: VoteThresholds | None = None

    async def get(self) -> VoteThresholds:
        now = self._monotonic()
        if self._cached is not None and now < self._expires:
            return self._cached
        if self.reader is None:
            value = configured_thresholds(self.settings)
        else:
            try:
                config = await self.reader.global_config()
            except ChainError as exc:
                if self._last_from_chain is None:
                    raise
                log.warning("vote thresholds stale", error=f"{type(exc).__name__}: {exc}")
                return self._last_from_chain
            if config is None:
                value = configured_thresholds(self.settings)
            else:
                value = self._last_from_chain = chain_thresholds(config)
        self._cached, self._expires = value, now + self.ttl_seconds
        return value

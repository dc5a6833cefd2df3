"""Settings of the market monitor (`settings.indexer`; environment variables `INDEXER_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from marketd.config.section import Section


class IndexerSettings(Section):
    ENV_PREFIX: ClassVar[str] = "INDEXER_"

    auto_activate: bool = Field(
        default=True, description="Activate APPROVED markets automatically (activate_market)."
    )
    max_batch: int = Field(default=500, ge=1, description="Transactions per DB transaction.")
    finality_interval_seconds: float = Field(default=5.0, gt=0)
    missing_checks: int = Field(
        default=2, ge=1, description="Status lookups that must miss before a fork rollback."
    )
    reconcile_interval_seconds: float = Field(default=300.0, gt=0)
    transitions_interval_seconds: float = Field(default=15.0, gt=0)

"""How readiness is probed (`settings.readiness`; environment variables `READINESS_*`). The
IPFS node probed is the snapshot stores' (`settings.snapshots.ipfs_api_url`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from marketd.config.section import CsvList, Section


class ReadinessSettings(Section):
    ENV_PREFIX: ClassVar[str] = "READINESS_"

    timeout_seconds: float = Field(default=2.0, gt=0)
    cache_seconds: float = Field(
        default=1.0, ge=0, description="How long one probe's result answers /readyz."
    )
    optional_checks: CsvList[str] = Field(
        default_factory=list,
        description="Checks reported but not failing readiness (e.g. chain_rpc,ipfs).",
    )

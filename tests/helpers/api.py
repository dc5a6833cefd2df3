"""The HTTP API under test: an app instance with its client and helpers for signing in."""

from __future__ import annotations

from typing import Any

import httpx
from solders.keypair import Keypair
from sqlalchemy import text

from marketd.core.container import Container
from marketd.markets.cache import LISTING_GROUP, market_group
from marketd.models import Base

TEST_ORIGIN = "https://app.example"


class Api:
    """An app instance with its client and helpers for signing in."""

    def __init__(self, container: Container, client: httpx.AsyncClient) -> None:
        self.container = container
        self.client = client

    async def sign_in(self, keypair: Keypair | None = None) -> tuple[Keypair, dict[str, str]]:
        keypair = keypair or Keypair()
        challenge = await self.client.post(
            "/api/auth/challenge", json={"wallet": str(keypair.pubkey())}
        )
        assert challenge.status_code == 200, challenge.text
        message = challenge.json()["message"]
        signature = keypair.sign_message(message.encode())
        verified = await self.client.post(
            "/api/auth/verify", json={"message": message, "signature": str(signature)}
        )
        assert verified.status_code == 200, verified.text
        return keypair, {"Authorization": f"Bearer {verified.json()['token']}"}

    async def market(self, headers: dict[str, str], state: str = "PROPOSED", **fields: Any) -> str:
        """Propose a market through the API, then move it to `state` as the chain would."""
        body = {"question": "Will the integration test pass today?", "category": "other"}
        created = await self.client.post("/api/markets", json=body | fields, headers=headers)
        assert created.status_code == 201, created.text
        market_id: str = created.json()["id"]
        if state != "PROPOSED":
            await self.execute(
                "UPDATE markets SET state = :state WHERE id = :id", state=state, id=market_id
            )
            await self.container.pages.drop(market_group(market_id), LISTING_GROUP)  # as indexed
        return market_id

    async def market_address(self, market_id: str) -> str:
        """The market's on-chain address (the platform's trades and positions copy it)."""
        rows = await self.execute(
            "SELECT on_chain_address FROM markets WHERE id = :id", id=market_id
        )
        return str(rows[0][0])

    async def execute(self, sql: str, **params: Any) -> list[Any]:
        """Run SQL directly (as the chain or an operator would change rows); SELECT rows."""
        async with self.container.database.engine.begin() as connection:
            result = await connection.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []


async def truncate(container: Container) -> None:
    """Empty every table (the first app instance of a test starts from no rows)."""
    async with container.database.engine.begin() as connection:
        names = [table.name for table in reversed(Base.metadata.sorted_tables)]
        if container.database.dialect == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(names)} CASCADE"))
        else:
            for name in names:
                await connection.execute(text(f"DELETE FROM {name}"))

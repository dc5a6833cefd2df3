"""`SeenRecently`: how often a signed-in wallet's activity writes its user row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketd.users.service import SeenRecently, UserService


def test_a_wallet_is_due_once_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("marketd.core.memo.time.monotonic", lambda: clock[0])
    seen = SeenRecently(window=60)
    assert seen.due("a") and not seen.due("a")
    assert seen.due("b")
    clock[0] += 59.9
    assert not seen.due("a")
    clock[0] += 0.2
    assert seen.due("a") and not seen.due("a")


def test_the_memo_keeps_the_most_recent_wallets() -> None:
    seen = SeenRecently(window=60, capacity=2)
    for wallet in ("a", "b", "c"):
        assert seen.due(wallet)
    assert seen.due("a")  # forgotten (the oldest), so due again
    assert not seen.due("c")


async def test_activity_moves_last_seen_at_once_a_window(api) -> None:
    keypair, _ = await api.sign_in()
    wallet = str(keypair.pubkey())
    signed_in = (await api.client.get(f"/api/users/{wallet}")).json()["last_seen_at"]
    seen = SeenRecently(window=60)
    later = datetime.now(UTC) + timedelta(minutes=5)
    async with api.container.database.session() as session:
        users = UserService(session, seen)
        await users.touch_active(wallet, later)
        await users.touch_active(wallet, later + timedelta(minutes=1))  # within the window
        await session.commit()
    profile = (await api.client.get(f"/api/users/{wallet}")).json()
    assert signed_in != profile["last_seen_at"]
    assert datetime.fromisoformat(profile["last_seen_at"]) == later

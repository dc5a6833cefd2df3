"""Hot reads come from the page cache, and every write shows at once in what it changes."""

from __future__ import annotations

from marketd.markets.cache import INDEXED_TTL_SECONDS, MarketCache


async def test_market_detail_is_read_through_then_served_from_cache(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    first = await api.client.get(f"/api/markets/{market_id}")
    second = await api.client.get(f"/api/markets/{market_id}")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.json() == second.json() and first.json()["state"] == "ACTIVE"
    assert second.headers["content-type"] == "application/json"
    assert (
        await api.client.get("/api/markets/00000000-0000-4000-8000-000000000000")
    ).status_code == 404


async def test_the_indexer_refresh_rewrites_the_cached_market(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    assert (await api.client.get(f"/api/markets/{market_id}")).json()["total_volume"] == 0
    await api.execute("UPDATE markets SET total_volume = 77 WHERE id = :id", id=market_id)
    stale = await api.client.get(f"/api/markets/{market_id}")
    assert stale.headers["X-Cache"] == "hit" and stale.json()["total_volume"] == 0
    async with api.container.database.session() as session:
        assert await MarketCache(api.container.pages).refresh(session, [market_id]) == 1
    fresh = await api.client.get(f"/api/markets/{market_id}")
    assert fresh.headers["X-Cache"] == "hit" and fresh.json()["total_volume"] == 77
    assert INDEXED_TTL_SECONDS > 0


async def test_a_proposed_market_appears_in_the_cached_listing_at_once(api) -> None:
    _, headers = await api.sign_in()
    await api.market(headers)
    before = await api.client.get("/api/markets", params={"category": "other"})
    again = await api.client.get("/api/markets", params={"category": "other"})
    assert again.headers["X-Cache"] == "hit" and len(again.json()["items"]) == 1
    newer = await api.market(headers)
    after = await api.client.get("/api/markets", params={"category": "other"})
    assert after.headers["X-Cache"] == "miss"
    assert after.json()["items"][0]["id"] == newer
    assert len(after.json()["items"]) == len(before.json()["items"]) + 1


async def test_later_listing_pages_are_not_cached(api) -> None:
    _, headers = await api.sign_in()
    for _ in range(3):
        await api.market(headers)
    first = await api.client.get("/api/markets", params={"limit": 2})
    cursor = first.json()["next_cursor"]
    later = await api.client.get("/api/markets", params={"limit": 2, "cursor": cursor})
    assert later.status_code == 200 and "X-Cache" not in later.headers
    assert len(later.json()["items"]) == 1


async def test_text_searches_are_not_cached(api) -> None:
    _, headers = await api.sign_in()
    await api.market(headers, question="Will the searchable comet return this year?")
    for _ in range(2):
        found = await api.client.get("/api/markets", params={"q": "comet"})
        assert found.status_code == 200 and "X-Cache" not in found.headers
        assert [m["question"] for m in found.json()["items"]] == [
            "Will the searchable comet return this year?"
        ]
    browse = [await api.client.get("/api/markets") for _ in range(2)]
    assert [page.headers["X-Cache"] for page in browse] == ["miss", "hit"]


async def test_a_vote_shows_at_once_in_the_cached_votes_page(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    empty = await api.client.get(f"/api/markets/{market_id}/votes")
    assert empty.json()["tally"]["total"] == 0
    assert (await api.client.get(f"/api/markets/{market_id}/votes")).headers["X-Cache"] == "hit"
    voted = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": True}, headers=headers
    )
    assert voted.status_code == 200, voted.text
    after = await api.client.get(f"/api/markets/{market_id}/votes")
    assert after.headers["X-Cache"] == "miss" and after.json()["tally"]["yes"] == 1


async def test_posts_and_deletes_show_at_once_in_the_cached_thread(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    assert (await api.client.get(f"/api/discussions/{market_id}")).json()["items"] == []
    posted = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "first"}, headers=headers
    )
    assert posted.status_code == 201
    thread = await api.client.get(f"/api/discussions/{market_id}")
    assert [p["content"] for p in thread.json()["items"]] == ["first"]
    assert (await api.client.get(f"/api/discussions/{market_id}")).headers["X-Cache"] == "hit"
    deleted = await api.client.delete(f"/api/discussions/{posted.json()['id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await api.client.get(f"/api/discussions/{market_id}")).json()["items"] == []


async def test_refreshing_no_markets_touches_nothing(api) -> None:
    assert await MarketCache(api.container.pages).refresh(None, []) == 0  # type: ignore[arg-type]


async def test_votes_and_posts_drop_only_their_own_pages(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    votes_page, thread = f"/api/markets/{market_id}/votes", f"/api/discussions/{market_id}"
    for path in (votes_page, thread):
        await api.client.get(path)
    voted = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": True}, headers=headers
    )
    assert voted.status_code == 200, voted.text
    assert (await api.client.get(thread)).headers["X-Cache"] == "hit"
    assert (await api.client.get(votes_page)).headers["X-Cache"] == "miss"
    posted = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "hi"}, headers=headers
    )
    assert posted.status_code == 201, posted.text
    assert (await api.client.get(votes_page)).headers["X-Cache"] == "hit"
    assert (await api.client.get(thread)).headers["X-Cache"] == "miss"


async def _vote(api, market_id: str, vote: bool) -> None:
    _, voter = await api.sign_in()
    voted = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": vote}, headers=voter
    )
    assert voted.status_code == 200, voted.text


async def test_the_detail_shows_the_live_tally_beside_the_counts_on_chain(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    created = (await api.client.get(f"/api/markets/{market_id}")).json()
    nothing = {
        "proposal": {"likes": 0, "dislikes": 0, "total": 0},
        "dispute": {"agree": 0, "disagree": 0, "total": 0},
    }
    assert created["votes"] == created["on_chain_votes"] == nothing
    assert (await api.client.get(f"/api/markets/{market_id}")).headers["X-Cache"] == "hit"
    for vote in (True, False, False, False):
        await _vote(api, market_id, vote)
    detail = await api.client.get(f"/api/markets/{market_id}")
    assert detail.headers["X-Cache"] == "miss"  # the vote dropped the cached detail
    body = detail.json()
    assert body["votes"]["proposal"] == {"likes": 1, "dislikes": 3, "total": 4}
    assert body["votes"]["dispute"] == {"agree": 0, "disagree": 0, "total": 0}
    assert body["on_chain_votes"]["proposal"] == {"likes": 0, "dislikes": 0, "total": 0}
    assert "proposal_likes" not in body and "dispute_agree" not in body
    tally = (await api.client.get(f"/api/markets/{market_id}/votes")).json()["tally"]
    assert (tally["yes"], tally["no"]) == (1, 3)


async def test_the_indexer_refresh_writes_both_tallies_into_the_detail(api) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    await _vote(api, market_id, True)
    await api.execute(
        "UPDATE markets SET proposal_likes = 7, proposal_dislikes = 2, dispute_agree = 1"
        " WHERE id = :id",
        id=market_id,
    )
    async with api.container.database.session() as session:
        assert await MarketCache(api.container.pages).refresh(session, [market_id]) == 1
    detail = await api.client.get(f"/api/markets/{market_id}")
    assert detail.headers["X-Cache"] == "hit"
    assert detail.json()["votes"]["proposal"] == {"likes": 1, "dislikes": 0, "total": 1}
    assert detail.json()["on_chain_votes"] == {
        "proposal": {"likes": 7, "dislikes": 2, "total": 9},
        "dispute": {"agree": 1, "disagree": 0, "total": 1},
    }
    listed = (await api.client.get("/api/markets", params={"category": "other"})).json()["items"]
    assert listed[0]["on_chain_votes"]["proposal"]["likes"] == 7
    # Voting is open (PROPOSED): the listing carries the live tally too.
    assert listed[0]["votes"]["proposal"] == {"likes": 1, "dislikes": 0, "total": 1}

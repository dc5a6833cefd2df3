"""Vote routes over HTTP."""

from __future__ import annotations

import asyncio


async def test_votes_upsert_and_tally(api):
    _, creator = await api.sign_in()
    market_id = await api.market(creator)
    voters = [await api.sign_in() for _ in range(3)]

    async with api.container.bus.subscribe("votes") as events:
        for keypair, headers in voters:
            response = await api.client.post(
                "/api/votes/proposal", json={"market_id": market_id, "vote": True}, headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.json()["wallet"] == str(keypair.pubkey())
        changed = await api.client.post(
            "/api/votes/proposal",
            json={"market_id": market_id, "vote": False},
            headers=voters[0][1],
        )
        assert changed.json()["tally"] == {"yes": 2, "no": 1, "total": 3}
        received = [await asyncio.wait_for(events.get(), 5) for _ in range(4)]
    event_ids = [event.pop("eventId") for event in received]
    assert len(set(event_ids)) == 4  # unique: the sequencer never merges a repeated vote
    assert received[-1] == {
        "type": "vote",
        "marketId": market_id,
        "voteType": "proposal",
        "vote": False,
        "user": str(voters[0][0].pubkey()),
        "likes": 2,
        "dislikes": 1,
    }

    listing = (await api.client.get(f"/api/markets/{market_id}/votes", params={"limit": 2})).json()
    assert listing["tally"] == {"yes": 2, "no": 1, "total": 3}
    wallets = sorted(str(k.pubkey()) for k, _ in voters)
    assert [v["wallet"] for v in listing["items"]] == wallets[:2]
    rest = await api.client.get(
        f"/api/markets/{market_id}/votes", params={"cursor": listing["next_cursor"]}
    )
    assert [v["wallet"] for v in rest.json()["items"]] == wallets[2:]

    log = await api.execute("SELECT count(*) FROM vote_log WHERE market_id = :m", m=market_id)
    assert log[0][0] == 4  # the replaced vote is still on record


async def test_votes_only_in_the_voting_state(api):
    _, headers = await api.sign_in()
    approved = await api.market(headers, state="APPROVED")
    response = await api.client.post(
        "/api/votes/proposal", json={"market_id": approved, "vote": True}, headers=headers
    )
    assert response.status_code == 409
    assert response.json()["state"] == "APPROVED"
    assert response.json()["type"].endswith("/voting-closed")

    proposed = await api.market(headers)
    dispute = await api.client.post(
        "/api/votes/dispute", json={"market_id": proposed, "vote": True}, headers=headers
    )
    assert dispute.status_code == 409

    disputed = await api.market(headers, state="DISPUTED")
    ok = await api.client.post(
        "/api/votes/dispute", json={"market_id": disputed, "vote": True}, headers=headers
    )
    assert ok.status_code == 200
    assert ok.json()["kind"] == "dispute"
    tally = await api.client.get(f"/api/markets/{disputed}/votes", params={"kind": "dispute"})
    assert tally.json()["tally"]["yes"] == 1

    missing = await api.client.post(
        "/api/votes/proposal", json={"market_id": "nope", "vote": True}, headers=headers
    )
    assert missing.status_code == 404
    invalid = await api.client.post(
        "/api/votes/proposal", json={"market_id": proposed, "vote": "maybe"}, headers=headers
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "body.vote"


async def test_on_chain_vote_outranks_off_chain(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    first = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": True}, headers=headers
    )
    assert first.status_code == 200
    await api.execute(
        "UPDATE proposal_votes SET tx_signature = 'sig' WHERE market_id = :m", m=market_id
    )
    again = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": False}, headers=headers
    )
    assert again.status_code == 409
    rows = await api.execute("SELECT vote FROM proposal_votes WHERE market_id = :m", m=market_id)
    assert [bool(r[0]) for r in rows] == [True]
    log = await api.execute("SELECT vote FROM vote_log WHERE market_id = :m", m=market_id)
    assert [bool(r[0]) for r in log] == [True]  # the refused vote is not on record

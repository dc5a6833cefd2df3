"""Discussion routes over HTTP."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from marketd.discussions.repository import DiscussionRepository


async def test_post_read_and_author_only_delete(api):
    author_key, author = await api.sign_in()
    _, other = await api.sign_in()
    market_id = await api.market(author)

    posted = []
    for index in range(3):
        response = await api.client.post(
            "/api/discussions",
            json={"market_id": market_id, "content": f"  post {index}  "},
            headers=author,
        )
        assert response.status_code == 201, response.text
        assert response.json()["content"] == f"post {index}"
        assert response.json()["user_wallet"] == str(author_key.pubkey())
        posted.append(response.json()["id"])

    page = (await api.client.get(f"/api/discussions/{market_id}", params={"limit": 2})).json()
    assert [p["id"] for p in page["items"]] == posted[::-1][:2]
    rest = await api.client.get(
        f"/api/discussions/{market_id}", params={"cursor": page["next_cursor"]}
    )
    assert [p["id"] for p in rest.json()["items"]] == [posted[0]]

    forbidden = await api.client.delete(f"/api/discussions/{posted[1]}", headers=other)
    assert forbidden.status_code == 403
    deleted = await api.client.delete(f"/api/discussions/{posted[1]}", headers=author)
    assert deleted.status_code == 204
    assert deleted.content == b"" and "content-type" not in deleted.headers
    assert deleted.headers.get("content-length", "0") == "0"
    again = await api.client.delete(f"/api/discussions/{posted[1]}", headers=author)
    assert again.status_code == 404
    unknown = await api.client.delete(f"/api/discussions/{uuid.uuid4()}", headers=author)
    assert unknown.status_code == 404
    not_uuid = await api.client.delete("/api/discussions/123", headers=author)
    assert not_uuid.status_code == 422

    remaining = (await api.client.get(f"/api/discussions/{market_id}")).json()["items"]
    assert [p["id"] for p in remaining] == [posted[2], posted[0]]


async def test_content_rules(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    blank = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "   \n "}, headers=headers
    )
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["field"] == "body.content"
    exact = await api.client.post(
        "/api/discussions",
        json={"market_id": market_id, "content": " " + "x" * 1000 + " "},  # the platform: 1000
        headers=headers,
    )
    assert exact.status_code == 201
    too_long = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "x" * 1001}, headers=headers
    )
    assert too_long.status_code == 422
    no_market = await api.client.post(
        "/api/discussions", json={"market_id": "nope", "content": "hello"}, headers=headers
    )
    assert no_market.status_code == 404
    assert (await api.client.get("/api/discussions/nope")).status_code == 404


@pytest.mark.parametrize("state", ["CANCELLED", "FINALIZED"])
async def test_settled_and_withdrawn_markets_take_no_new_posts(api, state):
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    earlier = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "before"}, headers=headers
    )
    assert earlier.status_code == 201
    await api.execute("UPDATE markets SET state = :state WHERE id = :id", state=state, id=market_id)
    refused = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "after"}, headers=headers
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/discussion-closed")
    assert refused.json()["state"] == state and state in refused.json()["detail"]
    thread = await api.client.get(f"/api/discussions/{market_id}")
    assert [post["content"] for post in thread.json()["items"]] == ["before"]
    deleted = await api.client.delete(f"/api/discussions/{earlier.json()['id']}", headers=headers)
    assert deleted.status_code == 204  # an author may still take a post back


@pytest.mark.parametrize("state", ["PROPOSED", "APPROVED", "ACTIVE", "RESOLVING", "DISPUTED"])
async def test_markets_before_the_end_take_posts(api, state):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state=state)
    posted = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "open"}, headers=headers
    )
    assert posted.status_code == 201, posted.text


async def test_a_failed_insert_on_a_known_market_is_not_reported_as_404(api, monkeypatch):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")

    async def clashing_insert(*_: object) -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(DiscussionRepository, "insert", clashing_insert)
    response = await api.client.post(
        "/api/discussions", json={"market_id": market_id, "content": "hi"}, headers=headers
    )
    # The unexpected error is a 500 problem, not a 404 that would blame the market.
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"

"""GET /api/activity over HTTP on both backends: every kind, newest first, filters, cursors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketd.activity.rules import STATE_EVENTS
from marketd.core.events import DiscussionPosted, MarketCreated, TradeIndexed
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import apply_transactions
from marketd.markets.cache import LISTING_GROUP
from marketd.models.chain_tables import STATE_CHANGE_EVENTS

from ..markets.trading import PROGRAM_ID, Fill, chain_event, trade, transaction, wallet


async def _feed(api, **params):
    answer = await api.client.get("/api/activity", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_feed_merges_every_kind_newest_first_and_pages_by_cursor(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, question="Will the feed show everything?")
    _, voter = await api.sign_in()
    voted = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": True}, headers=voter
    )
    assert voted.status_code == 200, voted.text
    later = datetime.now(UTC) + timedelta(minutes=5)
    creator = wallet()
    await chain_event(
        api.container, market_id, "MarketActivated", later, creator=creator, initial_liquidity=0
    )
    trader = wallet()
    await trade(
        api.container,
        market_id,
        Fill(trader, 100, "0.6", later + timedelta(minutes=1)),
        Fill(trader, 40, "0.55", later + timedelta(minutes=2), sell=True),
    )
    await api.container.pages.drop(LISTING_GROUP)  # the API vote does not drop it (10 s)
    body = await _feed(api)
    kinds = [item["kind"] for item in body["items"]]
    assert kinds == ["trade", "trade", "state_change", "vote", "market_created"]
    sold, bought, activated, vote, created = body["items"]
    assert {item["market_id"] for item in body["items"]} == {market_id}
    assert created["question"] == "Will the feed show everything?"
    assert (sold["trade_type"], sold["amount"], sold["price_yes"], sold["wallet"]) == (
        "sell",
        40,
        "0.550000000",
        trader,
    )
    assert (bought["outcome"], bought["shares"]) == ("YES", 200)
    assert activated["state"] == "ACTIVE" and activated["tx_signature"]
    assert (vote["vote_kind"], vote["vote"]) == ("proposal", True)
    assert created["state"] == "PROPOSED"
    assert body["next_cursor"] is None

    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await _feed(api, **params)
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == body["items"]

    only = await _feed(api, kind=["trade", "market_created"])
    assert [item["kind"] for item in only["items"]] == ["trade", "trade", "market_created"]
    first = await _feed(api, kind="trade", limit=1)
    wrong = await api.client.get(
        "/api/activity", params={"kind": "vote", "cursor": first["next_cursor"]}
    )
    assert wrong.status_code == 422 and wrong.json()["type"].endswith("invalid-cursor")
    assert (await api.client.get("/api/activity", params={"kind": "nope"})).status_code == 422


async def test_events_of_one_time_and_kind_page_without_loss(api):
    """Trades of one block second (and state changes of one transaction) are split across
    pages by their ids, none lost or repeated."""
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    at = datetime.now(UTC).replace(microsecond=0)
    await trade(api.container, market_id, *(Fill(wallet(), n + 1, "0.6", at) for n in range(5)))
    await chain_event(
        api.container, market_id, "MarketActivated", at, creator=wallet(), initial_liquidity=0
    )
    await chain_event(
        api.container,
        market_id,
        "MarketResolved",
        at,
        resolver=wallet(),
        outcome=True,
        evidence_hash=b"",
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "kind": ["trade", "state_change"]}
        page = await _feed(api, **params | ({"cursor": cursor} if cursor else {}))
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7


def test_the_partial_index_names_the_state_events():
    names = set(STATE_CHANGE_EVENTS.split("(", 1)[1].rstrip(")").replace("'", "").split(", "))
    assert names == set(STATE_EVENTS)


async def test_a_cursor_with_a_foreign_id_pages_on_and_never_fails(api):
    """A well-formed cursor whose id is not a trade's (edited by hand) still answers."""
    from marketd.core.pagination import encode_cursor

    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    await trade(api.container, market_id, Fill(wallet(), 5, "0.6", datetime.now(UTC)))
    later = datetime.now(UTC) + timedelta(hours=1)
    cursor = encode_cursor("activity:trade", [later, "trade", "not-a-uuid", 0])
    answer = await api.client.get("/api/activity", params={"kind": "trade", "cursor": cursor})
    assert answer.status_code == 200
    assert [item["kind"] for item in answer.json()["items"]] == ["trade"]


async def test_an_event_the_feed_does_not_list_has_no_live_item(api):
    """The WebSocket channel's read: no item for an event of another type, or a trade whose
    row is not there (a trade without shares is not recorded)."""
    from marketd.activity.service import ActivityService

    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    async with api.container.database.session(read_only=True) as session:
        service = ActivityService(session)
        posted = DiscussionPosted(
            market_id=market_id, post_id="p", wallet="w", content="c", created_at=datetime.now(UTC)
        )
        assert await service.live_item(posted) is None
        unrecorded = TradeIndexed(
            market_id=market_id,
            trade_type="BUY",
            outcome="YES",
            shares=1,
            price=Decimal("0.5"),
            wallet="w",
            signature="never-indexed",
        )
        assert await service.live_item(unrecorded) is None
        created = await service.live_item(MarketCreated(market_id=market_id, state="PROPOSED"))
    assert created is not None and (created.kind, created.id) == ("market_created", market_id)


async def _live_items(api, events):
    """What the WebSocket's activity channel sends for `events` (the fan-out reads each
    sequenced event's item with `live_item`), in JSON mode."""
    from marketd.activity.service import ActivityService

    items = []
    async with api.container.database.session(read_only=True) as session:
        for event in events:
            item = await ActivityService(session).live_item(event)
            if item is not None:
                items.append(item.model_dump(mode="json"))
    return items


async def test_two_trades_of_one_transaction_announce_their_own_items(api):
    """#21: the second trade of a transaction is stored under `<signature[:80]>#<index>`; its
    event carries that key, so the channel sends the second trade, not the first twice."""
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    now = datetime.now(UTC).replace(microsecond=0)
    tx = transaction(market_id, Fill(wallet(), 100, "0.6", now))
    first = tx.events[0]
    second = replace(
        first, index=1, data={**first.data, "user": wallet(), "new_price_yes": 650_000_000}
    )
    async with api.container.database.session() as session, session.begin():
        applied = await apply_transactions(
            session, [replace(tx, events=(first, second))], PROGRAM_ID, FeeSchedule()
        )
    trades = [event for event in applied.events if isinstance(event, TradeIndexed)]
    assert [event.signature for event in trades] == [tx.signature, f"{tx.signature[:80]}#1"]
    await api.container.pages.drop(LISTING_GROUP)
    listed = (await _feed(api, kind="trade"))["items"]
    assert len(listed) == 2
    sent = await _live_items(api, trades)
    # The feed lists the same two items (newest first; both trades have one time).
    assert sorted(item["id"] for item in sent) == sorted(item["id"] for item in listed)
    assert sorted(item["price_yes"] for item in sent) == ["0.600000000", "0.650000000"]


async def test_a_state_change_the_backend_applied_first_is_announced_once_indexed(api):
    """#21: the outbox handler approves a market as soon as its transaction is confirmed (its
    change has no feed item: the program event is not indexed yet). When the indexer reads
    ProposalApproved, the market is APPROVED already, and the event it publishes still
    announces the feed's item, so the channel sends it."""
    from marketd.markets import lifecycle
    from marketd.markets.lifecycle import Writer
    from marketd.models import Market
    from marketd.shared.market_state import MarketState

    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    confirmed_at = datetime.now(UTC).replace(microsecond=0)
    async with api.container.database.session() as session, session.begin():
        market = await session.get(Market, market_id)
        early = lifecycle.transition(market, MarketState.APPROVED, confirmed_at, Writer.OUTBOX)
    assert early is not None and await _live_items(api, [early]) == []  # nothing indexed yet
    block_time = confirmed_at - timedelta(seconds=1)
    applied = await chain_event(api.container, market_id, "ProposalApproved", block_time)
    await api.container.pages.drop(LISTING_GROUP)
    listed = (await _feed(api, kind="state_change"))["items"]
    assert [item["state"] for item in listed] == ["APPROVED"]
    assert await _live_items(api, applied.events) == listed
    async with api.container.database.session() as session:
        market = await session.get(Market, market_id)
        # The row keeps the chain's time, whichever writer came first.
        assert (market.state, market.approved_at) == ("APPROVED", block_time)

"""Trade relay routes: signed buy/sell transactions are checked against the program's IDL."""

from __future__ import annotations

import base64

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from marketd.chain.addresses import global_config_address, position_address
from marketd.chain.program import program_coder, program_id

SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")


def trade_transaction(
    api, signer: Keypair, market: str, kind: str = "buy", *, user: Pubkey | None = None
) -> str:
    settings = api.container.settings
    coder, program = program_coder(settings), program_id(settings)
    market_key = Pubkey.from_string(market)
    user = user or signer.pubkey()
    if kind == "buy":
        data = coder.encode_instruction("buy_shares", {"outcome": True, "target_cost": 5_000_000})
    else:
        data = coder.encode_instruction(
            "sell_shares", {"outcome": False, "shares_to_sell": 7, "min_proceeds": 1}
        )
    accounts = [
        AccountMeta(global_config_address(program), False, False),
        AccountMeta(market_key, False, True),
        AccountMeta(position_address(program, market_key, user), False, True),
        AccountMeta(user, user == signer.pubkey(), True),
        AccountMeta(Keypair().pubkey(), False, True),
        AccountMeta(SYSTEM_PROGRAM, False, False),
    ]
    message = Message.new_with_blockhash(
        [Instruction(program, data, accounts)], signer.pubkey(), Hash.new_unique()
    )
    transaction = Transaction([signer], message, message.recent_blockhash)
    return base64.b64encode(bytes(transaction)).decode()


async def _market(api, headers, state="ACTIVE") -> tuple[str, str]:
    market_id = await api.market(headers, state=state)
    address = (await api.client.get(f"/api/markets/{market_id}")).json()["on_chain_address"]
    return market_id, address


async def test_signed_buy_and_sell_are_accepted_as_pending(api):
    keypair, headers = await api.sign_in()
    market_id, address = await _market(api, headers)
    encoded = trade_transaction(api, keypair, address)
    response = await api.client.post(
        "/api/trades/buy", json={"market_id": market_id, "transaction": encoded}, headers=headers
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and body["outcome"] == "YES" and body["amount"] == 5_000_000
    again = await api.client.post(
        "/api/trades/buy", json={"market_id": market_id, "transaction": encoded}, headers=headers
    )
    assert again.status_code == 202 and again.json() == body  # idempotent: what is stored
    rows = await api.execute(
        "SELECT status, user_wallet, created_at IS NOT NULL FROM trade_submissions"
        " WHERE signature = :s",
        s=body["signature"],
    )
    # created_at set: the relay picks up pending submissions by their age.
    assert [tuple(r) for r in rows] == [("pending", str(keypair.pubkey()), True)]
    # Once the indexer confirmed it, sending the bytes again answers with that.
    await api.execute(
        "UPDATE trade_submissions SET status = 'confirmed' WHERE signature = :s",
        s=body["signature"],
    )
    later = await api.client.post(
        "/api/trades/buy", json={"market_id": market_id, "transaction": encoded}, headers=headers
    )
    assert later.status_code == 202 and later.json() == body | {"status": "confirmed"}

    sell = await api.client.post(
        "/api/trades/sell",
        json={
            "market_id": market_id,
            "transaction": trade_transaction(api, keypair, address, "sell"),
        },
        headers=headers,
    )
    assert sell.status_code == 202
    assert sell.json()["outcome"] == "NO" and sell.json()["amount"] == 7


async def test_trades_that_do_not_hold_are_rejected(api):
    keypair, headers = await api.sign_in()
    market_id, address = await _market(api, headers)
    _, other_address = await _market(api, headers)

    async def submit(route: str, transaction: str, market: str = market_id):
        return await api.client.post(
            route, json={"market_id": market, "transaction": transaction}, headers=headers
        )

    tampered = bytearray(base64.b64decode(trade_transaction(api, keypair, address)))
    tampered[-1] ^= 0xFF
    cases = [
        ("not_base64", "/api/trades/buy", "***"),
        ("not_a_transaction", "/api/trades/buy", base64.b64encode(b"xx").decode()),
        ("too_large", "/api/trades/buy", base64.b64encode(b"x" * 1300).decode()),
        ("wrong_market", "/api/trades/buy", trade_transaction(api, keypair, other_address)),
        ("wrong_instruction", "/api/trades/sell", trade_transaction(api, keypair, address)),
        ("wrong_signer", "/api/trades/buy", trade_transaction(api, Keypair(), address)),
        (
            "wrong_signer",  # names the wallet as user, but someone else signed
            "/api/trades/buy",
            trade_transaction(api, Keypair(), address, user=keypair.pubkey()),
        ),
        ("bad_signature", "/api/trades/buy", base64.b64encode(tampered).decode()),
    ]
    for reason, route, transaction in cases:
        response = await submit(route, transaction)
        assert response.status_code == 422, (reason, response.text)
        assert response.json()["reason"] == reason

    proposed_id, proposed_address = await _market(api, headers, state="PROPOSED")
    closed = await submit(
        "/api/trades/buy", trade_transaction(api, keypair, proposed_address), proposed_id
    )
    assert closed.status_code == 409
    assert closed.json()["state"] == "PROPOSED"
    missing = await submit("/api/trades/buy", trade_transaction(api, keypair, address), "nope")
    assert missing.status_code == 404

"""Sign-In With Solana over HTTP, with real ed25519 keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from solders.keypair import Keypair

from marketd.auth.siws import format_time, parse_message


async def _challenge(api, keypair: Keypair) -> str:
    response = await api.client.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
    assert response.status_code == 200
    body = response.json()
    assert body["nonce"] in body["message"]
    return body["message"]


async def _verify(api, message: str, signature: str):
    return await api.client.post(
        "/api/auth/verify", json={"message": message, "signature": signature}
    )


async def test_sign_in_issues_a_session_that_authorises_writes(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    parsed = parse_message(message)
    assert parsed.address == str(keypair.pubkey())
    assert (parsed.domain, parsed.uri) == ("testserver", "http://testserver")  # the Host reached
    assert parsed.expiration_time - parsed.issued_at == timedelta(minutes=5)

    response = await _verify(api, message, str(keypair.sign_message(message.encode())))
    assert response.status_code == 200
    session = response.json()
    assert session["wallet"] == str(keypair.pubkey())
    headers = {"Authorization": f"Bearer {session['token']}"}
    market_id = await api.market(headers)
    assert market_id

    profile = await api.client.get(f"/api/users/{keypair.pubkey()}")
    assert profile.status_code == 200
    assert profile.json()["stats"]["markets_created"] == 1


async def test_replayed_nonce_is_rejected(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    signature = str(keypair.sign_message(message.encode()))
    assert (await _verify(api, message, signature)).status_code == 200
    replay = await _verify(api, message, signature)
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["reason"] == "nonce_used"


async def test_expired_nonce_is_rejected(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    parsed = parse_message(message)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await api.execute(
        "UPDATE auth_nonces SET expires_at = :past WHERE nonce = :nonce",
        past=past,
        nonce=parsed.nonce,
    )
    # The stored challenge is what the server compares against: move its expiry too.
    stored = message.replace(
        f"Expiration Time: {format_time(parsed.expiration_time)}",
        f"Expiration Time: {format_time(past)}",
    )
    await api.execute(
        "UPDATE auth_nonces SET message = :message WHERE nonce = :nonce",
        message=stored,
        nonce=parsed.nonce,
    )
    response = await _verify(api, stored, str(keypair.sign_message(stored.encode())))
    assert response.status_code == 401
    assert response.json()["reason"] == "expired", response.json()


async def test_message_for_another_domain_is_rejected(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    forged = message.replace("testserver", "evil.example", 1)
    response = await _verify(api, forged, str(keypair.sign_message(forged.encode())))
    assert response.status_code == 401
    assert response.json()["reason"] == "domain_mismatch"


async def test_unset_domain_names_the_host_the_request_reached(api):
    keypair = Keypair()
    response = await api.client.post(
        "/api/auth/challenge",
        json={"wallet": str(keypair.pubkey())},
        headers={"Host": "127.0.0.1:8123"},
    )
    assert response.status_code == 200
    parsed = parse_message(response.json()["message"])
    assert (parsed.domain, parsed.uri) == ("127.0.0.1:8123", "http://127.0.0.1:8123")
    assert "localhost:8000" not in response.json()["message"]
    message = response.json()["message"]
    signature = str(keypair.sign_message(message.encode()))
    # Verified through another host name: not this origin's message.
    elsewhere = await _verify(api, message, signature)
    assert elsewhere.status_code == 401 and elsewhere.json()["reason"] == "domain_mismatch"
    same = await api.client.post(
        "/api/auth/verify",
        json={"message": message, "signature": signature},
        headers={"Host": "127.0.0.1:8123"},
    )
    assert same.status_code == 200, same.text


async def test_configured_domain_and_uri_win_over_the_host(api_factory):
    api = await api_factory(siws_domain="app.example.com", siws_uri="https://app.example.com/in")
    keypair = Keypair()
    message = await _challenge(api, keypair)
    parsed = parse_message(message)
    assert (parsed.domain, parsed.uri) == ("app.example.com", "https://app.example.com/in")
    verified = await _verify(api, message, str(keypair.sign_message(message.encode())))
    assert verified.status_code == 200


async def test_a_configured_domain_alone_gets_the_request_scheme(api_factory):
    api = await api_factory(siws_domain="app.example.com")
    parsed = parse_message(await _challenge(api, Keypair()))
    assert (parsed.domain, parsed.uri) == ("app.example.com", "http://app.example.com")


async def test_behind_a_trusted_proxy_the_forwarded_host_is_named(api_factory):
    api = await api_factory(trusted_proxies=["203.0.113.0/24"])  # the test client's address
    keypair = Keypair()
    forwarded = {"X-Forwarded-Host": "evil.example, app.example.com", "X-Forwarded-Proto": "https"}
    response = await api.client.post(
        "/api/auth/challenge", json={"wallet": str(keypair.pubkey())}, headers=forwarded
    )
    parsed = parse_message(response.json()["message"])
    assert (parsed.domain, parsed.uri) == ("app.example.com", "https://app.example.com")
    untrusting = await api_factory()
    direct = await untrusting.client.post(
        "/api/auth/challenge", json={"wallet": str(keypair.pubkey())}, headers=forwarded
    )
    assert parse_message(direct.json()["message"]).domain == "testserver"


async def test_a_host_that_is_no_host_is_a_problem(api):
    response = await api.client.post(
        "/api/auth/challenge",
        json={"wallet": str(Keypair().pubkey())},
        headers={"Host": "bad host wants you"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "bad_host"


async def test_wrong_signature_is_rejected_and_nonce_stays_usable(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    wrong = str(Keypair().sign_message(message.encode()))
    response = await _verify(api, message, wrong)
    assert response.status_code == 401
    assert response.json()["reason"] == "bad_signature"
    # A forged attempt must not burn the real owner's nonce.
    good = await _verify(api, message, str(keypair.sign_message(message.encode())))
    assert good.status_code == 200


async def test_unknown_nonce_and_malformed_inputs(api):
    keypair = Keypair()
    message = await _challenge(api, keypair)
    other = message.replace("Nonce: ", "Nonce: x", 1)
    response = await _verify(api, other, str(keypair.sign_message(other.encode())))
    assert response.status_code == 401
    assert response.json()["reason"] == "unknown_nonce"

    malformed = await _verify(api, "hello", "1" * 64)
    assert malformed.status_code == 422
    assert malformed.json()["reason"] == "malformed_message"

    bad_signature = await _verify(api, message, "0" * 64)
    assert bad_signature.status_code == 422
    assert bad_signature.json()["reason"] == "malformed_signature"

    bad_wallet = await api.client.post("/api/auth/challenge", json={"wallet": "O" * 44})
    assert bad_wallet.status_code == 422
    assert bad_wallet.json()["reason"] == "invalid_wallet"

    too_short = await api.client.post("/api/auth/challenge", json={"wallet": "abc"})
    assert too_short.status_code == 422
    assert too_short.json()["errors"][0]["field"] == "body.wallet"


async def test_logout_revokes_the_session(api):
    _, headers = await api.sign_in()
    logout = await api.client.post("/api/auth/logout", headers=headers)
    assert logout.status_code == 204
    assert logout.content == b"" and "content-type" not in logout.headers
    assert logout.headers.get("content-length", "0") == "0"
    after = await api.client.post(
        "/api/markets", json={"question": "Is this session still valid?"}, headers=headers
    )
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]
    assert after.headers["www-authenticate"] == "Bearer"


async def test_write_routes_require_a_session(api):
    response = await api.client.post("/api/votes/proposal", json={"market_id": "x", "vote": True})
    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthorized")
    logout = await api.client.post("/api/auth/logout", headers={"Authorization": "Basic abc"})
    assert logout.status_code == 401


async def test_logout_on_one_instance_ends_the_session_on_every_instance(api_factory, backend):
    first = await api_factory()
    second = await api_factory()
    _, headers = await first.sign_in()
    body = {"question": "Is this session known on both instances?"}
    assert (await second.client.post("/api/markets", json=body, headers=headers)).status_code == 201
    assert (await first.client.post("/api/auth/logout", headers=headers)).status_code == 204
    same = await first.client.post("/api/markets", json=body, headers=headers)
    assert same.status_code == 401
    if backend != "embedded":
        # The session cache is shared through Redis: the other instance knows at once.
        other = await second.client.post("/api/markets", json=body, headers=headers)
        assert other.status_code == 401


async def test_a_cached_session_past_its_expiry_is_not_accepted(api):
    from datetime import UTC, datetime, timedelta

    from marketd.auth.dependencies import session_wallet
    from marketd.auth.service import hash_token

    _, headers = await api.sign_in()
    token = headers["Authorization"].split()[1]
    key = "session:" + hash_token(token).hex()
    assert await session_wallet(api.container, token) is not None  # now cached
    assert await api.container.cache.get(key) is not None
    stale = {"wallet": "someone", "expires_at": (datetime.now(UTC) - timedelta(1)).isoformat()}
    await api.container.cache.set(key, stale, ttl_seconds=60)
    await api.execute(
        "UPDATE auth_sessions SET expires_at = :past", past=datetime.now(UTC) - timedelta(1)
    )
    assert await session_wallet(api.container, token) is None


async def test_challenges_purge_long_expired_nonces_now_and_then(api, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from marketd.auth.origin import SiwsOrigin
    from marketd.auth.service import AuthService
    from marketd.core.memo import Throttle

    clock = [500.0]
    monkeypatch.setattr("marketd.core.memo.time.monotonic", lambda: clock[0])
    purge = Throttle(60)
    old = datetime.now(UTC) - timedelta(days=2)

    async def stale(nonce: str) -> None:
        await api.execute(
            "INSERT INTO auth_nonces (nonce, wallet, message, issued_at, expires_at)"
            " VALUES (:n, 'w', 'm', :at, :at)",
            n=nonce,
            at=old,
        )

    async def challenge() -> list[str]:
        async with api.container.database.session() as session:
            service = AuthService(
                session, api.container.settings, api.container.cache, nonce_purge=purge
            )
            origin = SiwsOrigin("testserver", "http://testserver")
            await service.challenge("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", origin)
        rows = await api.execute(
            "SELECT nonce FROM auth_nonces WHERE expires_at < :t", t=old + timedelta(1)
        )
        return [row[0] for row in rows]

    await stale("a" * 32)
    assert await challenge() == []  # the first challenge purges
    await stale("b" * 32)
    clock[0] += 59
    assert await challenge() == ["b" * 32]  # within the minute: left for later
    clock[0] += 2
    assert await challenge() == []

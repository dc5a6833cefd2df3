from __future__ import annotations

from fastapi import APIRouter, Request, status

from marketd.auth.dependencies import CurrentWallet, bearer_token
from marketd.auth.schemas import ChallengeRequest, ChallengeResponse, SessionResponse, VerifyRequest
from marketd.auth.service import AuthService
from marketd.core.deps import ContainerDep, SessionDep, SettingsDep
from marketd.core.openapi import problems

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/challenge",
    response_model=ChallengeResponse,
    responses=problems(
        {422: "Also `malformed-sign-in` (`reason` `invalid_wallet`): not a Solana address."}
    ),
)
async def challenge(
    body: ChallengeRequest, session: SessionDep, settings: SettingsDep
) -> ChallengeResponse:
    """Issue a Sign-In With Solana message with a single-use nonce (valid 5 minutes)."""
    message = await AuthService(session, settings).challenge(body.wallet)
    return ChallengeResponse(
        message=message.to_text(), nonce=message.nonce, expires_at=message.expiration_time
    )


@router.post(
    "/verify",
    response_model=SessionResponse,
    responses=problems(
        {
            401: "`sign-in-rejected`: the message or signature does not match an issued, unused, "
            "unexpired challenge (`reason` says which: `unknown_nonce`, `nonce_used`, `expired`, "
            "`bad_signature`, a field that differs...).",
            422: "Also `malformed-sign-in`: the message does not parse, or the signature or "
            "address is malformed (`reason`).",
        }
    ),
)
async def verify(
    body: VerifyRequest, session: SessionDep, settings: SettingsDep
) -> SessionResponse:
    """Check the signed message against the issued challenge and open a session."""
    issued = await AuthService(session, settings).verify(body.message, body.signature)
    return SessionResponse(token=issued.token, wallet=issued.wallet, expires_at=issued.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    request: Request, wallet: CurrentWallet, session: SessionDep, container: ContainerDep
) -> None:
    """Revoke the calling session (on every instance at once)."""
    # CurrentWallet has already required a live bearer token.
    service = AuthService(session, container.settings, container.cache)
    await service.logout(bearer_token(request.scope) or "")

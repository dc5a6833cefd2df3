from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from marketd.auth.dependencies import CurrentWallet, bearer_token
from marketd.auth.schemas import ChallengeRequest, ChallengeResponse, SessionResponse, VerifyRequest
from marketd.auth.service import AuthService
from marketd.core.deps import ContainerDep, SessionDep, SettingsDep
from marketd.core.responses import no_content

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/challenge", response_model=ChallengeResponse)
async def challenge(
    body: ChallengeRequest, session: SessionDep, settings: SettingsDep
) -> ChallengeResponse:
    """Issue a Sign-In With Solana message with a single-use nonce (valid 5 minutes)."""
    message = await AuthService(session, settings).challenge(body.wallet)
    return ChallengeResponse(
        message=message.to_text(), nonce=message.nonce, expires_at=message.expiration_time
    )


@router.post("/verify", response_model=SessionResponse)
async def verify(
    body: VerifyRequest, session: SessionDep, settings: SettingsDep
) -> SessionResponse:
    """Check the signed message against the issued challenge and open a session."""
    issued = await AuthService(session, settings).verify(body.message, body.signature)
    return SessionResponse(token=issued.token, wallet=issued.wallet, expires_at=issued.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(
    request: Request, wallet: CurrentWallet, session: SessionDep, container: ContainerDep
) -> Response:
    """Revoke the calling session (on every instance at once)."""
    # CurrentWallet has already required a live bearer token.
    service = AuthService(session, container.settings, container.cache)
    await service.logout(bearer_token(request.scope) or "")
    return no_content()

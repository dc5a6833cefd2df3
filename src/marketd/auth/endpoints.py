from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from marketd.auth.dependencies import AuthServiceDep, CurrentWallet, bearer_token
from marketd.auth.origin import BadHost, SiwsOrigin, siws_origin
from marketd.auth.schemas import ChallengeRequest, ChallengeResponse, SessionResponse, VerifyRequest
from marketd.core.deps import SettingsDep
from marketd.core.errors import BadRequest
from marketd.core.openapi import problems
from marketd.core.responses import no_content

router = APIRouter(prefix="/api/auth", tags=["auth"])


def request_origin(request: Request, settings: SettingsDep) -> SiwsOrigin:
    """The domain and URI of this request's sign-in (SIWS_DOMAIN/SIWS_URI, else its host)."""
    try:
        return siws_origin(request.scope, settings)
    except BadHost as exc:
        raise BadRequest(str(exc), reason="bad_host") from exc


Origin = Annotated[SiwsOrigin, Depends(request_origin)]


@router.post(
    "/challenge",
    response_model=ChallengeResponse,
    responses=problems(
        {
            400: "Also `bad_host` (`reason`): SIWS_DOMAIN is unset and the request's Host is "
            "not a host name.",
            422: "Also `malformed-sign-in` (`reason` `invalid_wallet`): not a Solana address.",
        }
    ),
)
async def challenge(
    body: ChallengeRequest, auth: AuthServiceDep, origin: Origin
) -> ChallengeResponse:
    """Issue a Sign-In With Solana message with a single-use nonce (valid NONCE_TTL_SECONDS,
    5 minutes by default). It names SIWS_DOMAIN, or when unset the host this request reached."""
    message = await auth.challenge(body.wallet, origin)
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
async def verify(body: VerifyRequest, auth: AuthServiceDep, origin: Origin) -> SessionResponse:
    """Check the signed message against the issued challenge (and the domain this request
    resolves, as the challenge did) and open a session."""
    issued = await auth.verify(body.message, body.signature, origin)
    return SessionResponse(token=issued.token, wallet=issued.wallet, expires_at=issued.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(request: Request, wallet: CurrentWallet, auth: AuthServiceDep) -> Response:
    """Revoke the calling session (on every instance at once)."""
    # CurrentWallet has already required a live bearer token.
    await auth.logout(bearer_token(request.scope) or "")
    return no_content()

"""The user profile reads as a FastAPI dependency (in the request's session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.core.deps import SessionDep
from marketd.users.service import UserReadService


async def user_reads(session: SessionDep) -> UserReadService:
    return UserReadService(session)


UserReadServiceDep = Annotated[UserReadService, Depends(user_reads)]

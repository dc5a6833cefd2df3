"""FastAPI dependencies that hand the container's parts to endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.config import Settings
from marketd.core.container import Container


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_settings(container: ContainerDep) -> Settings:
    return container.settings


READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request, container: ContainerDep) -> AsyncIterator[AsyncSession]:
    """A read-only (autocommit) session for GET/HEAD, a transactional one for writes."""
    async with container.database.session(read_only=request.method in READ_METHODS) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

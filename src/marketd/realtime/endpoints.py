"""The `/ws` route: every connection is served by the application's `Realtime`."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from marketd.realtime.service import Realtime

router = APIRouter(tags=["realtime"])


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    """Per-market live events; protocol in `marketd.realtime.protocol`, for API users in
    `websocket.md` (see `marketd.realtime.docs`)."""
    realtime: Realtime = websocket.app.state.realtime
    await realtime.serve(websocket)

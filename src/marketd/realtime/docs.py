"""The `/ws` protocol where API users look: in the OpenAPI document and as a served page.

`websocket.md` (beside this module) is the one description of the protocol for API users. It
is served as is at `PROTOCOL_PATH`, linked from the API description, and is the description of
a `GET /ws` operation in the OpenAPI document: the WebSocket handshake is that GET request, so
Swagger UI and ReDoc list the WebSocket with the other routes.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

PROTOCOL_PATH = "/docs/websocket.md"
PROTOCOL_MEDIA_TYPE = "text/markdown; charset=utf-8"
OPERATION_ID = "websocket"


@cache
def protocol_markdown() -> str:
    return resources.files("marketd.realtime").joinpath("websocket.md").read_text(encoding="utf-8")


def websocket_path_item() -> dict[str, Any]:
    """The OpenAPI path item of `/ws`: its handshake, described by `websocket.md`."""
    return {
        "get": {
            "tags": ["realtime"],
            "summary": "WebSocket: live market events",
            "operationId": OPERATION_ID,
            "description": protocol_markdown(),
            "externalDocs": {"description": "The protocol as markdown", "url": PROTOCOL_PATH},
            "parameters": [
                {
                    "name": "Upgrade",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "enum": ["websocket"]},
                    "description": "The WebSocket handshake (RFC 6455) that every client sends.",
                }
            ],
            "responses": {
                "101": {"description": "Switching Protocols: the WebSocket is open."},
            },
        }
    }

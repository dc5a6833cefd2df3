"""/docs and /redoc work with no internet, and the WebSocket protocol is documented there."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from marketd.activity.rules import ActivityKind
from marketd.app import create_app
from marketd.config import RealtimeSettings, Settings
from marketd.core.docs import ASSETS_PATH
from marketd.core.events import EVENT_TYPES
from marketd.realtime import protocol
from marketd.realtime.docs import PROTOCOL_PATH, protocol_markdown
from marketd.realtime.hub import GOING_AWAY, POLICY_VIOLATION, SLOW_CLIENT
from marketd.realtime.protocol import MAX_MESSAGE_CHARS
from marketd.realtime.service import TRY_AGAIN_LATER

SRC = Path(__file__).resolve().parents[2] / "src" / "marketd"


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: the docs, the document and the assets need no database."""
    app = create_app(Settings(environment="test", data_dir=tmp_path, _env_file=None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.container.close()


class _Links(HTMLParser):
    """Every URL an HTML page makes the browser load: src, href and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in {"src", "href", "spec-url"} and v is not None]


def _loaded_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    # Swagger UI is started by an inline script that names the document it loads.
    return parser.urls + re.findall(r"\burl: '([^']*)'", html)


EXPECTED_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
async def test_docs_pages_load_only_what_the_server_serves(client, page, expected):
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text
    urls = _loaded_urls(response.text)
    assert {url.rsplit("/", 1)[-1] for url in urls} == expected
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        media_type = asset.headers["content-type"].split(";")[0]
        assert media_type in EXPECTED_TYPES[Path(parts.path).suffix], (url, media_type)
        assert asset.content
    # The browser itself refuses anything from another origin (ReDoc's footer logo).
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "http" not in policy


async def test_served_ui_versions_read_openapi_3_1(client):
    """Swagger UI reads OpenAPI 3.1 from version 5 on (4.x, as in swagger-ui-bundle 1.1.0,
    shows 'Unable to render this definition'); ReDoc from 2.0."""
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    swagger = (await client.get(f"{ASSETS_PATH}/swagger-ui-bundle.js")).text
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', swagger)
    redoc = (await client.get(f"{ASSETS_PATH}/redoc.standalone.js")).text
    assert re.search(r'" ReDoc Version: ","2\.\d+\.\d+"', redoc)


async def test_missing_asset_is_a_404(client):
    assert (await client.get(f"{ASSETS_PATH}/nothing.js")).status_code == 404


async def test_websocket_protocol_is_reachable_from_docs(client):
    docs = (await client.get("/docs")).text
    (document_url,) = re.findall(r"\burl: '([^']*)'", docs)
    document = (await client.get(document_url)).json()
    description = document["info"]["description"]
    assert f"]({PROTOCOL_PATH})" in description  # a markdown link to the served page
    assert "](#/realtime/websocket)" in description  # Swagger UI's deep link to /ws
    operation = document["paths"]["/ws"]["get"]
    assert operation["operationId"] == "websocket" and operation["tags"] == ["realtime"]
    assert operation["externalDocs"]["url"] == PROTOCOL_PATH
    assert list(operation["responses"]) == ["101"]
    page = await client.get(PROTOCOL_PATH)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/markdown; charset=utf-8"
    assert page.text == operation["description"] == protocol_markdown()


def _codes_raised_in_realtime() -> set[str]:
    codes: set[str] = set()
    for source in (SRC / "realtime").glob("*.py"):
        text = source.read_text()
        codes |= set(re.findall(r'ProtocolError\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'protocol\.error\(\s*"([a-z_]+)"', text))
    return codes


def _event_types_published() -> set[str]:
    return set(EVENT_TYPES)


def test_websocket_doc_covers_what_the_code_does():
    """Each message, event, error code, close code and limit of marketd.realtime is in the
    document, with the defaults the code has (a new one fails here until it is documented)."""
    doc = " ".join(protocol_markdown().split())  # as read: line breaks are spaces
    client_types = {"subscribe", "unsubscribe", "ping", "auth"}
    for kind in client_types:
        assert f'{{"type":"{kind}"' in doc, kind
    server_frames = [
        protocol.subscribed("m"),
        protocol.unsubscribed("m"),
        protocol.market_state("m", 1, {}),
        protocol.resync_required("m", 1, None, 2),
        protocol.pong(None),
        protocol.heartbeat(),
        protocol.authenticated("w"),
        protocol.error("c", "x"),
        protocol.activity({"kind": "trade"}),
        protocol.joined("activity"),
    ]
    for frame in server_frames:
        kind = re.search(r'"type":"([a-z_]+)"', frame)
        assert kind is not None and f'"type":"{kind.group(1)}"' in doc, frame
    for field in ("marketId", "sinceSeq", "oldestSeq", "seq", "market", "wallet", "code"):
        assert f'"{field}"' in doc, field
    for field in ("channel", "kinds", "item"):
        assert f'"{field}"' in doc, field
    for kind in ActivityKind:  # the `kinds` filter of the activity channel
        assert f"`{kind.value}`" in doc, kind
    codes = _codes_raised_in_realtime()
    assert codes >= {"invalid_json", "unknown_market", "too_many_subscriptions", "unavailable"}
    for code in codes:
        assert f"| `{code}` |" in doc, code
    events = _event_types_published()
    assert events >= {"trade", "vote", "market_state_change", "discussion", "snapshot"}
    for event in events:
        assert f"| `{event}` |" in doc, event
    for close_code in (SLOW_CLIENT, POLICY_VIOLATION, GOING_AWAY, TRY_AGAIN_LATER):
        assert f"**{close_code}**" in doc, close_code
    defaults = RealtimeSettings()
    for name, shown in (
        ("WS_MAX_CONNECTIONS_PER_IP", f"({defaults.max_connections_per_ip} by default"),
        ("WS_MAX_SUBSCRIPTIONS", f"({defaults.max_subscriptions} by default"),
        ("WS_REPLAY_EVENTS", f"{defaults.replay_events:,} by default"),
        ("WS_HEARTBEAT_SECONDS", f"({defaults.heartbeat_seconds:g} s by default"),
        ("WS_SEND_BUFFER_BYTES", f"({defaults.send_buffer_bytes // 2**20} MiB by default"),
    ):
        assert f"`{name}`" in doc and shown in doc, name
    assert f"{MAX_MESSAGE_CHARS:,} characters" in doc

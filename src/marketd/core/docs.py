"""The API documentation pages, served whole by marketd: they work with no internet.

FastAPI's `/docs` and `/redoc` load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from
Google), so offline they are blank pages. Here both pages load their scripts, stylesheet and
icon from `/docs/assets/`, served from the files the `fastapi-offline` package ships (Swagger UI
5 and ReDoc 2, which both read OpenAPI 3.1; only those files of the package are used). Swagger
UI's online validator badge is turned off (it would send the document to validator.swagger.io).

`documents` are further pages linked from the API description (the WebSocket protocol), served
under their path as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS_PATH = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")
"""The package directory holding swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and
favicon.png."""

SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the pages start their UI in an inline script
        "style-src 'self' 'unsafe-inline'",  # both UIs set inline styles
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",  # ReDoc's search index runs in a worker
        "connect-src 'self'",
    )
)
"""Sent with both pages: the browser itself refuses anything from another origin (ReDoc's
footer would otherwise fetch the Redocly logo from its CDN)."""


@dataclass(frozen=True)
class Document:
    text: str
    media_type: str


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def install_docs(
    app: FastAPI,
    *,
    docs_url: str = "/docs",
    redoc_url: str = "/redoc",
    documents: Mapping[str, Document] | None = None,
) -> None:
    """Serve Swagger UI at `docs_url`, ReDoc at `redoc_url`, their assets and `documents`
    (the app is created with `docs_url=None, redoc_url=None`)."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    app.mount(ASSETS_PATH, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return _same_origin_only(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return _same_origin_only(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
    for path, document in (documents or {}).items():
        app.add_route(path, _serve(document), include_in_schema=False)


def _serve(document: Document) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response(document.text, media_type=document.media_type)

    return serve

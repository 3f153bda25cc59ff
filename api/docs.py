"""Swagger UI at `/docs` (CONTRACT 2.6) for the served `/openapi.json`, from swagger-ui-py's bundled files.

swagger-ui-py renders the page and ships Swagger UI's files; the routes are ours: the page points
at the document's own route (swagger-ui-py would look under `/docs/`), and a file that is not one
of Swagger UI's answers the contract's JSON 404 (aiohttp's static route sends an empty one).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui import core

PREFIX = "/docs"
ROUTES = ("/", PREFIX, PREFIX + "/", PREFIX + "/static/{name}")  # pages for people, left out of the OpenAPI document


def add_docs(app: web.Application, *, title: str) -> None:
    """Register /docs, /docs/, /docs/static/{name} and `/` (leading to /docs) on `app`: ROUTES, not operations."""
    doc = core.ApplicationDocument(
        app, app_type="aiohttp", config_rel_url="/openapi.json", url_prefix=PREFIX, title=title
    )
    doc.parameters["url"] = '"/openapi.json"'
    page = doc.doc_html
    static = Path(doc.static_dir)
    files = {p.name: p for p in static.iterdir() if p.is_file() and not p.name.endswith(".map")}

    async def swagger_ui(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def swagger_file(request: web.Request) -> web.FileResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(reason="no such file")
        return web.FileResponse(found, headers={"Cache-Control": "public, max-age=86400"})

    async def to_the_docs(request: web.Request) -> web.Response:
        raise web.HTTPFound(PREFIX)

    app.router.add_get("/", to_the_docs)  # a person opening the API's address lands on its documentation
    app.router.add_get(PREFIX, swagger_ui)
    app.router.add_get(PREFIX + "/", swagger_ui)
    app.router.add_get(PREFIX + "/static/{name}", swagger_file)

"""CORS for browser clients (CONTRACT 2.7): the origins in IMAGES_CORS_ORIGINS may call `/api/`.

aiohttp-cors answers the preflights and adds the headers to every answer of a listed origin,
error answers included, so a page can read a 401, 413 or 429. Credentials are bearer tokens in
`Authorization`, never cookies: `Access-Control-Allow-Credentials` stays off. An origin not
listed gets no CORS header, and the browser keeps the answer from the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp_cors
from aiohttp import web

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id")
EXPOSED_HEADERS = ("X-Request-Id", "Idempotency-Replayed", "Retry-After", "WWW-Authenticate")
PREFLIGHT_CACHE_S = 600


def allow_origins(app: web.Application, origins: Sequence[str]) -> None:
    """Answer CORS for these origins on every `/api/` route; nothing when there are none."""
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=False,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_methods=("GET", "POST"),
        max_age=PREFLIGHT_CACHE_S,
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        resource = route.resource
        if resource is not None and resource.canonical.startswith("/api/") and route.method != "OPTIONS":
            cors.add(route)

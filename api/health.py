"""Health: `/health` (the process answers) and `/actuator/health` (every component it needs)."""

from __future__ import annotations

from aiohttp import web

from adapters import health
from api import keys
from api.errors import dumps


async def simple_health(request: web.Request) -> web.Response:
    """Answer `Server is up` whenever the process serves requests."""
    return web.Response(text="Server is up", content_type="text/plain")


async def actuator_health(request: web.Request) -> web.Response:
    """Check db, diskSpace, kafka and fileSystem (the storage: a directory or a bucket); 503 when any is DOWN."""
    settings = request.app[keys.SETTINGS]
    components = await health.check_all(request.app[keys.POOL], settings, request.app[keys.STORAGE])
    up = all(c.up for c in components.values())
    body = {"status": "UP" if up else "DOWN", "components": {k: c.to_json() for k, c in components.items()}}
    return web.json_response(body, status=200 if up else 503, dumps=dumps)

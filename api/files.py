"""`GET /images/{key}`: the files of a `file://` store, in local runs (on S3 the bucket or its CDN serves them)."""

from __future__ import annotations

from aiohttp import web

from api import keys
from core.upload_rules import ORIGINALS_DIR, content_type

HEADERS = {
    "Cache-Control": "public, max-age=2592000, immutable",  # a key never changes its bytes
    "X-Content-Type-Options": "nosniff",
    # Sanitised SVGs still must not run anything when opened directly.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


async def serve_file(request: web.Request) -> web.StreamResponse:
    """Send a stored file with its image type; originals awaiting conversion are not public."""
    key = request.match_info["key"]
    if key.startswith(ORIGINALS_DIR + "/"):
        raise web.HTTPNotFound()
    try:
        path = request.app[keys.SERVED_DIRECTORY].path(key)
        found = path.is_file()
    except (ValueError, OSError):  # outside the root, a NUL byte, a name too long for the disk
        found = False
    if not found:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": content_type(key), **HEADERS})

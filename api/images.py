"""Reads: `GET /api/v1/images/{id}`."""

from __future__ import annotations

from aiohttp import web

from adapters.db import queries
from api import keys
from api.auth import caller
from api.errors import dumps
from core import auth, errors


async def get_image(request: web.Request) -> web.Response:
    """Return the image's status, url, reference, sequence, sizes and formats."""
    image_id = request.match_info["image_id"]
    details = await queries.image_details(request.app[keys.POOL], image_id)
    # Without images:read only one's own images: any other id, existing or not, is FORBIDDEN alike.
    auth.require_read(caller(request), None if details is None else details["uploaderId"])
    if details is None:
        raise errors.ImageNotFound(f"image {image_id} does not exist")
    return web.json_response(details, dumps=dumps)

"""The enum endpoints: extensions and reference types from the reference cache, and the Java service's legacy shapes."""

from __future__ import annotations

from aiohttp import web

from api import keys
from api.errors import dumps


async def extensions(request: web.Request) -> web.Response:
    """Return the extension code -> name map from the reference cache."""
    return web.json_response(request.app[keys.REFERENCES].data.extensions, dumps=dumps)


async def reference_types(request: web.Request) -> web.Response:
    """Return the reference type code -> name map from the reference cache."""
    rules = request.app[keys.REFERENCES].data.rules
    return web.json_response({code: rule.name for code, rule in rules.items()}, dumps=dumps)


async def legacy_extensions(request: web.Request) -> web.Response:
    """`GET /api/extensions` as the Java service serves it: code -> {code, name} (deprecated)."""
    names = request.app[keys.REFERENCES].data.extensions
    return web.json_response({code: {"code": code, "name": name} for code, name in names.items()}, dumps=dumps)


async def legacy_reference_types(request: web.Request) -> web.Response:
    """`GET /api/referenceType` as the Java service serves it: code -> the type's fields (deprecated)."""
    rules = request.app[keys.REFERENCES].data.rules
    body = {
        code: {
            "code": code,
            "name": rule.name,
            "allowsMultiple": rule.allows_multiple,
            "maxImages": rule.max_images,
            "description": rule.description,
        }
        for code, rule in rules.items()
    }
    return web.json_response(body, dumps=dumps)

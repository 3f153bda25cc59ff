"""`GET /openapi.json`: a valid OpenAPI 3.1 document that documents every registered route."""

from __future__ import annotations

import re

from aiohttp import web
from openapi_spec_validator import validate

from api.app import create_app


async def test_openapi_document_is_valid_3_1(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/openapi.json")
    doc = await r.json()
    assert r.status == 200 and doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_registered_route_is_documented(settings) -> None:  # type: ignore[no-untyped-def]
    from api import docs
    from api.openapi import DOCUMENT

    app = create_app(settings)
    documented = {(path, method.upper()) for path, ops in DOCUMENT["paths"].items() for method in ops}
    registered = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or (info.get("prefix", "") + "/{path}")
        registered.add((re.sub(r"//+", "/", path), route.method))
    pages = {(path, "GET") for path in docs.ROUTES}  # Swagger UI's own pages and `/`: not API operations
    assert registered - pages <= documented, f"undocumented routes: {sorted(registered - pages - documented)}"
    assert not pages & documented, "the document lists Swagger UI's pages as operations"
    assert all(op["tags"] for ops in DOCUMENT["paths"].values() for op in ops.values()), "an untagged operation"
    assert isinstance(app, web.Application)

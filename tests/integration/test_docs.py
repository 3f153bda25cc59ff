"""Swagger UI at `/docs` (CONTRACT 2.6): served from swagger-ui-py, rendering the served /openapi.json.

The browser test opens the page in headless Chromium (Debian's `chromium`, which `make test`
installs when missing) and reads the rendered page: every documented path must be listed.
"""

from __future__ import annotations

from api.openapi import DOCUMENT
from tests.browser import dump_dom


async def test_docs_serve_swagger_ui_and_its_files(client) -> None:  # type: ignore[no-untyped-def]
    page = await client.get("/docs")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert '"/openapi.json"' in html and "/docs/static/swagger-ui-bundle.js" in html
    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status == 200 and len(await script.read()) > 100_000
    missing = await client.get("/docs/static/nothing.js")
    assert (missing.status, (await missing.json())["code"]) == (404, "NOT_FOUND")


async def test_a_browser_sees_every_endpoint_listed(client) -> None:  # type: ignore[no-untyped-def]
    dom = await dump_dom(f"http://{client.host}:{client.port}/docs")  # the page fetches /openapi.json and renders it
    listed = {path for path in DOCUMENT["paths"] if f'data-path="{path}"' in dom}
    assert listed == set(DOCUMENT["paths"]), f"not listed: {sorted(set(DOCUMENT['paths']) - listed)}"
    assert "image-server" in dom
    assert 'data-path="/docs' not in dom  # Swagger UI's own pages are not listed as operations
    assert all(f'data-tag="{tag["name"]}"' in dom for tag in DOCUMENT["tags"]), "operations grouped by tag"


async def test_the_api_address_leads_a_person_to_the_docs(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (302, "/docs")

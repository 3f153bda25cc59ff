"""Swagger UI at `/docs` (CONTRACT 2.6): served from swagger-ui-py, rendering the served /openapi.json.

The browser test opens the page in headless Chromium (Debian's `chromium`, which `make test`
installs when missing) and reads the rendered page: every documented path must be listed.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from api.openapi import DOCUMENT
from tests import services

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        services.unavailable("a headless Chromium (python scripts/devstack.py tools installs Debian's)")
    return str(found)


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
    chromium = browser()
    url = f"http://{client.host}:{client.port}/docs"
    proc = await asyncio.create_subprocess_exec(
        chromium,
        "--headless=new",
        "--no-sandbox",  # running as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=15000",  # let the page fetch /openapi.json and render it
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("Chromium did not render /docs within 90 s")
    dom = out.decode(errors="replace")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    listed = {path for path in DOCUMENT["paths"] if f'data-path="{path}"' in dom}
    assert listed == set(DOCUMENT["paths"]), f"not listed: {sorted(set(DOCUMENT['paths']) - listed)}"
    assert "image-server" in dom

"""CORS (issue 23): a page of a listed origin uploads with `fetch` and a bearer token; others are refused.

The browser test serves two pages from two other origins (other ports) and opens each in headless
Chromium: the listed one's upload is answered and read by the page, the unlisted one's is
stopped by the browser at the preflight, so the upload is never even sent.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import aiomysql
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.settings import Settings
from tests import images
from tests.browser import dump_dom
from tests.integration.conftest import ClientFactory, fetch_all
from tests.integration.test_auth import jwt_settings
from tests.issuer import TestIssuer, bearer

PAGE = """<!doctype html><html><body><pre id="result">pending</pre><script>
(async () => {
  const out = document.getElementById("result");
  try {
    const bytes = Uint8Array.from(atob("%(png)s"), c => c.charCodeAt(0));
    const form = new FormData();
    form.append("file", new Blob([bytes], {type: "image/png"}), "from-the-browser.png");
    form.append("category", "POST");
    const r = await fetch("%(api)s/api/images", {
      method: "POST", body: form,
      headers: {"Authorization": "Bearer %(token)s", "Idempotency-Key": "%(key)s"},
    });
    const body = await r.json();
    out.textContent = "status=" + r.status + " id=" + body.id + " request=" + r.headers.get("X-Request-Id");
  } catch (e) {
    out.textContent = "refused=" + e.name;
  }
})();
</script></body></html>"""


@pytest.fixture
def issuer() -> AsyncIterator[TestIssuer]:
    with TestIssuer() as running:
        yield running  # type: ignore[misc]


@pytest.fixture
async def page_server() -> AsyncIterator[Callable[[dict[str, str]], asyncio.Future[TestServer]]]:
    """Serves `page["html"]` at `/`, read at each request: a page can be written once its server's origin is known."""
    servers: list[TestServer] = []

    async def serve(page: dict[str, str]) -> TestServer:
        async def html(request: web.Request) -> web.Response:
            return web.Response(text=page["html"], content_type="text/html")

        app = web.Application()
        app.router.add_get("/", html)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield serve  # type: ignore[misc]
    for s in servers:
        await s.close()


async def cors_api(settings: Settings, make_client: ClientFactory, issuer: TestIssuer, origin: str) -> TestClient:
    return await make_client(jwt_settings(settings, issuer, cors_origins=(origin,)))


async def test_a_preflight_of_a_listed_origin_allows_the_token_and_the_idempotency_key(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer
) -> None:
    api = await cors_api(settings, make_client, issuer, "https://app.example.com")
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,idempotency-key"}
    r = await api.options("/api/images", headers={"Origin": "https://app.example.com", **asked})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")} >= {
        "authorization",
        "idempotency-key",
    }
    assert "Access-Control-Allow-Credentials" not in r.headers
    refused = await api.options("/api/images", headers={"Origin": "https://evil.example.com", **asked})
    assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers


async def test_an_error_answer_to_a_listed_origin_is_readable_by_the_page(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, issuer: TestIssuer
) -> None:
    api = await cors_api(settings, make_client, issuer, "https://app.example.com")
    r = await api.get("/api/v1/enums/extensions", headers={"Origin": "https://app.example.com"})
    assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"www-authenticate", "retry-after", "x-request-id", "idempotency-replayed"} <= exposed
    ok = await api.get(
        "/api/v1/enums/extensions", headers={"Origin": "https://other.example.com", **bearer(issuer.token())}
    )
    assert ok.status == 200 and "Access-Control-Allow-Origin" not in ok.headers


async def open_page(url: str) -> str:
    """What the page wrote in its result, once its fetch is done."""
    dom = await dump_dom(url)
    return dom.split('<pre id="result">', 1)[1].split("</pre>", 1)[0]


async def test_a_page_of_a_listed_origin_uploads_and_an_unlisted_one_is_refused_by_the_browser(
    settings: Settings,
    pool: aiomysql.Pool,
    make_client: ClientFactory,
    issuer: TestIssuer,
    page_server: Callable[[dict[str, str]], asyncio.Future[TestServer]],
) -> None:
    values = {"png": base64.b64encode(images.png()).decode(), "token": issuer.token(sub="browser-user")}
    listed_page: dict[str, str] = {}
    listed = await page_server(listed_page)
    origin = f"http://127.0.0.1:{listed.port}"
    api = await cors_api(settings, make_client, issuer, origin)
    api_url = f"http://{api.host}:{api.port}"
    listed_page["html"] = PAGE % (values | {"api": api_url, "key": "k1"})

    result = await open_page(f"{origin}/")
    assert result.startswith("status=200 id="), result
    image_id = result.split("id=")[1].split()[0]
    assert "request=" in result and not result.endswith("request=null")  # an exposed header was readable
    assert await fetch_all(pool, "SELECT uploader_id FROM images WHERE image_id = %s", image_id) == [("browser-user",)]

    unlisted = await page_server({"html": PAGE % (values | {"api": api_url, "key": "k2"})})
    result = await open_page(f"http://127.0.0.1:{unlisted.port}/")
    assert result == "refused=TypeError", result
    assert await fetch_all(pool, "SELECT COUNT(*) FROM images") == [(1,)]  # the refused upload was never sent

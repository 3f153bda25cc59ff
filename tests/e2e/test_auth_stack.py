"""The whole stack with IMAGES_AUTH=jwt (issue 23): docs/security.md's quickstart with tokens, as written.

The api, a relay and a worker run as processes with a shared HS256 secret in a file; the tokens
are the ones `python -m workers token` prints, as a developer would make them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from adapters.auth.tokens import mint
from core.dsn import DbDsn
from tests import services
from tests.e2e.conftest import Stack, running_stack, stack_settings
from tests.e2e.readme import readme_block, run_readme_block


@pytest.fixture(scope="module")
def auth_stack(database: DbDsn, kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("auth-stack")
    secret = root / "jwt-secret"
    secret.write_text(os.urandom(48).hex() + "\n")
    settings = stack_settings(
        database,
        kafka,
        root,
        auth="jwt",
        auth_issuer="local",
        auth_audience="image-server",
        auth_hs256_secret_file=str(secret),
        api_metrics_port=services.free_port(),
    )
    with running_stack(settings, root) as s:
        yield s


async def test_the_security_docs_quickstart_with_tokens_runs_as_written(auth_stack: Stack, tmp_path: Path) -> None:
    script = readme_block("## Quickstart with tokens", "docs/security.md")
    secret_line = "IMAGES_AUTH_HS256_SECRET_FILE=var/jwt-secret"
    assert secret_line in script
    # This stack's secret file; the block's own exports turn authentication on for its commands.
    script = script.replace(secret_line, f"IMAGES_AUTH_HS256_SECRET_FILE={auth_stack.settings.auth_hs256_secret_file}")
    await run_readme_block(script, auth_stack.settings, tmp_path)


async def test_every_api_endpoint_refuses_a_missing_token_and_the_open_ones_answer(auth_stack: Stack) -> None:
    base = f"http://127.0.0.1:{auth_stack.settings.api_port}"
    calls = [
        ("POST", "/api/images"),
        ("GET", "/api/v1/images/00000000-0000-4000-8000-000000000000"),
        ("POST", "/api/v1/images/confirm"),
        ("POST", "/api/v1/images/confirm/product-1?imageId="),
        ("GET", "/api/v1/enums/extensions"),
        ("GET", "/api/v1/enums/referenceType"),
        ("GET", "/api/extensions"),
        ("GET", "/api/referenceType"),
        ("GET", "/metrics"),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path in calls:
            async with http.request(method, base + path) as r:
                body = await r.json()
                assert (r.status, body["code"]) == (401, "UNAUTHORIZED"), path
                assert r.headers["WWW-Authenticate"].startswith("Bearer"), path
        for path in ("/health", "/actuator/health", "/openapi.json", "/docs"):
            async with http.get(base + path) as r:
                assert r.status == 200, path
    api = auth_stack.processes["api"]
    assert not [e for e in api.log_events() if e.get("event") == "authentication_off"]


async def test_metrics_are_served_on_their_own_port_and_not_on_the_apis(auth_stack: Stack) -> None:
    settings = auth_stack.settings
    token = mint(settings, "monitoring", scopes=["images:metrics"], ttl_s=60)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{settings.api_metrics_port}/metrics") as r:
            assert r.status == 200 and "images_total" in await r.text()  # no token: a private port
        async with http.get(
            f"http://127.0.0.1:{settings.api_port}/metrics", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert (r.status, (await r.json())["code"]) == (404, "NOT_FOUND")


async def test_the_jwt_secret_and_the_tokens_never_reach_a_log_line(auth_stack: Stack) -> None:
    """After the quickstart's calls: tokens were sent with every one of them, and failed ones too."""
    secret = Path(auth_stack.settings.auth_hs256_secret_file).read_text().strip()
    token = mint(auth_stack.settings, "someone", scopes=["images:read"], ttl_s=60)
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{auth_stack.settings.api_port}/api/v1/images/nothing"
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 404  # images:read: a missing image is simply not found
        async with http.get(url, headers={"Authorization": f"Bearer {token[:-4]}AAAA"}) as r:
            assert r.status == 401
    for name, process in auth_stack.processes.items():
        log = process.log()
        assert secret not in log and token[-30:] not in log, name

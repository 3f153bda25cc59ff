"""The whole stack with IMAGES_AUTH=jwt (issue 23): the README's quickstart with tokens, as written.

The api, a relay and a worker run as processes with a shared HS256 secret in a file; the tokens
are the ones `python -m workers token` prints, as a developer would make them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from core.dsn import DbDsn
from tests import images, services
from tests.e2e.conftest import Stack, running_stack, stack_settings
from tests.processes import ROOT, settings_env


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
    )
    with running_stack(settings, root) as s:
        yield s


def token_block() -> str:
    """The README's quickstart with tokens, exactly as written there."""
    section = (ROOT / "README.md").read_text().split("### Quickstart with tokens", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


async def test_the_readmes_quickstart_with_tokens_runs_as_written(auth_stack: Stack, tmp_path: Path) -> None:
    if not shutil.which("jq"):
        services.unavailable("jq (python scripts/devstack.py tools installs Debian's)")
    script = token_block()
    secret_line, local = "IMAGES_AUTH_HS256_SECRET_FILE=var/jwt-secret", "API=http://127.0.0.1:8080\n"
    assert secret_line in script and local in script
    settings = auth_stack.settings
    script = script.replace(secret_line, f"IMAGES_AUTH_HS256_SECRET_FILE={settings.auth_hs256_secret_file}")
    script = script.replace(local, f"API=http://127.0.0.1:{settings.api_port}\n")  # this stack's port
    (tmp_path / "photo.jpg").write_bytes(images.noisy_jpeg(640, 480))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**settings_env(settings), "PATH": os.environ["PATH"], "IMAGES_LOG_FORMAT": "json"}
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    event = json.loads(done.stdout.strip().splitlines()[-1])
    assert (event["topic"], event["key"], event["value"]["eventType"]) == (
        "product-image-changed",
        "product-1",
        "IMAGES_CHANGED",
    )


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

"""Quotas per uploader (issue 23) over real HTTP on MariaDB: counted in the upload's own transaction.

Concurrent uploads of one uploader at the quota's edge never store more than the quota, whatever
the api replica (the lock is a MariaDB row, so two apps on one database are used here); other
uploaders are unaffected; a refused upload leaves no file behind.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import aiomysql
import orjson
from aiohttp.test_utils import TestClient

from core.settings import Settings
from tests import images
from tests.integration.conftest import ClientFactory, fetch_all
from tests.processes import ROOT, settings_env


def form(uploader: str, files: int = 1, size: int = 64) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for n in range(files):
        data.add_field("files", io.BytesIO(images.png(size, size)), filename=f"{n}.png", content_type="image/png")
    data.add_field("uploaderId", uploader)
    data.add_field("category", "POST")
    return data


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in Path(settings.upload_dir).rglob("*") if p.is_file()]


async def test_sixteen_concurrent_uploads_at_the_edge_never_pass_the_quota(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    limited = replace(settings, quota_images_per_hour=5)
    replicas = [await make_client(limited), await make_client(limited)]  # two apps, one database
    answers = await asyncio.gather(*(replicas[n % 2].post("/api/images", data=form("greedy")) for n in range(16)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] * 5 + [429] * 11
    refused = next(r for r in answers if r.status == 429)
    body = await refused.json()
    assert body["code"] == "QUOTA_EXCEEDED" and "images per hour" in body["message"]
    assert 3540 <= int(refused.headers["Retry-After"]) <= 3660  # the first upload leaves the window in an hour
    rows = await fetch_all(pool, "SELECT COUNT(*) FROM images WHERE uploader_id = 'greedy'")
    assert rows == [(5,)]
    assert len(stored_files(limited)) == 5  # the refused uploads' files were removed
    other = await replicas[0].post("/api/images", data=form("someone-else"))
    assert other.status == 200


async def test_a_multi_upload_counts_each_image_and_is_refused_whole(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    client = await make_client(replace(settings, quota_images_per_day=4))
    assert (await client.post("/api/images", data=form("multi", files=3))).status == 200
    over = await client.post("/api/images", data=form("multi", files=2))
    assert (over.status, (await over.json())["code"]) == (429, "QUOTA_EXCEEDED")
    assert await fetch_all(pool, "SELECT COUNT(*) FROM images WHERE uploader_id = 'multi'") == [(3,)]
    assert (await client.post("/api/images", data=form("multi", files=1))).status == 200


async def test_a_byte_quota_counts_the_originals_bytes(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    size = len(images.png(64, 64))
    client = await make_client(replace(settings, quota_bytes_per_hour=size * 2 + 10))
    assert (await client.post("/api/images", data=form("bytes"))).status == 200
    assert (await client.post("/api/images", data=form("bytes"))).status == 200
    third = await client.post("/api/images", data=form("bytes"))
    assert third.status == 429 and "bytes per hour" in (await third.json())["message"]
    alone = await client.post("/api/images", data=form("fresh-uploader", files=3))
    assert alone.status == 429  # one request over the limit on its own: never fits
    assert int(alone.headers["Retry-After"]) == 3600


async def test_the_admin_cli_shows_an_uploaders_usage(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    limited = replace(settings, quota_images_per_hour=10, quota_bytes_per_day=10_000_000)
    client: TestClient = await make_client(limited)
    assert (await client.post("/api/images", data=form("shown", files=2))).status == 200
    env = {**settings_env(limited), "PATH": "/usr/bin:/bin", "IMAGES_LOG_FORMAT": "json"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers", "quota", "shown"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    usage = orjson.loads(done.stdout)
    size = 2 * len(images.png(64, 64))
    assert usage["hour"] == {"images": 2, "bytes": size, "maxImages": 10, "maxBytes": 0}
    assert usage["day"] == {"images": 2, "bytes": size, "maxImages": 0, "maxBytes": 10_000_000}


async def test_an_uploader_over_quota_is_answered_before_its_body_is_sent(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, tmp_path: Path
) -> None:
    """With a token the uploader is known from the headers: no need to receive (and store) 5 MB to refuse them."""
    import jwt

    secret = b"q" * 40
    (tmp_path / "secret").write_bytes(secret)
    limited = replace(
        settings,
        quota_images_per_hour=1,
        auth="jwt",
        auth_hs256_secret_file=str(tmp_path / "secret"),
        auth_issuer="quota-test",
        auth_audience="images",
    )
    client = await make_client(limited)
    token = jwt.encode(
        {"iss": "quota-test", "aud": "images", "sub": "early", "exp": 2**31 - 1, "scope": "images:upload"},
        secret,
        algorithm="HS256",
    )
    first = await client.post("/api/images", data=form("early"), headers={"Authorization": f"Bearer {token}"})
    assert first.status == 200
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            (
                "POST /api/images HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: Bearer {token}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {5 * 1024 * 1024}\r\n\r\n--b\r\n"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # the rest of the body never comes
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 429") and b"Retry-After:" in head

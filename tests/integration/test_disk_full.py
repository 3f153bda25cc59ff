"""A full disk (issue 26): uploads answer 503 and store nothing, health says so, and it all recovers.

The store is a small tmpfs the test mounts (root is needed to mount; CI runs as root), filled
with a file of its own to leave less room than an upload needs. The api answers 503
SERVICE_UNAVAILABLE with Retry-After (not IMAGE_SAVE_FAILED: nothing is wrong with the upload,
and nothing was stored), leaves no partial file and no row, and `/actuator/health` reports
diskSpace DOWN. A worker converting while the disk is full waits for space instead of failing
the image. Removing the filler is all it takes to recover.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import aiomysql
import pytest
from structlog.testing import capture_logs

from adapters.db.reference_cache import ReferenceCache
from adapters.files.local import LocalStorage
from adapters.images.process_pool import ConverterPool
from core.settings import Settings
from tests import images, services
from tests.integration.conftest import ClientFactory, fetch_all, worker_resources
from tests.integration.test_workers import upload as upload_through_a_worker
from workers import handlers

PICTURE = images.noisy_jpeg(1200, 900)  # ~250 KB, incompressible: it needs its size on disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        services.unavailable(f"a tmpfs of our own (mount needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all of the disk's free space but `leave` bytes; return the filler, whose removal frees it."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as f:
        os.posix_fallocate(f.fileno(), 0, free - leave)
    return filler


def form(uploader: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", io.BytesIO(PICTURE), filename="a.jpg", content_type="image/jpeg")
    data.add_field("uploaderId", uploader)
    data.add_field("category", "POST")
    return data


def stored(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_uploads_to_a_full_disk_answer_503_store_nothing_and_recover(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, small_disk: Path
) -> None:
    root = small_disk / "uploads"
    client = await make_client(replace(settings, upload_dir=str(root)))
    filler = fill(small_disk, leave=64 * 1024)
    uploader = f"full-{uuid.uuid4().hex[:8]}"
    for path in ("/api/images", "/api/images?sync=true"):
        r = await client.post(path, data=form(uploader))
        body = await r.json()
        assert (r.status, body["code"], r.headers.get("Retry-After")) == (503, "SERVICE_UNAVAILABLE", "30"), body
        assert "full" in body["message"] and "nothing was stored" in body["message"]
    assert stored(root) == []  # no partial file left behind
    assert await fetch_all(pool, "SELECT image_id FROM images WHERE uploader_id = %s", uploader) == []
    health = await client.get("/actuator/health")
    components = (await health.json())["components"]
    assert health.status == 503 and components["diskSpace"]["status"] == "DOWN", components

    filler.unlink()  # space is back: nothing to restart
    r = await client.post("/api/images", data=form(uploader))
    assert r.status == 200, await r.text()
    health = await client.get("/actuator/health")
    assert (await health.json())["components"]["diskSpace"]["status"] == "UP"


@pytest.fixture
async def worker_on(settings: Settings, pool: aiomysql.Pool, small_disk: Path) -> AsyncIterator[handlers.Resources]:
    on_disk = replace(settings, upload_dir=str(small_disk / "uploads"))
    cache = ReferenceCache(pool)
    await cache.reload()
    converter = ConverterPool(on_disk, processes=1)
    yield worker_resources(on_disk, pool, cache, LocalStorage(on_disk.upload_dir), converter)
    converter.shutdown()


async def test_a_conversion_on_a_full_disk_waits_for_space_instead_of_failing(
    worker_on: handlers.Resources, small_disk: Path
) -> None:
    image_id, key, value = await upload_through_a_worker(worker_on, PICTURE)  # stored while there was room
    filler = fill(small_disk, leave=16 * 1024)  # not enough for the WebP
    with capture_logs() as logs:
        converting = asyncio.create_task(handlers.handle_uploaded(worker_on, key, value))

        def waiting() -> bool:
            return any(e.get("service") == "disk-space" for e in logs)

        await services.eventually(waiting, timeout_s=30, what="the conversion to wait for disk space")
        assert not converting.done()
        (status,) = (await fetch_all(worker_on.pool, "SELECT status FROM images WHERE image_id = %s", image_id))[0]
        assert status == "TEMP"  # not FAILED
        filler.unlink()
        assert await asyncio.wait_for(converting, 60) == "READY"

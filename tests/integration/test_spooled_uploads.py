"""Large requests spooled to disk as they arrive (issue 26): the same answers, the same files, nothing left.

A request whose parts total more than SPOOL_AFTER (2 MiB) keeps the first in memory and writes
the rest to `_originals/_incoming/` as they arrive (adapters/files/spool.py). Stored, a spooled
part is moved into place (file store) or PUT from disk (S3); refused, it is removed with the
request. Either way its bytes are stored exactly, and the incoming directory ends empty.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import aiomysql
import pytest

from adapters.files.spool import SPOOL_AFTER, SpoolFile, spool_dir
from core.settings import Settings
from tests import images
from tests.integration.conftest import ClientFactory, fetch_all
from tests.integration.test_s3_paths import Bucket, local_files

PHOTOS = [images.noisy_jpeg(2400, 1700, seed=n) for n in range(3)]  # ~0.9 MiB each


def form(photos: list[bytes], uploader: str, *, bad: int | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for n, photo in enumerate(photos):
        content = b"not an image at all" * 60_000 if n == bad else photo
        data.add_field("files", io.BytesIO(content), filename=f"{n}.jpg", content_type="image/jpeg")
    data.add_field("uploaderId", uploader)
    data.add_field("category", "POST")
    return data


def incoming(root: str | Path) -> list[Path]:
    return [p for p in spool_dir(Path(root).resolve()).rglob("*") if p.is_file()]


async def stored_originals(settings: Settings, pool: aiomysql.Pool, uploader: str) -> list[bytes]:
    rows = await fetch_all(
        pool,
        "SELECT s.origin_location FROM images i JOIN storage_objects s USING (image_id)"
        " WHERE i.uploader_id = %s ORDER BY s.origin_location",
        uploader,
    )
    return [(Path(settings.upload_dir) / key).read_bytes() for (key,) in rows]


def test_the_photos_take_a_request_past_the_spool_threshold() -> None:
    assert sum(map(len, PHOTOS)) > SPOOL_AFTER > len(PHOTOS[0])


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files requests spool, as they are made (to see that a test's request did spool)."""
    made: list[Path] = []
    create = SpoolFile.create

    async def counted(directory: Path) -> SpoolFile:
        file = await create(directory)
        made.append(file.path)
        return file

    monkeypatch.setattr(SpoolFile, "create", staticmethod(counted))
    return made


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_a_spooled_request_stores_every_part_exactly_and_leaves_nothing_incoming(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, sync: bool, spooled: list[Path]
) -> None:
    keep = replace(settings, keep_originals=True) if sync else settings
    client = await make_client(keep)
    uploader = f"spool-{uuid.uuid4().hex[:8]}"
    r = await client.post(f"/api/images{'?sync=true' if sync else ''}", data=form(PHOTOS, uploader))
    body = await r.json()
    assert r.status == 200, body
    assert [b["status"] for b in body] == ["READY" if sync else "PROCESSING"] * 3
    assert sorted(await stored_originals(keep, pool, uploader)) == sorted(PHOTOS)
    assert incoming(keep.upload_dir) == [] and len(spooled) >= 1  # it did spool, and nothing is left


async def test_a_refused_spooled_part_leaves_nothing_stored_or_incoming(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    client = await make_client(settings)
    uploader = f"spool-{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/images", data=form(PHOTOS, uploader, bad=2))  # the last part: spooled
    assert (r.status, (await r.json())["code"]) == (400, "INVALID_FILE_CONTENT")
    assert await fetch_all(pool, "SELECT image_id FROM images WHERE uploader_id = %s", uploader) == []
    assert incoming(settings.upload_dir) == []
    assert [p for p in Path(settings.upload_dir).rglob("*") if p.is_file()] == []


async def test_a_retry_of_a_spooled_request_with_its_key_is_answered_as_the_first(
    settings: Settings, make_client: ClientFactory
) -> None:
    client = await make_client(settings)
    uploader, key = f"spool-{uuid.uuid4().hex[:8]}", {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/api/images", data=form(PHOTOS, uploader), headers=key)
    again = await client.post("/api/images", data=form(PHOTOS, uploader), headers=key)
    assert (first.status, again.status, again.headers.get("Idempotency-Replayed")) == (200, 200, "true")
    assert await again.json() == await first.json()
    other = await client.post("/api/images", data=form(PHOTOS[::-1], uploader), headers=key)
    assert (other.status, (await other.json())["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_spooled_request_on_s3_puts_every_part_exactly(
    s3_settings: Settings, s3_endpoint: str, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    bucket = Bucket(s3_endpoint, s3_settings.storage.bucket)
    client = await make_client(s3_settings)
    uploader = f"spool-{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/images", data=form(PHOTOS, uploader))
    assert r.status == 200, await r.text()
    rows = await fetch_all(
        pool,
        "SELECT s.origin_location FROM images i JOIN storage_objects s USING (image_id) WHERE i.uploader_id = %s",
        uploader,
    )
    keys = {key for (key,) in rows}
    assert keys <= set(await bucket.keys()) and len(keys) == 3
    from aiobotocore.session import get_session

    async with get_session().create_client("s3", endpoint_url=s3_endpoint) as s3:
        stored = []
        for key in keys:
            got = await s3.get_object(Bucket=bucket.name, Key=s3_settings.storage.prefix + key)
            stored.append(await got["Body"].read())
    assert sorted(stored) == sorted(PHOTOS)
    assert local_files(s3_settings.scratch_dir) == []  # nothing spooled is left in scratch

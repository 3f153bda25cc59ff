"""The api and the worker with `IMAGES_STORAGE_URL=s3://...` (moto's server), and the store taken away (issue 14).

Nothing is written to a local directory but scratch space, which is empty between conversions.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import aiomysql
import pytest
from aiobotocore.session import get_session
from PIL import Image
from structlog.testing import capture_logs

from adapters.db.reference_cache import ReferenceCache
from adapters.db.sweeps import sweep_expired, sweep_orphans
from adapters.images.process_pool import ConverterPool
from adapters.s3.bucket import IMMUTABLE
from adapters.storage import open_storage
from core.settings import Settings
from tests import images, services
from tests.integration.conftest import ClientFactory, fetch_all, worker_resources
from tests.integration.test_uploads import form, post
from tests.integration.test_workers import image_row, upload
from tests.proxy import TcpProxy
from workers import handlers


class Bucket:
    """What the test's bucket holds, read with the test's credentials."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint, self.name = endpoint, name

    async def keys(self) -> list[str]:
        async with get_session().create_client("s3", endpoint_url=self.endpoint) as client:
            listed = await client.list_objects_v2(Bucket=self.name)
        return sorted(o["Key"] for o in listed.get("Contents", ()))

    async def head(self, key: str) -> dict:
        async with get_session().create_client("s3", endpoint_url=self.endpoint) as client:
            return await client.head_object(Bucket=self.name, Key=key)

    async def put(self, key: str, data: bytes) -> None:
        async with get_session().create_client("s3", endpoint_url=self.endpoint) as client:
            await client.put_object(Bucket=self.name, Key=key, Body=data)


@pytest.fixture
def s3_bucket(s3_settings: Settings, s3_endpoint: str) -> Bucket:
    return Bucket(s3_endpoint, s3_settings.storage.bucket)


@pytest.fixture
def outage(s3_endpoint: str, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """A proxy in front of the S3 server, which the processes of the test reach it through."""
    proxy = TcpProxy(services.free_port(), int(s3_endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    yield proxy


@pytest.fixture
async def s3_resources(s3_settings: Settings, pool: aiomysql.Pool) -> AsyncIterator[handlers.Resources]:
    """A worker's resources on the test's bucket, with one conversion process."""
    cache = ReferenceCache(pool)
    await cache.reload()
    converter = ConverterPool(s3_settings, processes=1)
    try:
        async with open_storage(s3_settings) as storage:
            yield worker_resources(s3_settings, pool, cache, storage, converter)
    finally:
        converter.shutdown()


def local_files(*roots: str) -> list[Path]:
    return [p for root in roots for p in Path(root).rglob("*") if p.is_file()]


async def test_an_upload_puts_its_original_in_the_bucket_and_nothing_on_disk(
    s3_settings: Settings, s3_bucket: Bucket, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    client = await make_client(s3_settings)
    r = await post(client, form(("file", "photo.jpg", images.jpeg())))
    body = await r.json()
    assert r.status == 200 and body["imageUrl"].startswith(s3_settings.base_url + "PRODUCT/")
    ((origin,),) = await fetch_all(pool, "SELECT origin_location FROM storage_objects WHERE image_id = %s", body["id"])
    assert await s3_bucket.keys() == [origin]
    assert local_files(s3_settings.scratch_dir, s3_settings.upload_dir) == []


async def test_a_sync_upload_is_served_from_the_bucket_with_its_type_and_cache_header(
    s3_settings: Settings, s3_bucket: Bucket, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    client = await make_client(s3_settings)
    r = await post(client, form(("file", "photo.jpg", images.jpeg(1000, 500))), "?sync=true")
    body = await r.json()
    assert (r.status, body["status"]) == (200, "READY")
    async with aiohttp.ClientSession() as http:  # anonymously, as a browser or a CDN reads it
        async with http.get(body["imageUrl"]) as served:
            data = await served.read()
            assert (served.status, served.headers["Content-Type"]) == (200, "image/webp")
            assert served.headers["Cache-Control"] == IMMUTABLE
    assert Image.open(io.BytesIO(data)).size == (1000, 500)
    keys = await s3_bucket.keys()
    assert len(keys) == 3 and not any(k.startswith("_originals/") for k in keys)  # the WebP, 320w and 640w
    assert local_files(s3_settings.scratch_dir, s3_settings.upload_dir) == []


async def test_originals_awaiting_conversion_are_not_public(
    s3_settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    client = await make_client(s3_settings)
    r = await post(client, form(("file", "photo.jpg", images.jpeg())))
    ((origin,),) = await fetch_all(
        pool, "SELECT origin_location FROM storage_objects WHERE image_id = %s", (await r.json())["id"]
    )
    async with aiohttp.ClientSession() as http, http.get(s3_settings.base_url + origin) as answer:
        assert answer.status == 403


async def test_the_api_serves_no_images_route_on_s3(s3_settings: Settings, make_client: ClientFactory) -> None:
    client = await make_client(s3_settings)
    assert (await client.get("/images/PRODUCT/2025/01/01/x.webp")).status == 404


async def test_a_worker_converts_from_the_bucket_to_the_bucket(
    s3_resources: handlers.Resources, s3_bucket: Bucket
) -> None:
    image_id, key, value = await upload(s3_resources, images.jpeg(800, 400))
    with capture_logs() as logs:
        assert await handlers.handle_uploaded(s3_resources, key, value) == "READY"
    (line,) = [e for e in logs if e["event"] == "image_converted"]
    assert line["store_ms"] > 0  # the GET of the original and the PUTs, beside queue_ms and convert_ms
    status, url, location, fmt, size, origin = await image_row(s3_resources.pool, image_id)
    assert (status, fmt, origin) == ("READY", "WEBP", None)
    assert await s3_bucket.keys() == sorted([location, location.replace(".webp", "_640w.webp")])  # the original went
    head = await s3_bucket.head(location)
    assert (head["ContentLength"], head["ContentType"], head["CacheControl"]) == (size, "image/webp", IMMUTABLE)
    assert local_files(s3_resources.settings.scratch_dir) == []


async def test_a_missing_original_in_the_bucket_ends_failed(s3_resources: handlers.Resources) -> None:
    image_id, key, value = await upload(s3_resources, images.jpeg())
    await s3_resources.storage.remove((await image_row(s3_resources.pool, image_id))[5])
    assert await handlers.handle_uploaded(s3_resources, key, value) == "FAILED"
    ((reason,),) = await fetch_all(
        s3_resources.pool, "SELECT reason FROM status_history WHERE new_status = 'FAILED' AND image_id = %s", image_id
    )
    assert reason == "the uploaded original is missing"


async def test_a_message_naming_a_key_outside_the_workspace_ends_failed_and_writes_nothing_there(
    s3_resources: handlers.Resources, s3_bucket: Bucket, tmp_path: Path
) -> None:
    image_id, key, value = await upload(s3_resources, images.jpeg())
    hostile = "_originals/../../../../escaped.jpg"  # a literal key to S3; a path out of the scratch directory
    await s3_bucket.put(hostile, images.jpeg())
    message = json.loads(value)
    message["payload"]["originKey"] = hostile
    assert await handlers.handle_uploaded(s3_resources, key, json.dumps(message).encode()) == "FAILED"
    ((reason,),) = await fetch_all(
        s3_resources.pool, "SELECT reason FROM status_history WHERE new_status = 'FAILED' AND image_id = %s", image_id
    )
    assert "leaves the storage root" in reason
    assert not any(p.name == "escaped.jpg" for p in tmp_path.rglob("*"))


async def test_uploads_answer_503_while_the_store_is_away_and_leave_nothing(
    s3_settings: Settings, outage: TcpProxy, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    await outage.start()
    client = await make_client(s3_settings)
    await outage.cut()
    for query in ("", "?sync=true"):
        r = await post(client, form(("file", "photo.jpg", images.jpeg())), query)
        body = await r.json()
        assert (r.status, body["code"], r.headers["Retry-After"]) == (503, "SERVICE_UNAVAILABLE", "5")
        assert body["message"] == "the object store cannot be reached"
    assert await fetch_all(pool, "SELECT COUNT(*) FROM images") == [(0,)]
    health = await client.get("/actuator/health")
    file_system = (await health.json())["components"]["fileSystem"]
    assert (health.status, file_system["status"]) == (503, "DOWN") and file_system["details"]["error"]
    await outage.restore()
    assert (await post(client, form(("file", "photo.jpg", images.jpeg())))).status == 200
    await outage.cut()


async def test_a_conversion_waits_out_an_outage_of_the_store_and_ends_ready(
    s3_settings: Settings, outage: TcpProxy, pool: aiomysql.Pool
) -> None:
    await outage.start()
    cache = ReferenceCache(pool)
    await cache.reload()
    converter = ConverterPool(s3_settings, processes=1)
    try:
        async with open_storage(s3_settings) as storage:
            res = worker_resources(s3_settings, pool, cache, storage, converter)
            image_id, key, value = await upload(res, images.jpeg())
            await outage.cut()
            handling = asyncio.create_task(handlers.handle_uploaded(res, key, value))
            # A FAILED image would have committed by now, whatever the retries: it is still TEMP.
            await services.eventually(lambda: _attempted(pool, image_id), timeout_s=10, what="the attempt")
            done, _ = await asyncio.wait([handling], timeout=4)
            assert not done and (await image_row(pool, image_id))[0] == "TEMP"
            await outage.restore()
            assert await asyncio.wait_for(handling, 60) == "READY"
    finally:
        converter.shutdown()
        await outage.cut()


async def _attempted(pool: aiomysql.Pool, image_id: str) -> bool:
    rows = await fetch_all(pool, "SELECT attempts FROM conversion_attempts WHERE image_id = %s", image_id)
    return bool(rows)


async def test_sweeps_remove_expired_images_and_orphan_objects_from_the_bucket(
    s3_resources: handlers.Resources, s3_bucket: Bucket
) -> None:
    import time

    pool, storage = s3_resources.pool, s3_resources.storage
    kept_id, kept_key, kept_value = await upload(s3_resources, images.jpeg(700, 350))
    assert await handlers.handle_uploaded(s3_resources, kept_key, kept_value) == "READY"
    failed_id, key, value = await upload(s3_resources, images.noisy_jpeg(256, 256)[:700], name="cut.jpg")
    assert await handlers.handle_uploaded(s3_resources, key, value) == "FAILED"
    orphan = "POST/2020/01/01/no-such-image.webp"
    await s3_bucket.put(orphan, b"left behind")
    async with pool.acquire() as conn, conn.cursor() as cur:  # uploaded two days ago
        await cur.execute("UPDATE images SET created_at = NOW(6) - INTERVAL 2 DAY WHERE image_id = %s", (failed_id,))
    failed_original = (await image_row(pool, failed_id))[5]
    assert failed_original in await s3_bucket.keys()

    swept = await sweep_expired(pool, storage, status="FAILED", older_than=timedelta(hours=24))
    assert (swept.rows, swept.files) == (1, 1) and failed_original not in await s3_bucket.keys()
    # Last-Modified is kept to the second: the objects must be two seconds old for a 1 s cutoff.
    marked = time.time()
    services.wait_until(lambda: time.time() > marked + 2.1, timeout_s=5, what="the clock to pass two seconds")
    orphans = await sweep_orphans(pool, storage, older_than=timedelta(seconds=1))
    kept = (await image_row(pool, kept_id))[2]
    assert orphans.files == 1 and await s3_bucket.keys() == sorted([kept, kept.replace(".webp", "_640w.webp")])


async def test_health_reports_the_bucket(s3_settings: Settings, make_client: ClientFactory) -> None:
    client = await make_client(s3_settings)
    r = await client.get("/actuator/health")
    details = (await r.json())["components"]["fileSystem"]["details"]
    assert r.status == 200 and details == {"store": f"s3://{s3_settings.storage.bucket}/", "writable": True}

"""One storage contract (core/ports.Storage), two storages: the local directory and an S3 bucket
(moto's server, started natively). What the conversion path, the sweeps, requeue and the health
check rely on, whichever `IMAGES_STORAGE_URL` names (issue 14)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from adapters.images.codec import convert_stored
from adapters.s3.bucket import IMMUTABLE
from adapters.storage import open_storage
from core.ports import Storage
from core.settings import Settings
from core.storage import S3, StorageUrl
from tests import images, services
from tests.proxy import TcpProxy

ORIGINAL = "_originals/POST/2025/01/20/abc.jpg"


@pytest.fixture(params=["file", "s3"])
async def storage(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Storage]:
    if request.param == "s3":
        settings = request.getfixturevalue("s3_settings")
    async with open_storage(settings) as opened:
        yield opened


async def stored(storage: Storage, key: str) -> bytes:
    async with storage.workspace() as space:
        await space.fetch(key)
        return (Path(space.root) / key).read_bytes()


async def test_a_conversion_reads_its_original_and_publishes_its_files_where_they_are_read(storage: Storage) -> None:
    await storage.blobs.create([(ORIGINAL, images.jpeg(900, 450))], [])
    async with storage.workspace() as space:
        await space.fetch(ORIGINAL)
        done = convert_stored(space.root, ORIGINAL, "POST/2025/01/20/abc", 50_000_000, (320, 640), space.durable)
        await space.publish(done)
    assert done.key == "POST/2025/01/20/abc.webp" and [v.key for v in done.variants] == [
        "POST/2025/01/20/abc_320w.webp",
        "POST/2025/01/20/abc_640w.webp",
    ]
    for key in [done.key, *(v.key for v in done.variants)]:
        assert await storage.exists(key)
        assert (await stored(storage, key))[8:12] == b"WEBP"


async def test_a_workspace_leaves_nothing_in_scratch_space(storage: Storage) -> None:
    await storage.blobs.create([(ORIGINAL, images.jpeg())], [])
    async with storage.workspace() as space:
        await space.fetch(ORIGINAL)
        convert_stored(space.root, ORIGINAL, "POST/2025/01/20/abc", 50_000_000, (), space.durable)
    if not storage.name.startswith("file:"):
        assert list(storage.local_dir.iterdir()) == []  # on S3 the directory was scratch only


async def test_fetching_an_original_that_is_not_stored_is_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        async with storage.workspace() as space:
            await space.fetch("_originals/POST/2025/01/20/none.jpg")
            convert_stored(space.root, "_originals/POST/2025/01/20/none.jpg", "POST/x", 50_000_000)


async def test_an_original_larger_than_one_network_read_is_fetched_whole(storage: Storage) -> None:
    data = images.noisy_jpeg(2400, 1600)  # ~900 KB: many reads of the response body
    await storage.blobs.create([(ORIGINAL, data)], [])
    assert len(data) > 512 * 1024 and await stored(storage, ORIGINAL) == data


async def test_remove_and_exists_agree(storage: Storage) -> None:
    await storage.blobs.create([(ORIGINAL, b"x")], [])
    assert await storage.exists(ORIGINAL)
    assert (await storage.remove(ORIGINAL), await storage.remove(ORIGINAL)) == (True, False)
    assert not await storage.exists(ORIGINAL)


async def test_listing_by_age_finds_what_is_older_and_not_what_is_newer(storage: Storage) -> None:
    old, new = "POST/2025/01/20/old.webp", "POST/2025/01/20/new.webp"
    await storage.blobs.create([(old, b"old")], [])
    marked = time.time()
    # S3 keeps Last-Modified to the second: the newer object must be written two seconds later.
    services.wait_until(lambda: time.time() > marked + 2.1, timeout_s=5, what="the clock to pass two seconds")
    await storage.blobs.create([(new, b"new")], [])
    listed = [key async for batch in storage.older_than(1.0) for key in batch]
    assert old in listed and new not in listed


async def test_a_listing_comes_in_bounded_batches_whatever_the_store_holds(storage: Storage) -> None:
    from adapters.files.local import LIST_BATCH as LOCAL_BATCH
    from adapters.s3.bucket import LIST_BATCH as S3_BATCH

    keys = [f"POST/2025/01/20/{n:04}.webp" for n in range(450)]
    await storage.blobs.create([(k, b"x") for k in keys], [])
    batches = [batch async for batch in storage.older_than(-60)]  # a cutoff in the future: every file
    assert sorted(k for batch in batches for k in batch) == keys
    assert len(batches) >= 3 and max(map(len, batches)) <= max(LOCAL_BATCH, S3_BATCH) == 200


async def test_the_health_check_writes_and_removes_a_probe(storage: Storage) -> None:
    up, details = await storage.check()
    assert up and details["writable"] is True
    assert [key async for batch in storage.older_than(0) for key in batch] == []  # the probe is gone


async def test_results_on_s3_carry_their_type_and_the_immutable_cache_header(
    s3_settings: Settings, s3_endpoint: str
) -> None:
    async with open_storage(s3_settings) as storage:
        await storage.blobs.create([(ORIGINAL, images.png(64, 64))], [])
        async with storage.workspace() as space:
            await space.fetch(ORIGINAL)
            await space.publish(convert_stored(space.root, ORIGINAL, "POST/2025/01/20/abc", 50_000_000))
    async with get_session().create_client("s3", endpoint_url=s3_endpoint) as client:
        head = await client.head_object(Bucket=s3_settings.storage.bucket, Key="POST/2025/01/20/abc.webp")
    assert (head["ContentType"], head["CacheControl"]) == ("image/webp", IMMUTABLE)


async def test_an_original_over_the_upload_limit_is_not_fetched(s3_settings: Settings) -> None:
    async with open_storage(replace(s3_settings, max_file_bytes=1000)) as storage:
        await storage.blobs.create([(ORIGINAL, b"x" * 1001)], [])
        with pytest.raises(OSError, match="over 1000 bytes"):
            async with storage.workspace() as space:
                await space.fetch(ORIGINAL)


async def test_keys_live_under_the_prefix(s3_settings: Settings, s3_endpoint: str) -> None:
    prefixed = replace(s3_settings, storage_url=StorageUrl(S3, s3_settings.storage.bucket, "prod/eu"))
    async with open_storage(prefixed) as storage:
        await storage.blobs.create([(ORIGINAL, b"x")], [])
        assert [k async for batch in storage.older_than(0) for k in batch] == [ORIGINAL]
    async with get_session().create_client("s3", endpoint_url=s3_endpoint) as client:
        listed = await client.list_objects_v2(Bucket=s3_settings.storage.bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"prod/eu/{ORIGINAL}"]


async def test_a_missing_bucket_stops_the_start_naming_it(s3_settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="no-such-bucket"):
        async with open_storage(replace(s3_settings, storage_url=StorageUrl(S3, "no-such-bucket"))):
            pass


async def test_an_unreachable_store_is_unavailable_and_the_check_says_down(
    s3_settings: Settings, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.ports import StoreUnavailable

    proxy = TcpProxy(services.free_port(), int(s3_endpoint.rsplit(":", 1)[1]))
    await proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    try:
        async with open_storage(s3_settings) as storage:
            await proxy.cut()
            with pytest.raises(StoreUnavailable):
                await storage.blobs.create([(ORIGINAL, b"x")], [])
            up, details = await storage.check()
            assert not up and "StoreUnavailable" in details["error"]
            await proxy.restore()
            assert (await storage.check())[0]
    finally:
        await proxy.cut()


async def test_a_store_that_does_not_answer_yet_is_waited_for_at_start(
    s3_settings: Settings, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from structlog.testing import capture_logs

    proxy = TcpProxy(services.free_port(), int(s3_endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")  # nothing listens there yet

    async def opened() -> str:
        async with open_storage(s3_settings) as storage:
            return storage.name

    with capture_logs() as logs:
        starting = asyncio.create_task(opened())
        await services.eventually(
            lambda: any(e.get("service") == "object-store" for e in logs), timeout_s=30, what="a logged retry"
        )
        assert not starting.done()
        await proxy.start()
        try:
            assert await asyncio.wait_for(starting, 30) == f"s3://{s3_settings.storage.bucket}/"
        finally:
            await proxy.cut()

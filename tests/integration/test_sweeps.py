"""Fleet-wide clean-ups against real MariaDB and disk (CONTRACT 6)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import aiomysql

from adapters.db.sweeps import sweep_expired, sweep_orphans
from adapters.files.directory import Directory
from adapters.files.local import LocalStorage
from core.settings import Settings
from tests.integration.conftest import fetch_all


async def add_image(pool: aiomysql.Pool, store: Directory, image_id: str, status: str, age: timedelta) -> list[str]:
    created = (datetime.now(UTC) - age).replace(tzinfo=None)
    keys = [f"POST/2025/01/20/{image_id}.webp", f"_originals/POST/2025/01/20/{image_id}.jpg"]
    for key in keys:
        store.write(key, b"bytes")
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO images (image_id, status, reference_type_id, image_url, created_at, updated_at)"
            " VALUES (%s, %s, 'POST', 'u', %s, %s)",
            (image_id, status, created, created),
        )
        await cur.execute(
            "INSERT INTO storage_objects (image_id, storage_location, origin_location, origin_size, origin_format_id)"
            " VALUES (%s, %s, %s, 5, 'JPEG')",
            (image_id, *keys),
        )
        await cur.execute(
            "INSERT INTO status_history (image_id, old_status, new_status, updated_at) VALUES (%s, NULL, %s, %s)",
            (image_id, status, created),
        )
    return keys


async def test_failed_images_older_than_a_day_lose_rows_and_files(settings: Settings, pool: aiomysql.Pool) -> None:
    storage = LocalStorage(settings.upload_dir)
    store = storage.files
    old = await add_image(pool, store, "old-failed", "FAILED", timedelta(hours=25))
    young = await add_image(pool, store, "young-failed", "FAILED", timedelta(hours=23))
    ready = await add_image(pool, store, "old-ready", "READY", timedelta(hours=48))
    progress: list[int] = []
    report = await sweep_expired(
        pool, storage, status="FAILED", older_than=timedelta(hours=24), progress=progress.append
    )
    assert (report.rows, report.files, progress) == (1, 2, [0, 1])
    assert sorted(r[0] for r in await fetch_all(pool, "SELECT image_id FROM images")) == ["old-ready", "young-failed"]
    assert await fetch_all(pool, "SELECT COUNT(*) FROM status_history WHERE image_id = 'old-failed'") == [(0,)]
    assert [store.exists(k) for k in old + young + ready] == [False, False, True, True, True, True]


async def test_stale_temp_images_are_swept_and_the_sweep_is_idempotent(settings: Settings, pool: aiomysql.Pool) -> None:
    storage = LocalStorage(settings.upload_dir)
    store = storage.files
    await add_image(pool, store, "stale-temp", "TEMP", timedelta(days=2))
    first = await sweep_expired(pool, storage, status="TEMP", older_than=timedelta(hours=24))
    second = await sweep_expired(pool, storage, status="TEMP", older_than=timedelta(hours=24))
    assert (first.rows, second.rows, second.files) == (1, 0, 0)


async def test_orphan_files_older_than_an_hour_are_removed(settings: Settings, pool: aiomysql.Pool) -> None:
    storage = LocalStorage(settings.upload_dir)
    store = storage.files
    kept = await add_image(pool, store, "has-row", "READY", timedelta(days=1))
    orphan, fresh_orphan, leftover = (
        "POST/2025/01/20/no-row.webp",
        "POST/2025/01/20/just-written.webp",
        "POST/2025/01/20/.x.webp.abc.part",
    )
    for key in (orphan, fresh_orphan, leftover):
        store.write(key, b"bytes")
    two_hours_ago = time.time() - 7200
    for key in [*kept, orphan, leftover]:
        os.utime(store.path(key), (two_hours_ago, two_hours_ago))
    report = await sweep_orphans(pool, storage, older_than=timedelta(hours=1))
    assert report.files == 2
    assert [store.exists(k) for k in (*kept, orphan, fresh_orphan, leftover)] == [True, True, False, True, False]


async def test_an_original_left_behind_after_conversion_is_an_orphan(settings: Settings, pool: aiomysql.Pool) -> None:
    storage = LocalStorage(settings.upload_dir)
    store = storage.files
    webp, original = await add_image(pool, store, "converted", "READY", timedelta(days=1))
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("UPDATE storage_objects SET origin_location = NULL WHERE image_id = 'converted'")
    for key in (webp, original):
        os.utime(store.path(key), (time.time() - 7200,) * 2)
    await sweep_orphans(pool, storage, older_than=timedelta(hours=1))
    assert (store.exists(webp), store.exists(original)) == (True, False)


async def test_old_dedupe_rows_are_removed_and_recent_ones_kept(settings: Settings, pool: aiomysql.Pool) -> None:
    from adapters.db.sweeps import sweep_processed

    now = datetime.now(UTC).replace(tzinfo=None)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO processed_events (consumer, event_id, processed_at, outcome) VALUES ('c', %s, %s, 'READY')",
            [("old", now - timedelta(days=8)), ("new", now - timedelta(days=1))],
        )
    report = await sweep_processed(pool, older_than=timedelta(days=7))
    assert report.rows == 1
    assert await fetch_all(pool, "SELECT event_id FROM processed_events") == [("new",)]

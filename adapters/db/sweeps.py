"""Fleet-wide clean-ups (CONTRACT section 6): expired FAILED/TEMP images and orphan files.

Rows go first, then files: a crash in between leaves only files without rows, which the orphan
sweep removes. The reverse order could leave rows without files. Every sweep is safe to run twice
at once (a rebalance may briefly give two workers the leader role): deletes are idempotent.
Files are those of the storage, a directory or a bucket's prefix (core/ports.Storage); the orphan
sweep reads the listing in batches, so its memory does not grow with the storage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

import aiomysql
import structlog

from adapters.files.directory import TMP_SUFFIX
from core import variants
from core.ports import Storage
from core.storage import PROBE_PREFIX

log = structlog.get_logger("sweeps")

BATCH = 200
EXPIRED = (
    "SELECT i.image_id, s.storage_location, s.origin_location FROM images i"
    " LEFT JOIN storage_objects s ON s.image_id = i.image_id"
    " WHERE i.status = %s AND i.created_at < %s ORDER BY i.created_at LIMIT %s"
)
DELETE_IMAGE = "DELETE FROM images WHERE image_id = %s AND status = %s"
DELETE_PROCESSED = "DELETE FROM processed_events WHERE processed_at < %s ORDER BY processed_at LIMIT %s"
KEYS_OF = (
    "SELECT storage_location, origin_location FROM storage_objects WHERE image_id IN ({0})"
    " UNION ALL SELECT storage_location, NULL FROM image_variants WHERE image_id IN ({0})"
)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SweepReport:
    """What a sweep removed."""

    rows: int
    files: int


async def sweep_expired(
    pool: aiomysql.Pool, storage: Storage, *, status: str, older_than: timedelta, progress: Progress | None = None
) -> SweepReport:
    """Delete images in `status` created before now - `older_than`: rows, then their files."""
    cutoff = (datetime.now(UTC) - older_than).replace(tzinfo=None)
    rows = files = 0
    if progress:
        progress(0)
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(EXPIRED, (status, cutoff, BATCH))
            batch = await cur.fetchall()
            for image_id, *_ in batch:
                # status in the WHERE: an image converted meanwhile is not deleted.
                rows += await cur.execute(DELETE_IMAGE, (image_id, status))
        for _, *keys in batch:
            for key in filter(None, keys):
                files += await storage.remove(key)
        if progress:
            progress(rows)
        if len(batch) < BATCH:
            break
    log.info("sweep_finished", sweep=f"{status.lower()}_expired", rows=rows, files=files)
    return SweepReport(rows, files)


async def sweep_orphans(
    pool: aiomysql.Pool, storage: Storage, *, older_than: timedelta, progress: Progress | None = None
) -> SweepReport:
    """Remove files older than `older_than` that no storage row names (and stale temp files)."""
    scanned = removed = 0
    if progress:
        progress(0)
    async for chunk in storage.older_than(older_than.total_seconds()):
        referenced = await _referenced(pool, chunk)
        for key in chunk:
            if key not in referenced and not PurePosixPath(key).name.startswith(PROBE_PREFIX):
                removed += await storage.remove(key)
        scanned += len(chunk)
        if progress:
            progress(scanned)
    log.info("sweep_finished", sweep="orphan_files", scanned=scanned, files=removed)
    return SweepReport(0, removed)


async def sweep_processed(
    pool: aiomysql.Pool, *, older_than: timedelta, progress: Progress | None = None
) -> SweepReport:
    """Delete consumer dedupe rows older than `older_than`, in small batches.

    Safe once Kafka no longer redelivers that far back; and a late redelivery is still harmless,
    because the conversion also refuses to move an image that is not TEMP.
    """
    cutoff = (datetime.now(UTC) - older_than).replace(tzinfo=None)
    rows = 0
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            deleted = await cur.execute(DELETE_PROCESSED, (cutoff, BATCH * 5))
        rows += deleted
        if progress:
            progress(rows)
        if deleted < BATCH * 5:
            break
    log.info("sweep_finished", sweep="processed_events", rows=rows)
    return SweepReport(rows, 0)


async def _referenced(pool: aiomysql.Pool, keys: list[str]) -> set[str]:
    ids = {_image_id(k) for k in keys} - {None}
    if not ids:
        return set()
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(KEYS_OF.format(", ".join(["%s"] * len(ids))), sorted(ids) * 2)
        return {k for pair in await cur.fetchall() for k in pair if k}


def _image_id(key: str) -> str | None:
    name = PurePosixPath(key).name
    if name.endswith(TMP_SUFFIX):
        return None  # an interrupted write: never referenced
    return variants.image_id_of(name.split(".", 1)[0]) or None  # `abc_320w.webp` is abc's variant

"""Uploaders' quota usage in MariaDB (core/quotas.py): locked, read and counted in the upload's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import aiomysql

from adapters.db.repositories import Repository, db_time
from core import quotas
from core.quotas import Usage

# The upsert takes the uploader's row lock, held to the end of the transaction: every upload of
# one uploader, in any replica, waits here for the one before it to commit or roll back. The read
# after it is the transaction's first, so its snapshot already holds what that one committed.
LOCK_UPLOADER = (
    "INSERT INTO upload_quota_locks (uploader_id, charged_at) VALUES (%s, %s)"
    " ON DUPLICATE KEY UPDATE charged_at = VALUES(charged_at)"
)
SELECT_USAGE = (
    "SELECT minute_start, images, bytes FROM upload_usage WHERE uploader_id = %s AND minute_start >= %s"
    " ORDER BY minute_start"
)
ADD_USAGE = (
    "INSERT INTO upload_usage (uploader_id, minute_start, images, bytes) VALUES (%s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE images = images + VALUES(images), bytes = bytes + VALUES(bytes)"
)
DELETE_OLD_USAGE = "DELETE FROM upload_usage WHERE minute_start < %s LIMIT 10000"
DELETE_OLD_LOCKS = "DELETE FROM upload_quota_locks WHERE charged_at < %s LIMIT 10000"


class MariaDbQuotas(Repository):
    """UploadQuotas over one transaction's connection (a MariaDbUnitOfWork: the group commit cannot read)."""

    async def usage_locked(self, uploader_id: str, *, since: datetime) -> list[Usage]:
        self._tx.write(LOCK_UPLOADER, (uploader_id, db_time(datetime.now(UTC))))
        rows = await self._tx.fetchall(SELECT_USAGE, (uploader_id, db_time(since)))
        return [Usage(minute.replace(tzinfo=UTC), int(images), int(nbytes)) for minute, images, nbytes in rows]

    async def add(self, uploader_id: str, usage: Usage) -> None:
        self._tx.write(ADD_USAGE, (uploader_id, db_time(usage.minute), usage.images, usage.bytes))


async def usage_since(pool: aiomysql.Pool, uploader_id: str, since: datetime) -> list[Usage]:
    """An uploader's buckets from `since` on, read without a lock (an early look, or the CLI's)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(SELECT_USAGE, (uploader_id, db_time(since)))
        return [Usage(m.replace(tzinfo=UTC), int(i), int(b)) for m, i, b in await cur.fetchall()]


async def usage_of(pool: aiomysql.Pool, uploader_id: str, now: datetime) -> dict[str, dict[str, int]]:
    """An uploader's images and bytes in the rolling hour and day ending now (the admin CLI's `quota`)."""
    since = quotas.oldest_counted(now, quotas.DAY)
    rows = await usage_since(pool, uploader_id, since)
    windows = {"hour": quotas.oldest_counted(now, quotas.HOUR), "day": since}
    return {
        name: {
            "images": sum(u.images for u in rows if u.minute >= start),
            "bytes": sum(u.bytes for u in rows if u.minute >= start),
        }
        for name, start in windows.items()
    }


async def prune(pool: aiomysql.Pool, now: datetime) -> int:
    """Remove buckets no window counts any more (and idle uploaders' lock rows); return the buckets removed."""
    cutoff = db_time(quotas.oldest_counted(now, quotas.DAY) - quotas.BUCKET)
    removed = 0
    async with pool.acquire() as conn, conn.cursor() as cur:
        while True:
            n = await cur.execute(DELETE_OLD_USAGE, (cutoff,))
            await conn.commit()
            removed += n
            if n < 10000:
                break
        await cur.execute(DELETE_OLD_LOCKS, (cutoff,))
        await conn.commit()
    return removed

"""The outbox table's upkeep for the relay: how far behind it is, and the retention of published rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomysql

RETENTION_BATCH = 1000
LAG = "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'PENDING'"
DELETE_OLD = "DELETE FROM outbox WHERE status = 'PUBLISHED' AND published_at < %s ORDER BY id LIMIT %s"


async def outbox_lag(pool: aiomysql.Pool) -> tuple[int, float]:
    """Return (unpublished rows, age in seconds of the oldest one)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(LAG)
        count, oldest = await cur.fetchone()
    age = 0.0 if oldest is None else (datetime.now(UTC) - oldest.replace(tzinfo=UTC)).total_seconds()
    return int(count), round(max(age, 0.0), 3)


async def delete_published(pool: aiomysql.Pool, *, older_than: timedelta) -> int:
    """Delete published rows older than the retention in small batches; return how many."""
    cutoff = (datetime.now(UTC) - older_than).replace(tzinfo=None)
    total = 0
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            deleted = await cur.execute(DELETE_OLD, (cutoff, RETENTION_BATCH))
        total += deleted
        if deleted < RETENTION_BATCH:
            return total
        await asyncio.sleep(0.05)  # let other writers at the table between batches

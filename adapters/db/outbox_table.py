"""The outbox table as the relay uses it: claim a batch, mark what became of it, lag, retention."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomysql

from adapters.db.statements import Statements

CLAIM = (
    "SELECT id, event_id, topic, message_key, payload, created_at FROM outbox"
    " WHERE status = 'PENDING' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
MARK_PUBLISHED = "UPDATE outbox SET status = 'PUBLISHED', published_at = %s, attempts = attempts + 1 WHERE id IN ({})"
MARK_FAILED = "UPDATE outbox SET status = 'FAILED', attempts = attempts + 1, last_error = %s WHERE id = %s"
COUNT_ATTEMPT = "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id IN ({})"
RETENTION_BATCH = 1000
LAG = "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'PENDING'"
DELETE_OLD = "DELETE FROM outbox WHERE status = 'PUBLISHED' AND published_at < %s ORDER BY id LIMIT %s"


async def claim(tx: Statements, limit: int) -> list[Any]:
    """Lock and return the first `limit` pending rows in id order, skipping rows another claim holds."""
    return await tx.fetchall(CLAIM, (limit,))


def mark(
    tx: Statements,
    *,
    published: Sequence[int],
    failed: Sequence[tuple[int, str]],
    retry: Sequence[int],
    error: str | None,
) -> None:
    """Mark a batch's rows: published, failed for good (with the reason), or counted for a retry."""
    now = datetime.now(UTC).replace(tzinfo=None)
    if published:
        tx.write(MARK_PUBLISHED.format(", ".join(["%s"] * len(published))), (now, *published))
    for row_id, reason in failed:
        tx.write(MARK_FAILED, (reason, row_id))
    if retry:
        tx.write(COUNT_ATTEMPT.format(", ".join(["%s"] * len(retry))), ((error or "")[:1000], *retry))


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

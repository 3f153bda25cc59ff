"""The outbox table, the one home of its SQL: the rows a transaction adds, the relay's claim and marks,
what is unpublished (the relay's lag, /metrics, the admin CLI), the operator's retry, retention."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomysql

from adapters.db.repositories import Repository, db_time
from adapters.db.statements import Statements, Table
from core.events import Envelope

OUTBOX = Table("outbox", ("event_id", "topic", "message_key", "event_type", "payload", "created_at"))

CLAIM = (
    "SELECT id, event_id, topic, message_key, payload, created_at FROM outbox"
    " WHERE status = 'PENDING' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)
MARK_PUBLISHED = "UPDATE outbox SET status = 'PUBLISHED', published_at = %s, attempts = attempts + 1 WHERE id IN ({})"
MARK_FAILED = "UPDATE outbox SET status = 'FAILED', attempts = attempts + 1, last_error = %s WHERE id = %s"
COUNT_ATTEMPT = "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id IN ({})"
RETENTION_BATCH = 1000
UNPUBLISHED = (
    "SELECT topic, status, COUNT(*), MIN(created_at) FROM outbox WHERE status IN ('PENDING', 'FAILED')"
    " GROUP BY topic, status ORDER BY topic, status"
)
# Appended to another read (the relay's leader probe): is anything pending?
ANY_PENDING = "EXISTS(SELECT 1 FROM outbox WHERE status = 'PENDING')"
KEYED = (
    "SELECT event_id, topic, event_type, status, created_at, published_at, attempts, last_error FROM outbox"
    " WHERE message_key = %s ORDER BY id"
)
FAILED = "SELECT id, topic, message_key, event_type, attempts, last_error FROM outbox WHERE status = 'FAILED'"
RETRY = "UPDATE outbox SET status = 'PENDING', last_error = NULL WHERE status = 'FAILED' AND id = %s"
DELETE_OLD = "DELETE FROM outbox WHERE status = 'PUBLISHED' AND published_at < %s ORDER BY id LIMIT %s"


class MariaDbOutbox(Repository):
    """The outbox rows a transaction adds (the core's Outbox port), beside the state they announce."""

    async def add(self, envelope: Envelope) -> None:
        self._tx.insert(
            OUTBOX,
            [
                (
                    envelope.event_id,
                    envelope.topic,
                    envelope.key,
                    envelope.event_type,
                    envelope.to_bytes().decode(),
                    db_time(envelope.occurred_at),
                )
            ],
        )


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


async def _rows(pool: aiomysql.Pool, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return list(await cur.fetchall())


async def unpublished(pool: aiomysql.Pool) -> list[tuple[str, str, int, datetime | None]]:
    """(topic, status, rows, oldest created_at) of the rows pending and failed: one read, three views below."""
    return [(topic, status, int(n), oldest) for topic, status, n, oldest in await _rows(pool, UNPUBLISHED)]


def age_s(oldest: datetime | None, now: datetime) -> float:
    """Seconds since `oldest` (a naive UTC DATETIME as MariaDB returns it); 0 when there is none."""
    return 0.0 if oldest is None else max((now - oldest.replace(tzinfo=UTC)).total_seconds(), 0.0)


async def outbox_lag(pool: aiomysql.Pool) -> tuple[int, float]:
    """The relay's view: (pending rows, age in seconds of the oldest one)."""
    count, oldest = (await outbox_state(pool)).get("PENDING", (0, None))
    return count, round(age_s(oldest, datetime.now(UTC)), 3)


async def outbox_state(pool: aiomysql.Pool) -> dict[str, tuple[int, datetime | None]]:
    """/metrics' view: {status: (rows, oldest created_at)} for PENDING and FAILED."""
    state: dict[str, tuple[int, datetime | None]] = {}
    for _, status, n, oldest in await unpublished(pool):
        count, first = state.get(status, (0, None))
        state[status] = (count + n, min((o for o in (first, oldest) if o is not None), default=None))
    return state


async def outbox_by_topic(pool: aiomysql.Pool, *, now: datetime) -> list[dict[str, Any]]:
    """The admin CLI's view: per topic, rows pending and failed, and the age of the oldest pending."""
    by_topic: dict[str, dict[str, Any]] = {}
    for topic, status, count, oldest in await unpublished(pool):
        row = by_topic.setdefault(topic, {"topic": topic, "pending": 0, "failed": 0, "oldestPendingAgeS": None})
        row[status.lower()] = count
        if status == "PENDING" and oldest is not None:
            row["oldestPendingAgeS"] = round((now - oldest.replace(tzinfo=UTC)).total_seconds(), 1)
    return list(by_topic.values())


async def keyed(pool: aiomysql.Pool, key: str) -> list[tuple[Any, ...]]:
    """Every row under a message key (an image's id, a reference's), oldest first."""
    return await _rows(pool, KEYED, key)


async def failed_rows(pool: aiomysql.Pool) -> list[dict[str, Any]]:
    """Rows the relay gave up on (e.g. over the broker's size limit), with their last error."""
    return [
        {"id": row_id, "topic": topic, "key": key, "eventType": event_type, "attempts": tries, "lastError": error}
        for row_id, topic, key, event_type, tries, error in await _rows(pool, FAILED)
    ]


async def retry_failed(pool: aiomysql.Pool, row_ids: list[int]) -> int:
    """Put failed rows back to PENDING for the relay; return how many were still FAILED."""
    done = 0
    async with pool.acquire() as conn, conn.cursor() as cur:
        for row_id in row_ids:
            done += await cur.execute(RETRY, (row_id,))
    return done


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

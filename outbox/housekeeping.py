"""Outbox housekeeping: lag for the logs and metrics, and the retention of published rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomysql
from prometheus_client import Counter, Gauge, Histogram

# The relay's own metrics, served by `python -m outbox` when IMAGES_RELAY_METRICS_PORT is set.
PUBLISHED = Counter("outbox_published_total", "Outbox rows published")
FAILED = Counter("outbox_failed_total", "Outbox rows that can never be published")
RETRIED = Counter("outbox_retried_total", "Outbox rows left for a later attempt")
BATCH_ROWS = Histogram("outbox_batch_rows", "Rows per claimed batch", buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000))
PUBLISH_SECONDS = Histogram("outbox_publish_seconds", "Time to publish and acknowledge one batch")
COMMIT_TO_ACK = Histogram(
    "outbox_commit_to_ack_seconds",
    "From an outbox row's commit (its created_at) to the broker's acknowledgement of its message",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PENDING = Gauge("outbox_pending_rows", "Outbox rows not yet published")
OLDEST_AGE = Gauge("outbox_oldest_pending_age_seconds", "Age of the oldest unpublished row")
LEADER = Gauge("outbox_relay_active", "1 while this relay holds the leader lock")

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

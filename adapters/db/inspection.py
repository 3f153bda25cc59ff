"""What an operator reads at 3 a.m.: one image's whole story, poison messages, the outbox's state.

Plain autocommit reads (the outbox's are in outbox_table.py), used by the admin
commands of `python -m workers` (workers/admin.py). Rows come back as JSON-ready dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiomysql

from adapters.db import outbox_table
from adapters.db.queries import image_details
from core.events import iso

HISTORY = (
    "SELECT old_status, new_status, updated_at, updated_by, reason FROM status_history WHERE image_id = %s ORDER BY id"
)
STORAGE = (
    "SELECT storage_location, origin_location, origin_size, converted_size, origin_format_id,"
    " converted_format_id, width, height FROM storage_objects WHERE image_id = %s"
)
SEQUENCE = "SELECT reference_type_id, reference_id, seq_number FROM image_sequence WHERE image_id = %s"
ATTEMPTS = "SELECT attempts, last_started_at FROM conversion_attempts WHERE image_id = %s"
POISON = (
    "SELECT consumer, event_id, processed_at, detail FROM processed_events WHERE outcome = 'POISON'"
    " ORDER BY processed_at DESC LIMIT %s"
)
REQUEUE_CANDIDATES = (
    "SELECT image_id FROM images WHERE (status = 'FAILED' AND %s) OR (status = 'TEMP' AND created_at < %s)"
    " ORDER BY created_at LIMIT %s"
)


def _time(at: datetime | None) -> str | None:
    return iso(at.replace(tzinfo=UTC)) if at else None


async def _rows(pool: aiomysql.Pool, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return list(await cur.fetchall())


async def image_story(pool: aiomysql.Pool, image_id: str) -> dict[str, Any] | None:
    """The image, its storage row, status history, sequence, conversion attempts and events; None if unknown."""
    image = await image_details(pool, image_id)
    if image is None:
        return None
    storage = await _rows(pool, STORAGE, image_id)
    keys = ("storageLocation", "originLocation", "originSize", "convertedSize", "originFormat", "convertedFormat")
    attempts = await _rows(pool, ATTEMPTS, image_id)
    return {
        "image": image,
        "storage": dict(zip((*keys, "width", "height"), storage[0], strict=True)) if storage else None,
        "history": [
            {"from": old, "to": new, "at": _time(at), "by": by, "reason": reason}
            for old, new, at, by, reason in await _rows(pool, HISTORY, image_id)
        ],
        "sequence": [
            {"referenceType": kind, "referenceId": ref, "seqNumber": seq}
            for kind, ref, seq in await _rows(pool, SEQUENCE, image_id)
        ],
        "conversionAttempts": {"attempts": attempts[0][0], "lastStartedAt": _time(attempts[0][1])}
        if attempts
        else None,
        "events": [
            {
                "eventId": event_id,
                "topic": topic,
                "eventType": event_type,
                "status": status,
                "createdAt": _time(created),
                "publishedAt": _time(published),
                "attempts": tries,
                "lastError": error,
            }
            for event_id, topic, event_type, status, created, published, tries, error in await outbox_table.keyed(
                pool, image_id
            )
        ],
    }


async def poison_messages(pool: aiomysql.Pool, *, limit: int) -> list[dict[str, Any]]:
    """The messages recorded as poison, newest first."""
    return [
        {"consumer": consumer, "eventId": event_id, "at": _time(at), "reason": detail}
        for consumer, event_id, at, detail in await _rows(pool, POISON, limit)
    ]


async def requeue_candidates(
    pool: aiomysql.Pool, *, failed: bool, temp_before: datetime | None, limit: int
) -> list[str]:
    """Ids of FAILED images (when `failed`) and TEMP ones created before `temp_before`, oldest first."""
    before = (temp_before or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)
    return [row[0] for row in await _rows(pool, REQUEUE_CANDIDATES, 1 if failed else 0, before, limit)]

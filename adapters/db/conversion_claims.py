"""Conversion claims: whether a delivered IMAGE_UPLOADED still needs converting, and which try this is.

A worker killed in the middle of a conversion (the kernel's OOM killer, a segfault in a codec,
a lost machine) never commits its offset, so the message is delivered again. `claim` counts each
delivery that goes on to convert, committed before the conversion starts; the handler answers
FAILED once an image has used up its attempts, so no input can make the fleet loop on it forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import aiomysql

from core.images import ImageStatus

STATE = (
    "SELECT i.status, EXISTS(SELECT 1 FROM processed_events p WHERE p.consumer = %s AND p.event_id = %s)"
    " FROM images i WHERE i.image_id = %s"
)
COUNT = (
    "INSERT INTO conversion_attempts (image_id, attempts, last_started_at) VALUES (%s, 1, %s)"
    " ON DUPLICATE KEY UPDATE attempts = attempts + 1, last_started_at = VALUES(last_started_at)"
)
ATTEMPTS = "SELECT attempts FROM conversion_attempts WHERE image_id = %s"


@dataclass(frozen=True)
class ConversionClaim:
    done: bool  # already converted (or the image left TEMP): nothing to do
    attempt: int  # this delivery's try, from 1; 0 when done or when the image row is missing


async def claim(pool: aiomysql.Pool, consumer: str, event_id: str, image_id: str, now: datetime) -> ConversionClaim:
    """Check the image still waits for this event and count the attempt (autocommit, before converting).

    A missing row is not done here: complete_conversion records it as SKIPPED under the row lock.
    """
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(STATE, (consumer, event_id, image_id))
        row = await cur.fetchone()
        if row is None:
            return ConversionClaim(done=False, attempt=0)
        if row[0] != ImageStatus.TEMP.value or row[1]:
            return ConversionClaim(done=True, attempt=0)
        await cur.execute(COUNT, (image_id, now.astimezone(UTC).replace(tzinfo=None)))
        await cur.execute(ATTEMPTS, (image_id,))
        (attempts,) = await cur.fetchone()
    return ConversionClaim(done=False, attempt=int(attempts))

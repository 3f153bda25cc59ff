"""Read models: what `GET /api/v1/images/{id}` and `/metrics` show (the outbox's: outbox_table.py). Plain reads."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import aiomysql
import orjson

from core.events import iso

IMAGE_DETAILS = (
    "SELECT i.image_id, i.status, i.reference_type_id, i.reference_id, i.image_url, i.uploader_id,"
    " i.created_at, i.updated_at, s.storage_location, s.origin_size, s.converted_size,"
    " s.origin_format_id, s.converted_format_id, s.width, s.height,"
    " (SELECT q.seq_number FROM image_sequence q WHERE q.image_id = i.image_id"
    "  AND q.reference_type_id = i.reference_type_id AND q.reference_id = i.reference_id) AS seq,"
    # The variants in the same round trip (clients poll this read), ascending by width.
    " (SELECT JSON_ARRAYAGG(JSON_OBJECT('width', v.width, 'height', v.height, 'imageUrl', v.image_url)"
    "  ORDER BY v.width) FROM image_variants v WHERE v.image_id = i.image_id) AS variants"
    " FROM images i LEFT JOIN storage_objects s ON s.image_id = i.image_id WHERE i.image_id = %s"
)
STATUS_COUNTS = "SELECT status, COUNT(*) FROM images GROUP BY status"


async def image_details(pool: aiomysql.Pool, image_id: str) -> dict[str, Any] | None:
    """Return the image's public view (its variants ascending, empty until READY), or None."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(IMAGE_DETAILS, (image_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return {
        "id": row[0],
        "status": row[1],
        "referenceType": row[2],
        "referenceId": row[3],
        "imageUrl": row[4],
        "uploaderId": row[5],
        "createdAt": iso(row[6].replace(tzinfo=UTC)) if row[6] else None,
        "updatedAt": iso(row[7].replace(tzinfo=UTC)) if row[7] else None,
        "storageLocation": row[8],
        "originSize": row[9],
        "convertedSize": row[10],
        "originFormat": row[11],
        "convertedFormat": row[12],
        "width": row[13],
        "height": row[14],
        "variants": orjson.loads(row[16]) if row[16] else [],
        "seqNumber": row[15],
    }


async def status_counts(pool: aiomysql.Pool) -> dict[str, int]:
    """Return the number of images per status."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(STATUS_COUNTS)
        return {status: int(n) for status, n in await cur.fetchall()}

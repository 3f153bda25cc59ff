"""SQL of the unit of work's repositories: parameterised constants, one connection per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.db.statements import Statements, Table
from core.images import Image, ImageStatus, StatusChange
from core.ports import SequenceEntry, StorageRecord
from core.variants import Sizes, Variant


def db_time(at: datetime) -> datetime:
    """A UTC instant as MariaDB's DATETIME holds it (naive, UTC)."""
    return at.astimezone(UTC).replace(tzinfo=None)


def _aware(at: datetime | None) -> datetime:
    assert at is not None
    return at.replace(tzinfo=UTC)


_IMAGE_COLUMNS = "image_id, status, reference_type_id, reference_id, image_url, uploader_id, created_at, updated_at"
IMAGES = Table(
    "images",
    (
        "image_id",
        "status",
        "reference_type_id",
        "reference_id",
        "image_url",
        "uploader_id",
        "is_deleted",
        "created_at",
        "updated_at",
    ),
)
STORAGE_OBJECTS = Table(
    "storage_objects",
    (
        "image_id",
        "storage_location",
        "origin_location",
        "origin_size",
        "converted_size",
        "origin_format_id",
        "converted_format_id",
        "width",
        "height",
    ),
)
UPDATE_STORAGE = (
    "UPDATE storage_objects SET storage_location = %s, origin_location = %s, converted_size = %s,"
    " converted_format_id = %s, width = %s, height = %s WHERE image_id = %s"
)
SELECT_STORAGE = (
    "SELECT image_id, storage_location, origin_location, origin_size, origin_format_id, converted_size,"
    " converted_format_id, width, height FROM storage_objects WHERE image_id = %s"
)
UPDATE_IMAGE = (
    "UPDATE images SET status = %s, reference_id = %s, image_url = %s, is_deleted = %s, updated_at = %s"
    " WHERE image_id = %s"
)
SELECT_CONFIRMED = (
    "SELECT i.image_id, i.status, i.reference_type_id, i.reference_id, i.image_url, i.uploader_id,"
    " i.created_at, i.updated_at FROM images i LEFT JOIN image_sequence s"
    " ON s.image_id = i.image_id AND s.reference_type_id = i.reference_type_id"
    " AND s.reference_id = i.reference_id"
    " WHERE i.reference_type_id = %s AND i.reference_id = %s AND i.status = 'CONFIRMED'"
    " ORDER BY s.seq_number IS NULL, s.seq_number, i.updated_at, i.image_id"
)
SELECT_REFERENCED_TYPES = (
    "SELECT DISTINCT reference_type_id FROM images WHERE reference_id = %s AND status = 'CONFIRMED'"
    " ORDER BY reference_type_id"
)
STATUS_HISTORY = Table("status_history", ("image_id", "old_status", "new_status", "updated_at", "updated_by", "reason"))
LOCK_REFERENCE = (
    "INSERT INTO reference_versions (reference_type_id, reference_id, version, updated_at)"
    " VALUES (%s, %s, 1, %s) ON DUPLICATE KEY UPDATE version = version + 1, updated_at = VALUES(updated_at)"
)
DELETE_SEQUENCE = "DELETE FROM image_sequence WHERE reference_type_id = %s AND reference_id = %s"
IMAGE_SEQUENCE = Table(
    "image_sequence", ("reference_type_id", "reference_id", "image_id", "seq_number", "created_at", "updated_at")
)
DELETE_IMAGE = "DELETE FROM images WHERE image_id = %s"
DELETE_ATTEMPTS = "DELETE FROM conversion_attempts WHERE image_id = %s"
IMAGE_VARIANTS = Table("image_variants", ("image_id", "width", "height", "storage_location", "image_url", "size"))
SELECT_SIZES = (
    "SELECT s.image_id, s.width, s.height, v.width, v.height, v.storage_location, v.image_url, v.size"
    " FROM storage_objects s LEFT JOIN image_variants v ON v.image_id = s.image_id"
    " WHERE s.image_id IN ({}) ORDER BY s.image_id, v.width"
)


def _image(row: Sequence[Any]) -> Image:
    return Image(
        image_id=row[0],
        status=ImageStatus(row[1]),
        reference_type=row[2],
        reference_id=row[3],
        image_url=row[4],
        uploader_id=row[5],
        created_at=_aware(row[6]),
        updated_at=_aware(row[7]),
    )


class Repository:
    """A repository over one transaction's statements."""

    def __init__(self, pipeline: Statements) -> None:
        self._tx = pipeline


class MariaDbImages(Repository):
    """ImageRepository over one transaction's connection."""

    async def add(self, image: Image, storage: StorageRecord) -> None:
        self._tx.insert(
            IMAGES,
            [
                (
                    image.image_id,
                    image.status.value,
                    image.reference_type,
                    image.reference_id,
                    image.image_url,
                    image.uploader_id,
                    0,
                    db_time(image.created_at),
                    db_time(image.updated_at),
                )
            ],
        )
        self._tx.insert(
            STORAGE_OBJECTS,
            [
                (
                    storage.image_id,
                    storage.storage_location,
                    storage.origin_location,
                    storage.origin_size,
                    storage.converted_size,
                    storage.origin_format,
                    storage.converted_format,
                    storage.width,
                    storage.height,
                )
            ],
        )

    async def get(self, image_id: str, *, for_update: bool = False) -> Image | None:
        found = await self.get_many([image_id], for_update=for_update)
        return found.get(image_id)

    async def get_many(self, image_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Image]:
        if not image_ids:
            return {}
        # Sorted ids lock rows in one global order, so two transactions cannot deadlock on them.
        ids = sorted(set(image_ids))
        marks = ", ".join(["%s"] * len(ids))
        sql = f"SELECT {_IMAGE_COLUMNS} FROM images WHERE image_id IN ({marks}) ORDER BY image_id"
        rows = await self._tx.fetchall(sql + (" FOR UPDATE" if for_update else ""), ids)
        return {row[0]: _image(row) for row in rows}

    async def confirmed_of(self, reference_type: str, reference_id: str, *, for_update: bool = False) -> list[Image]:
        sql = SELECT_CONFIRMED + (" FOR UPDATE" if for_update else "")
        return [_image(r) for r in await self._tx.fetchall(sql, (reference_type, reference_id))]

    async def referenced_types(self, reference_id: str) -> list[str]:
        return [r[0] for r in await self._tx.fetchall(SELECT_REFERENCED_TYPES, (reference_id,))]

    async def save(self, image: Image) -> None:
        deleted = 1 if image.status is ImageStatus.DELETED else 0
        self._tx.write(
            UPDATE_IMAGE,
            (
                image.status.value,
                image.reference_id,
                image.image_url,
                deleted,
                db_time(image.updated_at),
                image.image_id,
            ),
        )

    async def add_history(self, change: StatusChange) -> None:
        old = change.old_status.value if change.old_status is not None else None
        reason = change.reason[:1000] if change.reason else None
        self._tx.insert(
            STATUS_HISTORY, [(change.image_id, old, change.new_status.value, db_time(change.at), change.by, reason)]
        )

    async def lock_reference(self, reference_type: str, reference_id: str, at: datetime) -> None:
        self._tx.write(LOCK_REFERENCE, (reference_type, reference_id, db_time(at)))

    async def replace_sequence(
        self, reference_type: str, reference_id: str, entries: Sequence[SequenceEntry], at: datetime
    ) -> None:
        self._tx.write(DELETE_SEQUENCE, (reference_type, reference_id))
        self._tx.insert(
            IMAGE_SEQUENCE,
            [(reference_type, reference_id, e.image_id, e.seq_number, db_time(at), db_time(at)) for e in entries],
        )

    async def storage(self, image_id: str) -> StorageRecord | None:
        rows = await self._tx.fetchall(SELECT_STORAGE, (image_id,))
        if not rows:
            return None
        r = rows[0]
        return StorageRecord(
            image_id=r[0],
            storage_location=r[1],
            origin_location=r[2],
            origin_size=int(r[3]),
            origin_format=r[4],
            converted_size=None if r[5] is None else int(r[5]),
            converted_format=r[6],
            width=r[7],
            height=r[8],
        )

    async def save_storage(self, record: StorageRecord) -> None:
        self._tx.write(
            UPDATE_STORAGE,
            (
                record.storage_location,
                record.origin_location,
                record.converted_size,
                record.converted_format,
                record.width,
                record.height,
                record.image_id,
            ),
        )

    async def delete(self, image_id: str) -> None:
        self._tx.write(DELETE_IMAGE, (image_id,))

    async def forget_attempts(self, image_id: str) -> None:
        self._tx.write(DELETE_ATTEMPTS, (image_id,))

    async def add_variants(self, image_id: str, variants: Sequence[Variant]) -> None:
        rows = [(image_id, v.width, v.height, v.key, v.image_url, v.size) for v in variants]
        self._tx.insert(IMAGE_VARIANTS, rows)

    async def sizes_of(self, image_ids: Sequence[str]) -> dict[str, Sizes]:
        if not image_ids:
            return {}
        rows = await self._tx.fetchall(SELECT_SIZES.format(", ".join(["%s"] * len(image_ids))), tuple(image_ids))
        found: dict[str, tuple[int | None, int | None, list[Variant]]] = {}
        for image_id, width, height, v_width, v_height, key, url, size in rows:
            _, _, variants = found.setdefault(image_id, (width, height, []))
            if v_width is not None:
                variants.append(Variant(v_width, v_height, key, url, int(size)))
        return {i: Sizes(w, h, tuple(vs)) for i, (w, h, vs) in found.items()}

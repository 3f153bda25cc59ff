"""Image status, the legal transitions as one table (CONTRACT section 3), and the Image record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from core.errors import IllegalTransition


class ImageStatus(StrEnum):
    """Where an image is in its life."""

    TEMP = "TEMP"
    READY = "READY"
    CONFIRMED = "CONFIRMED"
    DELETED = "DELETED"
    FAILED = "FAILED"


# (from, to). None is "no row yet". Checked line by line against CONTRACT section 3 and
# guide section 2.5/6.2: async upload -> TEMP, sync upload -> READY, conversion -> READY/FAILED,
# confirm -> CONFIRMED, replace/delete -> DELETED, the TEMP sweep -> DELETED. DELETED is terminal.
# FAILED -> TEMP is not here: only an operator's `requeue` (below, issue 16) moves an image back,
# so no client request or message can.
TRANSITIONS: frozenset[tuple[ImageStatus | None, ImageStatus]] = frozenset(
    {
        (None, ImageStatus.TEMP),
        (None, ImageStatus.READY),
        (ImageStatus.TEMP, ImageStatus.READY),
        (ImageStatus.TEMP, ImageStatus.FAILED),
        (ImageStatus.TEMP, ImageStatus.DELETED),
        (ImageStatus.READY, ImageStatus.CONFIRMED),
        (ImageStatus.READY, ImageStatus.DELETED),
        (ImageStatus.CONFIRMED, ImageStatus.DELETED),
    }
)


def is_legal(old: ImageStatus | None, new: ImageStatus) -> bool:
    """Tell whether the table allows moving from `old` to `new`."""
    return (old, new) in TRANSITIONS


@dataclass(frozen=True)
class Image:
    """One row of `images`."""

    image_id: str
    status: ImageStatus
    reference_type: str
    image_url: str
    uploader_id: str | None
    created_at: datetime
    updated_at: datetime
    reference_id: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """One row of `status_history`, written in the same transaction as the change."""

    image_id: str
    old_status: ImageStatus | None
    new_status: ImageStatus
    at: datetime
    by: str | None
    reason: str | None = None


def transition(
    image: Image,
    to: ImageStatus,
    *,
    at: datetime,
    by: str | None,
    reason: str | None = None,
    reference_id: str | None = None,
) -> tuple[Image, StatusChange]:
    """Return the image moved to `to` and its history row; raise IllegalTransition otherwise."""
    if not is_legal(image.status, to):
        raise IllegalTransition(f"image {image.image_id} cannot move from {image.status} to {to}")
    changed = replace(
        image,
        status=to,
        updated_at=at,
        reference_id=reference_id if reference_id is not None else image.reference_id,
    )
    return changed, StatusChange(image.image_id, image.status, to, at, by, reason)


def created(image: Image, *, by: str | None, reason: str | None = None) -> StatusChange:
    """Return the history row of a newly created image (TEMP, or READY for a sync upload)."""
    if not is_legal(None, image.status):
        raise IllegalTransition(f"an image cannot be created as {image.status}")
    return StatusChange(image.image_id, None, image.status, image.created_at, by, reason)


REQUEUEABLE = frozenset({ImageStatus.FAILED, ImageStatus.TEMP})


def requeued(image: Image, *, at: datetime, by: str, reason: str) -> tuple[Image, StatusChange]:
    """Return a FAILED or TEMP image put back to TEMP for another conversion, and its history row.

    A TEMP image stays TEMP (its conversion is announced again); the history row says so either way.
    """
    if image.status not in REQUEUEABLE:
        raise IllegalTransition(f"image {image.image_id} is {image.status}: only FAILED or TEMP images are requeued")
    moved = replace(image, status=ImageStatus.TEMP, updated_at=at)
    return moved, StatusChange(image.image_id, image.status, ImageStatus.TEMP, at, by, reason)

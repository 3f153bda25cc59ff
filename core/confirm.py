"""Confirm rules of CONTRACT 2.2-2.5 as pure functions: they return a plan or raise one error per code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core import errors, events, fields
from core.events import IMAGE_CHANGED, IMAGES_CHANGED, IMAGES_DELETED, Envelope
from core.images import Image, ImageStatus, StatusChange, transition
from core.ports import SequenceEntry
from core.references import ReferenceRule
from core.variants import NO_SIZES, Sizes


@dataclass(frozen=True)
class ConfirmPlan:
    """What a confirm does to one reference; `event` is None for a no-op."""

    reference_type: str
    reference_id: str
    images: list[Image]  # the reference's images afterwards, in list order
    changes: list[tuple[Image, StatusChange]] = field(default_factory=list)
    sequence: list[SequenceEntry] = field(default_factory=list)
    event: str | None = None

    @property
    def is_noop(self) -> bool:
        """Tell whether nothing changes (and so nothing is written or announced)."""
        return self.event is None


def check_reference_id(reference_id: str) -> None:
    """Reject a blank referenceId or one longer than its column (VALIDATION_ERROR)."""
    if not reference_id.strip():
        raise errors.ValidationError("referenceId must not be blank")
    fields.require_fits("referenceId", reference_id, fields.REFERENCE_ID)


def check_ids(image_ids: Sequence[str]) -> None:
    """Reject blank or over-long ids (VALIDATION_ERROR) and duplicates (INVALID_IMAGE_SEQUENCE)."""
    if any(not i or not i.strip() for i in image_ids):
        raise errors.ValidationError("image ids must not be blank")
    for image_id in image_ids:
        fields.require_fits("imageId", image_id, fields.IMAGE_ID)
    if len(set(image_ids)) != len(image_ids):
        raise errors.InvalidImageSequence("the list names an image more than once")


def reference_type_of(image_ids: Sequence[str], found: Mapping[str, Image]) -> str:
    """Return the one reference type of the listed images; IMAGE_NOT_FOUND or INVALID_REFERENCE otherwise."""
    for image_id in image_ids:
        if image_id not in found:
            raise errors.ImageNotFound(f"image {image_id} does not exist")
    types = {found[i].reference_type for i in image_ids}
    if len(types) != 1:
        raise errors.InvalidReference(f"the images belong to different reference types: {sorted(types)}")
    return types.pop()


def check_confirmable(image: Image, reference_id: str) -> None:
    """Raise the contract's error when `image` cannot be confirmed to `reference_id`."""
    if image.status is ImageStatus.TEMP:
        raise errors.ImageProcessingInProgress(f"image {image.image_id} is still being processed")
    if image.status is ImageStatus.FAILED:
        raise errors.ImageProcessingFailed(f"image {image.image_id} failed processing; upload it again")
    if image.status is ImageStatus.DELETED:
        raise errors.InvalidImageStatus(f"image {image.image_id} is deleted")
    if image.status is ImageStatus.CONFIRMED and image.reference_id != reference_id:
        raise errors.ImageAlreadyConfirmed(f"image {image.image_id} is confirmed to another reference")


def plan_confirm(
    rule: ReferenceRule,
    reference_id: str,
    image_ids: Sequence[str],
    found: Mapping[str, Image],
    current: Sequence[Image],
    *,
    at: datetime,
    by: str | None,
) -> ConfirmPlan:
    """Plan making `image_ids` the complete, ordered image list of the reference.

    Listed images become CONFIRMED, the reference's other images DELETED, and the sequence is
    0..n-1 in list order. Sending the current list again is a no-op.
    """
    check_ids(image_ids)
    if (code := rule.check_count(len(image_ids))) == "NOT_ALLOWED_MULTIPLE_IMAGES":
        raise errors.NotAllowedMultipleImages(f"{rule.code} takes one image")
    elif code == "IMAGE_COUNT_EXCEEDED":
        raise errors.ImageCountExceeded(f"{rule.code} takes at most {rule.max_images} images")
    for image_id in image_ids:
        check_confirmable(found[image_id], reference_id)
    if not image_ids:
        return plan_delete_all(rule.code, reference_id, current, at=at, by=by)

    changes: list[tuple[Image, StatusChange]] = []
    images: list[Image] = []
    for image_id in image_ids:
        image = found[image_id]
        if image.status is ImageStatus.READY:
            image, change = transition(
                image, ImageStatus.CONFIRMED, at=at, by=by, reason="confirmed", reference_id=reference_id
            )
            changes.append((image, change))
        images.append(image)
    listed = set(image_ids)
    for old in current:
        if old.image_id not in listed:
            changes.append(transition(old, ImageStatus.DELETED, at=at, by=by, reason="replaced"))
    sequence = [SequenceEntry(image_id, n) for n, image_id in enumerate(image_ids)]
    unchanged = not changes and [i.image_id for i in current] == list(image_ids)
    event = None if unchanged else (IMAGES_CHANGED if rule.allows_multiple else IMAGE_CHANGED)
    return ConfirmPlan(rule.code, reference_id, images, changes, sequence, event)


def plan_replay(rule: ReferenceRule, reference_id: str, current: Sequence[Image]) -> ConfirmPlan:
    """The reference's current state as a plan that changes nothing but announces it again.

    The event is the one a confirm of that list would send: IMAGE_CHANGED for a single-image
    type, IMAGES_CHANGED for a multi-image one, IMAGES_DELETED when the reference has no images.
    """
    if not current:
        return ConfirmPlan(rule.code, reference_id, [], event=IMAGES_DELETED)
    sequence = [SequenceEntry(image.image_id, n) for n, image in enumerate(current)]
    event = IMAGES_CHANGED if rule.allows_multiple else IMAGE_CHANGED
    return ConfirmPlan(rule.code, reference_id, list(current), [], sequence, event)


def plan_delete_all(
    reference_type: str, reference_id: str, current: Sequence[Image], *, at: datetime, by: str | None
) -> ConfirmPlan:
    """Plan deleting every image of the reference; a no-op when it has none."""
    changes = [transition(i, ImageStatus.DELETED, at=at, by=by, reason="deleted") for i in current]
    return ConfirmPlan(reference_type, reference_id, [], changes, [], IMAGES_DELETED if changes else None)


def change_event(
    plan: ConfirmPlan, *, event_id: str, at: datetime, sizes: Mapping[str, Sizes] | None = None
) -> Envelope:
    """Build the `<type>-image-changed` envelope of an applied plan; `sizes` by image id."""
    kind = dict(reference_type=plan.reference_type, reference_id=plan.reference_id)
    known = sizes or {}
    if plan.event == IMAGE_CHANGED:
        only = plan.images[0]
        return events.image_changed(
            event_id=event_id,
            at=at,
            image_id=only.image_id,
            image_url=only.image_url,
            sizes=known.get(only.image_id, NO_SIZES),
            **kind,
        )
    if plan.event == IMAGES_CHANGED:
        listed = [
            events.SequencedImage(i.image_id, i.image_url, entry.seq_number, known.get(i.image_id, NO_SIZES))
            for i, entry in zip(plan.images, plan.sequence, strict=True)
        ]
        return events.images_changed(event_id=event_id, at=at, images=listed, **kind)
    return events.images_deleted(event_id=event_id, at=at, **kind)

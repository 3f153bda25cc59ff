"""The conversion use case: a worker's finished (or failed) conversion moves a TEMP image, once.

One transaction: storage row, variants, status, history, processed_events and the
image-processed event (CONTRACT 4, 5). Time and ids come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from core import fields, upload_rules
from core.events import image_processed
from core.images import Image, ImageStatus, StatusChange, transition
from core.ports import Conversion, StorageRecord, UnitOfWork
from core.services import NewId, variants_at
from core.variants import NO_SIZES, Sizes

CONVERTER = "image-converter"  # processed_events.consumer of the conversion agent


@dataclass(frozen=True)
class Completion:
    """What complete_conversion did."""

    applied: bool
    image: Image | None
    origin_to_remove: str | None = None


async def complete_conversion(
    uow: UnitOfWork,
    *,
    event_id: str,
    image_id: str,
    outcome: Conversion,
    base_url: str,
    keep_originals: bool,
    now: datetime,
    new_id: NewId,
) -> Completion:
    """Move a TEMP image to READY or FAILED, once: a redelivered event or a non-TEMP image changes nothing."""
    if outcome.reason is not None:
        outcome = replace(outcome, reason=fields.clip(outcome.reason))  # a codec's message can be long
    async with uow:
        if await uow.processed.seen(CONVERTER, event_id):
            return Completion(False, None)
        image = await uow.images.get(image_id, for_update=True)
        if image is None or image.status is not ImageStatus.TEMP:
            detail = "image row missing" if image is None else f"image is {image.status}, not TEMP"
            await uow.processed.record(CONVERTER, event_id, outcome="SKIPPED", detail=detail, at=now)
            await uow.commit()
            return Completion(False, image)
        storage = await uow.images.storage(image_id)
        remove_origin, sizes = None, NO_SIZES
        if outcome.ready:
            assert outcome.key is not None and storage is not None
            image, change, remove_origin, sizes = await _ready(
                uow, image, storage, outcome, base_url=base_url, keep_originals=keep_originals, now=now
            )
        else:
            image, change = transition(image, ImageStatus.FAILED, at=now, by=CONVERTER, reason=outcome.reason)
        await uow.images.save(image)
        await uow.images.add_history(change)
        await uow.processed.record(CONVERTER, event_id, outcome=image.status.value, detail=outcome.reason, at=now)
        await uow.outbox.add(
            image_processed(
                event_id=new_id(),
                at=now,
                image_id=image_id,
                ready=outcome.ready,
                image_url=image.image_url,
                reason=outcome.reason,
                sizes=sizes,
            )
        )
        await uow.commit()
    return Completion(True, image, remove_origin)


async def _ready(
    uow: UnitOfWork,
    image: Image,
    storage: StorageRecord,
    outcome: Conversion,
    *,
    base_url: str,
    keep_originals: bool,
    now: datetime,
) -> tuple[Image, StatusChange, str | None, Sizes]:
    """Record a finished conversion: the stored file, its size and variants; the original to remove."""
    assert outcome.key is not None
    url = upload_rules.image_url(base_url, outcome.key)
    image, change = transition(
        replace(image, image_url=url), ImageStatus.READY, at=now, by=CONVERTER, reason=outcome.reason
    )
    origin, remove_origin = storage.origin_location, None
    if not keep_originals and origin and origin != outcome.key:
        remove_origin, origin = origin, None
    width, height = outcome.width or storage.width, outcome.height or storage.height
    await uow.images.save_storage(
        replace(
            storage,
            storage_location=outcome.key,
            origin_location=origin,
            converted_size=outcome.size,
            converted_format=outcome.format,
            width=width,
            height=height,
        )
    )
    variants = variants_at(outcome.variants, base_url)
    if variants:
        await uow.images.add_variants(image.image_id, variants)
    return image, change, remove_origin, Sizes(width, height, tuple(variants))

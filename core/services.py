"""Use cases: each loads, applies the rules, saves, adds outbox envelopes and commits in ONE transaction.

Time (`now`) and ids (`new_id`) come in as arguments so that tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core import confirm, errors, fields, uploads
from core.confirm import ConfirmPlan
from core.events import Envelope, image_processed
from core.idempotency import Remember
from core.images import Image, ImageStatus, created, transition
from core.ports import StorageRecord, UnitOfWork
from core.references import ReferenceData
from core.variants import NO_SIZES, Sizes, Variant, VariantFile

NewId = Callable[[], str]
CONVERTER = "image-converter"  # processed_events.consumer of the conversion agent


@dataclass(frozen=True)
class SyncResult:
    """A conversion done inside the upload request (?sync=true)."""

    key: str
    format: str
    size: int
    width: int | None = None
    height: int | None = None
    variants: tuple[VariantFile, ...] = ()


def _variants(files: Sequence[VariantFile], base_url: str) -> list[Variant]:
    return [Variant(f.width, f.height, f.key, uploads.image_url(base_url, f.key), f.size) for f in files]


async def record_uploads(
    uow: UnitOfWork,
    originals: Sequence[uploads.StoredOriginal],
    *,
    base_url: str,
    now: datetime,
    new_id: NewId,
    converted: Sequence[SyncResult] | None = None,
    remember: Remember | None = None,
) -> list[Image]:
    """Insert the images (TEMP, or READY when converted), storage rows, history and outbox rows.

    All of a request's images commit together or not at all (multi uploads are all-or-nothing).
    Async uploads announce IMAGE_UPLOADED for the workers; sync ones IMAGE_READY.
    """
    images: list[Image] = []
    async with uow:
        for i, original in enumerate(originals):
            done = converted[i] if converted is not None else None
            status = ImageStatus.READY if done else ImageStatus.TEMP
            image = uploads.new_image(original, base_url=base_url, at=now, status=status)
            if done is not None:
                image = replace(image, image_url=uploads.image_url(base_url, done.key))
            await uow.images.add(image, _storage_row(original, done))
            await uow.images.add_history(created(image, by=original.uploader_id, reason="uploaded"))
            if done is None:
                await uow.outbox.add(uploads.image_uploaded(original, image, event_id=new_id()))
            else:
                variants = _variants(done.variants, base_url)
                if variants:
                    await uow.images.add_variants(image.image_id, variants)
                sizes = Sizes(done.width or original.width, done.height or original.height, tuple(variants))
                await uow.outbox.add(
                    image_processed(
                        event_id=new_id(),
                        at=now,
                        image_id=image.image_id,
                        ready=True,
                        image_url=image.image_url,
                        reason=None,
                        sizes=sizes,
                    )
                )
            images.append(image)
        if remember is not None:
            await uow.idempotency.remember(remember.request, remember.answer(images), now)
        await uow.commit()
    return images


def _storage_row(original: uploads.StoredOriginal, done: SyncResult | None) -> StorageRecord:
    return StorageRecord(
        image_id=original.image_id,
        storage_location=done.key if done else original.origin_key or "",
        origin_location=original.origin_key,
        origin_size=original.origin_size,
        origin_format=original.origin_format,
        converted_size=done.size if done else None,
        converted_format=done.format if done else None,
        # The converted size when known: EXIF orientation can swap the header's width and height.
        width=(done.width if done else None) or original.width,
        height=(done.height if done else None) or original.height,
    )


@dataclass(frozen=True)
class ConversionOutcome:
    """What the worker's conversion produced for one image."""

    ready: bool
    key: str | None = None  # the stored file, when ready
    format: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    reason: str | None = None  # why FAILED, or why the original was kept
    variants: tuple[VariantFile, ...] = ()


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
    outcome: ConversionOutcome,
    base_url: str,
    keep_originals: bool,
    now: datetime,
    new_id: NewId,
) -> Completion:
    """Move a TEMP image to READY or FAILED, once: a redelivered event or a non-TEMP image changes nothing.

    One transaction: storage row, status, history, processed_events and the image-processed event.
    """
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
        origin = storage.origin_location if storage else None
        remove_origin = None
        sizes = NO_SIZES
        if outcome.ready:
            assert outcome.key is not None and storage is not None
            url = uploads.image_url(base_url, outcome.key)
            image, change = transition(
                replace(image, image_url=url), ImageStatus.READY, at=now, by=CONVERTER, reason=outcome.reason
            )
            if not keep_originals and origin and origin != outcome.key:
                remove_origin, origin = origin, None
            await uow.images.save_storage(
                replace(
                    storage,
                    storage_location=outcome.key,
                    origin_location=origin,
                    converted_size=outcome.size,
                    converted_format=outcome.format,
                    width=outcome.width or storage.width,
                    height=outcome.height or storage.height,
                )
            )
            variants = _variants(outcome.variants, base_url)
            if variants:
                await uow.images.add_variants(image_id, variants)
            sizes = Sizes(outcome.width or storage.width, outcome.height or storage.height, tuple(variants))
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


@dataclass(frozen=True)
class ConfirmResult:
    """The plans a confirm applied (empty when it changed nothing)."""

    applied: list[ConfirmPlan]


async def confirm_images(
    uow: UnitOfWork,
    *,
    reference_id: str,
    image_ids: Sequence[str],
    references: ReferenceData,
    now: datetime,
    new_id: NewId,
    by: str | None = None,
    remember: Remember | None = None,
) -> ConfirmResult:
    """Make `image_ids` the reference's complete ordered list, in one transaction (CONTRACT 2.2-2.5).

    The reference's lock row is taken first, so concurrent confirms of one reference serialise
    and their events are written in commit order.
    """
    confirm.check_reference_id(reference_id)
    confirm.check_ids(image_ids)
    async with uow:
        found = await uow.images.get_many(image_ids)
        reference_type = confirm.reference_type_of(image_ids, found)
        rule = references.rule_for(reference_type)
        if rule is None:
            raise errors.ReferenceTypeNotFound(f"unknown reference type {reference_type}")
        await uow.images.lock_reference(reference_type, reference_id, now)
        found = await uow.images.get_many(image_ids, for_update=True)
        confirm.reference_type_of(image_ids, found)
        current = await uow.images.confirmed_of(reference_type, reference_id, for_update=True)
        plan = confirm.plan_confirm(rule, reference_id, image_ids, found, current, at=now, by=by)
        if not plan.is_noop:
            await _apply(uow, plan, now=now, new_id=new_id)
        if remember is not None:
            await uow.idempotency.remember(remember.request, remember.answer([]), now)
        if not plan.is_noop or remember is not None:
            await uow.commit()
    return ConfirmResult([] if plan.is_noop else [plan])


async def delete_all(
    uow: UnitOfWork,
    *,
    reference_id: str,
    reference_type: str | None,
    now: datetime,
    new_id: NewId,
    by: str | None = None,
    remember: Remember | None = None,
) -> ConfirmResult:
    """Delete every image of the reference (CONTRACT 2.4); without a type, of each type using that id."""
    confirm.check_reference_id(reference_id)
    applied: list[ConfirmPlan] = []
    async with uow:
        types = [reference_type] if reference_type else await uow.images.referenced_types(reference_id)
        for code in types:
            await uow.images.lock_reference(code, reference_id, now)
            current = await uow.images.confirmed_of(code, reference_id, for_update=True)
            plan = confirm.plan_delete_all(code, reference_id, current, at=now, by=by)
            if not plan.is_noop:
                await _apply(uow, plan, now=now, new_id=new_id)
                applied.append(plan)
        if remember is not None:
            await uow.idempotency.remember(remember.request, remember.answer([]), now)
        if applied or remember is not None:
            await uow.commit()
    return ConfirmResult(applied)


async def _apply(uow: UnitOfWork, plan: ConfirmPlan, *, now: datetime, new_id: NewId) -> None:
    for image, change in plan.changes:
        await uow.images.save(image)
        await uow.images.add_history(change)
    await uow.images.replace_sequence(plan.reference_type, plan.reference_id, plan.sequence, now)
    await uow.outbox.add(await announcement(uow, plan, event_id=new_id(), at=now))


async def announcement(uow: UnitOfWork, plan: ConfirmPlan, *, event_id: str, at: datetime) -> Envelope:
    """The plan's change event, its images carrying their sizes and variants as stored."""
    sizes = await uow.images.sizes_of([i.image_id for i in plan.images]) if plan.images else {}
    return confirm.change_event(plan, event_id=event_id, at=at, sizes=sizes)

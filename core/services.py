"""Use cases: each loads, applies the rules, saves, adds outbox envelopes and commits in ONE transaction.

Time (`now`) and ids (`new_id`) come in as arguments so that tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from core import auth, confirm, errors, quotas, upload_rules
from core.auth import ANONYMOUS, Caller
from core.confirm import ConfirmPlan
from core.events import Envelope, image_processed
from core.idempotency import Remember
from core.images import Image, ImageStatus, created
from core.ports import Conversion, StorageRecord, UnitOfWork, UploadUnitOfWork
from core.references import ReferenceData
from core.variants import Sizes, Variant, VariantFile

NewId = Callable[[], str]


def variants_at(files: Sequence[VariantFile], base_url: str) -> list[Variant]:
    """The variants a conversion wrote, as recorded: each with its public URL."""
    return [Variant(f.width, f.height, f.key, upload_rules.image_url(base_url, f.key), f.size) for f in files]


async def record_uploads(
    uow: UploadUnitOfWork,
    originals: Sequence[upload_rules.StoredOriginal],
    *,
    base_url: str,
    now: datetime,
    new_id: NewId,
    converted: Sequence[Conversion] | None = None,
    remember: Remember | None = None,
    quota: quotas.QuotaLimits | None = None,
) -> list[Image]:
    """Insert the images (TEMP, or READY when converted), storage rows, history and outbox rows.

    All of a request's images commit together or not at all (multi uploads are all-or-nothing).
    Async uploads announce IMAGE_UPLOADED for the workers; sync ones IMAGE_READY. With a quota,
    the uploader's usage is checked and counted first, in this transaction, under its lock.
    """
    images: list[Image] = []
    async with uow:
        if quota is not None and quota.active and originals:
            await _charge(uow, quota, originals, now)
        for i, original in enumerate(originals):
            done = converted[i] if converted is not None else None
            status = ImageStatus.READY if done else ImageStatus.TEMP
            image = upload_rules.new_image(original, base_url=base_url, at=now, status=status)
            if done is not None:
                assert done.key is not None, "a sync upload records only what it converted"
                image = replace(image, image_url=upload_rules.image_url(base_url, done.key))
            await uow.images.add(image, _storage_row(original, done))
            await uow.images.add_history(created(image, by=original.uploader_id, reason="uploaded"))
            if done is None:
                await uow.outbox.add(upload_rules.uploaded_event(original, image, event_id=new_id()))
            else:
                variants = variants_at(done.variants, base_url)
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
        await commit(uow, "upload")
    return images


async def commit(uow: UnitOfWork | UploadUnitOfWork, what: str) -> None:
    """Commit; a commit whose outcome is unknown is IMAGE_SAVE_FAILED saying so, never an outage (CONTRACT 2).

    A lost connection before the COMMIT was sent surely changed nothing and stays what it was
    (the api's 503, "retry"); once the COMMIT may have reached MariaDB, 503 would be a lie.
    """
    try:
        await uow.commit()
    except Exception as exc:
        if uow.commit_in_doubt:
            raise errors.outcome_unknown(what) from exc
        raise


async def _charge(
    uow: UploadUnitOfWork, quota: quotas.QuotaLimits, originals: Sequence[upload_rules.StoredOriginal], now: datetime
) -> None:
    """Count an upload against its uploader's quota, or raise QUOTA_EXCEEDED (concurrent uploads serialise)."""
    uploader = originals[0].uploader_id
    nbytes = sum(o.origin_size for o in originals)
    usage = await uow.quotas.usage_locked(uploader, since=quota.counted_since(now))
    quotas.check(quota, usage, now, len(originals), nbytes)
    await uow.quotas.add(uploader, quotas.Usage(quotas.minute_of(now), len(originals), nbytes))


def _storage_row(original: upload_rules.StoredOriginal, done: Conversion | None) -> StorageRecord:
    return StorageRecord(
        image_id=original.image_id,
        storage_location=(done.key if done else None) or original.origin_key or "",
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
    caller: Caller = ANONYMOUS,
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
        auth.require_reference_type(caller, reference_type)
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
            await commit(uow, "confirm")
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
    caller: Caller = ANONYMOUS,
) -> ConfirmResult:
    """Delete every image of the reference (CONTRACT 2.4); without a type, of each type using that id.

    A caller limited to some reference types deletes only theirs: product "7" is not profile "7".
    """
    confirm.check_reference_id(reference_id)
    if reference_type:
        auth.require_reference_type(caller, reference_type)
    applied: list[ConfirmPlan] = []
    async with uow:
        types = [reference_type] if reference_type else await uow.images.referenced_types(reference_id)
        types = auth.confirmable(caller, types)
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
            await commit(uow, "delete")
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

"""An operator's use cases (`python -m workers replay | requeue`): announce again, convert again.

Like the client's use cases (core/services.py), each works in one transaction and writes its
events to the outbox; time and ids come in as arguments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from core import confirm, errors, upload_rules
from core.events import Envelope
from core.images import REQUEUEABLE, requeued
from core.ports import UnitOfWork
from core.references import ReferenceData
from core.services import NewId, announcement

OPERATOR = "operator"  # status_history.updated_by of an operator's change


async def replay(
    uow: UnitOfWork,
    *,
    reference_id: str,
    reference_type: str | None,
    references: ReferenceData,
    now: datetime,
    new_id: NewId,
) -> list[Envelope]:
    """Announce the reference's current state again, as new events (an operator's `replay`).

    For a downstream service that lost its copy. Without a type, every type using that
    referenceId. Under the reference's lock, so the event follows every committed confirm.
    """
    confirm.check_reference_id(reference_id)
    announced: list[Envelope] = []
    async with uow:
        types = [reference_type] if reference_type else await uow.images.referenced_types(reference_id)
        for code in types:
            rule = references.rule_for(code)
            if rule is None:
                raise errors.ReferenceTypeNotFound(f"unknown reference type {code}")
            await uow.images.lock_reference(rule.code, reference_id, now)
            current = await uow.images.confirmed_of(rule.code, reference_id, for_update=True)
            plan = confirm.plan_replay(rule, reference_id, current)
            envelope = await announcement(uow, plan, event_id=new_id(), at=now)
            await uow.outbox.add(envelope)
            announced.append(envelope)
        if announced:
            await uow.commit()
    return announced


@dataclass(frozen=True)
class Requeue:
    """What `requeue` did with one image: `requeued`, or why not (`refused` with the reason)."""

    image_id: str
    outcome: str  # "requeued" | "refused"
    reason: str | None = None
    event: Envelope | None = None


async def requeue(
    uow: UnitOfWork,
    *,
    image_id: str,
    reason: str,
    original_exists: Callable[[str], Awaitable[bool]],
    now: datetime,
    new_id: NewId,
) -> Requeue:
    """Put a FAILED (or stuck TEMP) image back to TEMP with a new IMAGE_UPLOADED, so the fleet converts it again.

    Only while its original is still stored (the FAILED sweep removes it after a day). Its
    conversion attempts start again from zero, and the history row carries the operator's reason.
    """
    async with uow:
        image = await uow.images.get(image_id, for_update=True)
        if image is None:
            return Requeue(image_id, "refused", "no such image")
        if image.status not in REQUEUEABLE:
            return Requeue(image_id, "refused", f"image is {image.status}, not FAILED or TEMP")
        storage = await uow.images.storage(image_id)
        origin = storage.origin_location if storage else None
        if storage is None or not origin or not await original_exists(origin):
            return Requeue(image_id, "refused", "its original is no longer stored: upload it again")
        image, change = requeued(image, at=now, by=OPERATOR, reason=f"requeued: {reason}")
        original = upload_rules.StoredOriginal(
            image_id=image_id,
            reference_type=image.reference_type,
            uploader_id=image.uploader_id or "",
            origin_key=origin,
            origin_format=storage.origin_format,
            origin_size=storage.origin_size,
            width=storage.width or 0,
            height=storage.height or 0,
        )
        event = upload_rules.uploaded_event(original, image, event_id=new_id())
        await uow.images.save(image)
        await uow.images.add_history(change)
        await uow.images.forget_attempts(image_id)
        await uow.outbox.add(event)
        await uow.commit()
    return Requeue(image_id, "requeued", event=event)

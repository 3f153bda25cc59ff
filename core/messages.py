"""What a consumer records about one message (processed_events), as use cases: one transaction each.

A poison message is recorded so it is skipped (and visible to `python -m workers poison`); an
upload command is accepted once, or refused with IMAGE_FAILED on `image-processed` so its sender
hears why. Redelivered messages find their record and change nothing.
"""

from __future__ import annotations

from datetime import datetime

from core import fields
from core.events import image_processed
from core.ports import UnitOfWork
from core.services import NewId


async def record_poison(uow: UnitOfWork, *, consumer: str, event_id: str, reason: str, now: datetime) -> bool:
    """Record a message that can never be processed; False when it was recorded before."""
    async with uow:
        if await uow.processed.seen(consumer, event_id):
            return False
        await uow.processed.record(consumer, event_id, outcome="POISON", detail=fields.clip(reason), at=now)
        await uow.commit()
    return True


async def command_seen(uow: UnitOfWork, *, consumer: str, event_id: str, image_id: str) -> bool:
    """Whether this command was handled before, or its image already exists (the imageId is the key)."""
    async with uow:
        return await uow.processed.seen(consumer, event_id) or await uow.images.get(image_id) is not None


async def accept_command(uow: UnitOfWork, *, consumer: str, event_id: str, now: datetime) -> None:
    """Record an upload command as handled (its images committed in their own transaction)."""
    async with uow:
        await uow.processed.record(consumer, event_id, outcome="ACCEPTED", detail=None, at=now)
        await uow.commit()


async def reject_command(
    uow: UnitOfWork, *, consumer: str, event_id: str, image_id: str, reason: str, now: datetime, new_id: NewId
) -> bool:
    """Refuse an upload command: record it and announce IMAGE_FAILED with the reason; False if done before."""
    async with uow:
        if await uow.processed.seen(consumer, event_id):
            return False
        kept = fields.clip(reason)
        await uow.processed.record(consumer, event_id, outcome="REJECTED", detail=kept, at=now)
        await uow.outbox.add(
            image_processed(event_id=new_id(), at=now, image_id=image_id, ready=False, image_url="", reason=kept)
        )
        await uow.commit()
    return True

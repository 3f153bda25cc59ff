"""What a consumer records about one message (core/messages.py), on the in-memory unit of work."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from core import messages
from core.images import Image, ImageStatus
from tests.fakes import FakeUnitOfWork

T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)


def ids():  # type: ignore[no-untyped-def]
    counter = itertools.count()
    return lambda: f"evt-{next(counter)}"


async def test_poison_is_recorded_once() -> None:
    uow = FakeUnitOfWork()
    first = await messages.record_poison(uow, consumer="c", event_id="e", reason="x" * 2000, now=T)
    again = await messages.record_poison(uow, consumer="c", event_id="e", reason="other", now=T)
    assert (first, again, uow.commits) == (True, False, 1)
    assert uow.state.processed[("c", "e")] == "POISON"


async def test_a_refused_command_is_answered_once_with_image_failed() -> None:
    uow = FakeUnitOfWork()
    args = dict(consumer="c", event_id="e", image_id="img", reason="VALIDATION_ERROR: no file", now=T, new_id=ids())
    assert await messages.reject_command(uow, **args) is True  # type: ignore[arg-type]
    assert await messages.reject_command(uow, **args) is False  # type: ignore[arg-type]
    (event,) = uow.state.outbox
    assert (event.event_type, event.key, event.payload["reason"]) == (
        "IMAGE_FAILED",
        "img",
        "VALIDATION_ERROR: no file",
    )


async def test_a_command_is_seen_by_its_event_or_by_its_image() -> None:
    uow = FakeUnitOfWork()
    assert not await messages.command_seen(uow, consumer="c", event_id="e", image_id="img")
    await messages.accept_command(uow, consumer="c", event_id="e", now=T)
    assert await messages.command_seen(uow, consumer="c", event_id="e", image_id="other")
    uow.state.images["img"] = Image("img", ImageStatus.TEMP, "POST", "u", "s", T, T)
    assert await messages.command_seen(uow, consumer="c", event_id="e2", image_id="img")

"""One contract, two implementations: FakeUnitOfWork (unit tests) and MariaDbUnitOfWork (production)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiomysql
import pytest

from adapters.mariadb import MariaDbUnitOfWork
from core.events import images_deleted
from core.images import Image, ImageStatus, StatusChange
from core.ports import SequenceEntry, StorageRecord, UnitOfWork
from tests.fakes import FakeUnitOfWork

T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)
UowFactory = Callable[[], UnitOfWork]


@pytest.fixture(params=["fake", "mariadb"])
def new_uow(request: pytest.FixtureRequest) -> UowFactory:
    if request.param == "fake":
        fake = FakeUnitOfWork()
        return lambda: fake
    pool: aiomysql.Pool = request.getfixturevalue("pool")
    return lambda: MariaDbUnitOfWork(pool)


def image(kind: str = "POST", status: ImageStatus = ImageStatus.READY, ref: str | None = None) -> Image:
    image_id = str(uuid.uuid4())
    return Image(image_id, status, kind, f"http://x/{image_id}.webp", "u", T, T, ref)


def storage(img: Image) -> StorageRecord:
    return StorageRecord(img.image_id, f"POST/{img.image_id}.webp", None, 10, "JPEG", 5, "WEBP", 2, 3)


async def add(new_uow: UowFactory, *images: Image) -> None:
    async with new_uow() as uow:
        for img in images:
            await uow.images.add(img, storage(img))
        await uow.commit()


async def test_committed_writes_are_seen_by_the_next_unit_of_work(new_uow: UowFactory) -> None:
    img = image()
    await add(new_uow, img)
    async with new_uow() as uow:
        assert await uow.images.get(img.image_id) == img
        assert await uow.images.storage(img.image_id) == storage(img)


async def test_leaving_without_commit_rolls_everything_back(new_uow: UowFactory) -> None:
    img = image()
    async with new_uow() as uow:
        await uow.images.add(img, storage(img))
        await uow.outbox.add(images_deleted(event_id=str(uuid.uuid4()), at=T, reference_type="POST", reference_id="r"))
        await uow.processed.record("c", "e-1", outcome="X", detail=None, at=T)
    async with new_uow() as uow:
        assert await uow.images.get(img.image_id) is None
        assert not await uow.processed.seen("c", "e-1")


async def test_confirmed_images_come_in_sequence_order(new_uow: UowFactory) -> None:
    ref = f"ref-{uuid.uuid4().hex[:8]}"
    a, b, c = (image(status=ImageStatus.CONFIRMED, ref=ref) for _ in range(3))
    await add(new_uow, a, b, c, image(status=ImageStatus.DELETED, ref=ref))
    async with new_uow() as uow:
        await uow.images.replace_sequence(
            "POST", ref, [SequenceEntry(c.image_id, 0), SequenceEntry(a.image_id, 1), SequenceEntry(b.image_id, 2)], T
        )
        await uow.commit()
    async with new_uow() as uow:
        assert [i.image_id for i in await uow.images.confirmed_of("POST", ref)] == [c.image_id, a.image_id, b.image_id]
        assert await uow.images.referenced_types(ref) == ["POST"]
        assert await uow.images.confirmed_of("PRODUCT", ref) == []


async def test_saved_status_and_history_persist(new_uow: UowFactory) -> None:
    img = image()
    await add(new_uow, img)
    moved = Image(**{**img.__dict__, "status": ImageStatus.CONFIRMED, "reference_id": "r-1"})
    async with new_uow() as uow:
        await uow.images.save(moved)
        await uow.images.add_history(
            StatusChange(img.image_id, ImageStatus.READY, ImageStatus.CONFIRMED, T, "t", "why")
        )
        await uow.commit()
    async with new_uow() as uow:
        assert (await uow.images.get(img.image_id)) == moved


async def test_a_processed_event_is_seen_once_recorded(new_uow: UowFactory) -> None:
    event_id = str(uuid.uuid4())
    async with new_uow() as uow:
        assert not await uow.processed.seen("converter", event_id)
        await uow.processed.record("converter", event_id, outcome="READY", detail=None, at=T)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.processed.seen("converter", event_id)
        assert not await uow.processed.seen("other-consumer", event_id)


async def test_deleting_an_image_removes_its_storage_row(new_uow: UowFactory) -> None:
    img = image()
    await add(new_uow, img)
    async with new_uow() as uow:
        await uow.images.delete(img.image_id)
        await uow.commit()
    async with new_uow() as uow:
        assert (await uow.images.get(img.image_id), await uow.images.storage(img.image_id)) == (None, None)

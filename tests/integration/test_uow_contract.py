"""One contract, two implementations: FakeUnitOfWork (unit tests) and MariaDbUnitOfWork (production)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiomysql
import pymysql
import pytest

from adapters.db.group_commit import GroupCommit, GroupedUnitOfWork
from adapters.db.mariadb import MariaDbUnitOfWork
from core.events import images_deleted
from core.images import Image, ImageStatus, StatusChange
from core.ports import SequenceEntry, StorageRecord, UnitOfWork, UploadUnitOfWork
from core.variants import Variant
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


async def test_a_unit_of_work_reads_its_own_writes(new_uow: UowFactory) -> None:
    img = image(status=ImageStatus.TEMP)
    async with new_uow() as uow:
        await uow.images.add(img, storage(img))
        await uow.processed.record("c", img.image_id, outcome="X", detail=None, at=T)
        assert await uow.images.get(img.image_id, for_update=True) == img
        assert await uow.processed.seen("c", img.image_id)
        await uow.commit()


async def test_values_that_look_like_sql_are_stored_as_written(new_uow: UowFactory) -> None:
    # Writes are rendered by the driver's escaping and sent as one multi-statement query.
    tricky = "o'brien \\ %s %(x)s \"; DELETE FROM images; -- 한글 😀"
    img = Image(str(uuid.uuid4()), ImageStatus.READY, "POST", "http://x/a.webp", tricky, T, T, None)
    await add(new_uow, img)
    async with new_uow() as uow:
        assert await uow.images.get(img.image_id) == img


async def test_a_failing_write_fails_the_commit_and_nothing_of_the_unit_stays(pool: aiomysql.Pool) -> None:
    first, second = image(), image()
    await add(lambda: MariaDbUnitOfWork(pool), first)
    async with MariaDbUnitOfWork(pool) as uow:
        await uow.images.add(second, storage(second))
        await uow.images.add(first, storage(first))  # duplicate key: queued, fails with the commit
        await uow.processed.record("c", second.image_id, outcome="X", detail=None, at=T)
        with pytest.raises(pymysql.err.IntegrityError):
            await uow.commit()
    for _ in range(3):  # every pooled connection is clean afterwards
        async with MariaDbUnitOfWork(pool) as uow:
            assert await uow.images.get(second.image_id) is None
            assert not await uow.processed.seen("c", second.image_id)
            assert await uow.images.get(first.image_id) == first


async def test_a_commit_whose_connection_died_is_in_doubt(pool: aiomysql.Pool) -> None:
    img = image()
    uow = MariaDbUnitOfWork(pool)
    async with uow:
        await uow.images.add(img, storage(img))
        assert await uow.images.get(img.image_id) == img  # the unit's connection is in use
        victim = uow._conn.thread_id()  # type: ignore[union-attr]
        async with pool.acquire() as other, other.cursor() as cur:
            await cur.execute("KILL CONNECTION %s", (victim,))
            deadline = asyncio.get_running_loop().time() + 10
            while True:  # KILL only marks the session: wait until the server has dropped it
                await cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (victim,))
                if (await cur.fetchone())[0] == 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, "the killed session stayed"
                await asyncio.sleep(0.01)
        with pytest.raises(pymysql.err.OperationalError):
            await uow.commit()
        assert uow.commit_in_doubt


async def test_a_commit_the_server_refused_is_not_in_doubt(pool: aiomysql.Pool) -> None:
    img = image()
    await add(lambda: MariaDbUnitOfWork(pool), img)
    uow = MariaDbUnitOfWork(pool)
    async with uow:
        await uow.images.add(img, storage(img))  # duplicate key
        with pytest.raises(pymysql.err.IntegrityError):
            await uow.commit()
        assert not uow.commit_in_doubt


# The write-only contract (UploadUnitOfWork) an upload relies on, on the three implementations an
# upload can be given: the fake, a plain MariaDB transaction (a worker's upload commands), and the
# api's group commit.
WriteOnly = tuple[Callable[[], UploadUnitOfWork], UowFactory]  # (writer, reader of what committed)


@pytest.fixture(params=["fake", "mariadb", "grouped"])
def write_only(request: pytest.FixtureRequest) -> WriteOnly:
    if request.param == "fake":
        fake = FakeUnitOfWork()
        return (lambda: fake), (lambda: fake)
    pool: aiomysql.Pool = request.getfixturevalue("pool")
    if request.param == "mariadb":
        return (lambda: MariaDbUnitOfWork(pool)), (lambda: MariaDbUnitOfWork(pool))
    group = GroupCommit(pool)
    return (lambda: GroupedUnitOfWork(group)), (lambda: MariaDbUnitOfWork(pool))


async def write_upload(uow: UploadUnitOfWork, img: Image, *, commit: bool = True) -> None:
    async with uow:
        await uow.images.add(img, storage(img))
        await uow.images.add_history(StatusChange(img.image_id, None, img.status, T, "u", "uploaded"))
        await uow.images.add_variants(img.image_id, [Variant(1, 1, f"POST/{img.image_id}_1w.webp", "u", 3)])
        await uow.outbox.add(
            images_deleted(event_id=str(uuid.uuid4()), at=T, reference_type="POST", reference_id=img.image_id)
        )
        if commit:
            await uow.commit()


async def test_a_write_only_unit_commits_all_it_wrote(write_only: WriteOnly) -> None:
    writer, reader = write_only
    img = image(status=ImageStatus.TEMP)
    await write_upload(writer(), img)
    async with reader() as uow:
        assert await uow.images.get(img.image_id) == img
        sizes = (await uow.images.sizes_of([img.image_id]))[img.image_id]
        assert (sizes.width, sizes.height, [v.width for v in sizes.variants]) == (2, 3, [1])


async def test_a_write_only_unit_left_without_commit_writes_nothing(write_only: WriteOnly) -> None:
    writer, reader = write_only
    img = image(status=ImageStatus.TEMP)
    await write_upload(writer(), img, commit=False)
    async with reader() as uow:
        assert await uow.images.get(img.image_id) is None


async def test_a_write_only_unit_the_database_refuses_fails_whole_and_surely(write_only: WriteOnly) -> None:
    writer, reader = write_only
    taken = image(status=ImageStatus.TEMP)
    await write_upload(writer(), taken)
    again = writer()
    with pytest.raises((pymysql.err.IntegrityError, KeyError)):  # the image's primary key
        await write_upload(again, taken)
    assert not again.commit_in_doubt
    async with reader() as uow:
        assert len((await uow.images.sizes_of([taken.image_id]))[taken.image_id].variants) == 1

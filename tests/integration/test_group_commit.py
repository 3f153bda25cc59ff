"""Uploads' transactions committed together (GroupCommit) against the real MariaDB."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aiomysql
import pymysql
import pytest

from adapters.db.group_commit import GroupCommit, GroupedUnitOfWork
from adapters.db.statements import Write
from core import upload_rules
from core.images import Image, ImageStatus, created
from core.services import record_uploads
from tests import services

T = datetime(2025, 1, 20, 10, 0, tzinfo=UTC)


class CountingGroupCommit(GroupCommit):
    """The real GroupCommit, counting the transactions it sends; `hold()` keeps the next one back."""

    def __init__(self, pool: aiomysql.Pool, **kwargs: Any) -> None:
        super().__init__(pool, **kwargs)
        self.sent: list[int] = []
        self._gate: asyncio.Event | None = None
        self.holding = asyncio.Event()  # set once the held transaction waits at the gate

    def hold(self) -> asyncio.Event:
        """Hold the next transaction before it is sent, until the returned event is set."""
        self._gate = asyncio.Event()
        self.holding.clear()
        return self._gate

    @property
    def waiting(self) -> int:
        """Units queued for the next group (not yet taken)."""
        return self._batcher.waiting

    async def _send(self, writes: list[Write], *, merge: bool) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            self.holding.set()
            await gate.wait()
        self.sent.append(len(writes))
        await super()._send(writes, merge=merge)


async def queued(group: CountingGroupCommit, units: int) -> None:
    await services.eventually(lambda: group.waiting == units, timeout_s=10, what=f"{units} units queued")


def original(image_id: str | None = None) -> upload_rules.StoredOriginal:
    image_id = image_id or str(uuid.uuid4())
    return upload_rules.StoredOriginal(
        image_id=image_id,
        reference_type="POST",
        uploader_id="u",
        origin_key=f"POST/2025/01/20/{image_id}.jpg",
        origin_format="jpg",
        origin_size=10,
        width=2,
        height=3,
    )


async def upload(group: GroupCommit, *originals: upload_rules.StoredOriginal) -> GroupedUnitOfWork | list[Image]:
    uow = GroupedUnitOfWork(group)
    try:
        return await record_uploads(uow, originals, base_url="http://x", now=T, new_id=lambda: str(uuid.uuid4()))
    except pymysql.err.MySQLError:
        return uow


async def rows(pool: aiomysql.Pool, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return list(await cur.fetchall())


async def test_units_that_arrive_together_commit_as_one_transaction(pool: aiomysql.Pool) -> None:
    group = CountingGroupCommit(pool, in_flight=1)
    gate = group.hold()
    first = asyncio.create_task(upload(group, original()))
    await asyncio.wait_for(group.holding.wait(), 10)
    later = [original() for _ in range(10)]
    rest = [asyncio.create_task(upload(group, o)) for o in later]
    await queued(group, 10)  # the first unit is held on its way; the next ten wait behind it
    gate.set()
    results = await asyncio.gather(first, *rest)
    assert all(isinstance(r, list) for r in results)
    assert group.sent == [4, 40]  # images, storage, history and outbox rows of 1, then of 10
    ids = [o.image_id for o in later]
    marks = ", ".join(["%s"] * len(ids))
    assert len(await rows(pool, f"SELECT 1 FROM images WHERE image_id IN ({marks})", *ids)) == 10
    assert len(await rows(pool, f"SELECT 1 FROM storage_objects WHERE image_id IN ({marks})", *ids)) == 10
    assert len(await rows(pool, f"SELECT 1 FROM status_history WHERE image_id IN ({marks})", *ids)) == 10
    outbox = await rows(pool, f"SELECT message_key FROM outbox WHERE message_key IN ({marks}) ORDER BY id", *ids)
    assert [r[0] for r in outbox] == ids  # the outbox keeps the order in which units committed


async def test_a_unit_the_server_refuses_fails_alone(pool: aiomysql.Pool) -> None:
    taken = original()
    group = CountingGroupCommit(pool, in_flight=1)
    assert isinstance(await upload(group, taken), list)
    gate = group.hold()
    blocker = asyncio.create_task(upload(group, original()))
    await asyncio.wait_for(group.holding.wait(), 10)
    good_before, good_after = original(), original()
    rest = [asyncio.create_task(upload(group, o)) for o in (good_before, original(taken.image_id), good_after)]
    await queued(group, 3)
    gate.set()
    results = await asyncio.gather(blocker, *rest)
    refused = results[2]
    assert isinstance(refused, GroupedUnitOfWork) and not refused.commit_in_doubt
    assert all(isinstance(results[n], list) for n in (0, 1, 3))
    # the group of three was refused, then each of its units tried alone
    assert group.sent == [4, 4, 12, 4, 4, 4]
    for o in (good_before, good_after):
        assert await rows(pool, "SELECT status FROM images WHERE image_id = %s", o.image_id) == [("TEMP",)]
    assert len(await rows(pool, "SELECT 1 FROM outbox WHERE message_key = %s", taken.image_id)) == 1


async def test_a_grouped_unit_cannot_read(pool: aiomysql.Pool) -> None:
    async with GroupedUnitOfWork(GroupCommit(pool)) as uow:
        with pytest.raises(TypeError):
            await uow.images.get(str(uuid.uuid4()))


async def test_leaving_without_commit_sends_nothing(pool: aiomysql.Pool) -> None:
    group = CountingGroupCommit(pool)
    image = upload_rules.new_image(original(), base_url="http://x", at=T, status=ImageStatus.TEMP)
    async with GroupedUnitOfWork(group) as uow:
        await uow.images.add_history(created(image, by="u"))
    assert group.sent == []
    assert await rows(pool, "SELECT 1 FROM status_history WHERE image_id = %s", image.image_id) == []

"""The api's file-writing helper process: files made, errors carried back, death and restart, stopping."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.files.directory import Directory, GroupWriter
from adapters.files.spool import spool_dir
from adapters.files.writer_process import FileWriterProcess
from tests import services


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[FileWriterProcess]:
    process = FileWriterProcess(tmp_path, threads=2)
    await process.start()
    yield process
    await process.close()


async def test_files_are_made_whole_by_concurrent_batches(writer: FileWriterProcess, tmp_path: Path) -> None:
    batches = [[(f"A/{b}-{n}.jpg", os.urandom(70_000 + n)) for n in range(5)] for b in range(6)]
    outcomes = await asyncio.gather(*(writer.create_many(batch) for batch in batches))
    assert outcomes == [[None] * 5] * 6
    store = Directory(tmp_path)
    assert all(store.read(key) == data for batch in batches for key, data in batch)
    assert spooled(tmp_path) == []


async def test_each_file_gets_its_own_error_back(writer: FileWriterProcess, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    outcome = await writer.create_many([("ok/a.jpg", b"a"), ("blocked/b.jpg", b"b"), ("../c.jpg", b"c")])
    assert outcome[0] is None
    assert isinstance(outcome[1], FileExistsError) and outcome[1].errno == errno.EEXIST  # mkdir of "blocked"
    assert isinstance(outcome[2], ValueError) and "leaves the storage root" in str(outcome[2])
    assert Directory(tmp_path).read("ok/a.jpg") == b"a"
    assert spooled(tmp_path) == []  # the refused files' bytes are not left in the spool


def spooled(root: Path) -> list[Path]:
    """What is left in the spool directory the api writes files to before the helper moves them."""
    return [p for p in spool_dir(root).rglob("*") if p.is_file()]


async def test_a_batch_the_helper_never_answered_fails_and_the_next_starts_a_new_helper(
    writer: FileWriterProcess, tmp_path: Path
) -> None:
    first = writer.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # the batch reaches its pipe and is never read
    held = asyncio.create_task(writer.create_many([("A/held.jpg", b"x")]))
    await services.eventually(lambda: spooled(tmp_path), timeout_s=10, what="the batch spilled and handed over")
    assert not held.done()
    os.kill(first, signal.SIGKILL)
    with pytest.raises(OSError) as failed:
        await asyncio.wait_for(held, 10)
    assert failed.value.errno == errno.EIO
    assert spooled(tmp_path) == []  # the file never moved into place is not left behind
    assert await writer.create_many([("A/after.jpg", b"y")]) == [None]
    assert writer.pid not in (None, first)
    assert Directory(tmp_path).read("A/after.jpg") == b"y"
    assert not Directory(tmp_path).exists("A/held.jpg")


async def test_the_helper_ignores_signals_and_stops_when_closed_after_its_batches(tmp_path: Path) -> None:
    writer = FileWriterProcess(tmp_path)
    await writer.start()
    pid = writer.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)  # Ctrl-C or a stop signal to the group: the api decides when
    os.kill(pid, signal.SIGINT)
    batch = asyncio.create_task(writer.create_many([(f"B/{n}.jpg", b"%d" % n) for n in range(20)]))
    assert await batch == [None] * 20
    await writer.close()
    assert writer.pid is None
    await services.eventually(lambda: not Path(f"/proc/{pid}").exists(), timeout_s=10, what="the helper to exit")


async def test_a_group_writer_with_the_helper_as_backend(writer: FileWriterProcess, tmp_path: Path) -> None:
    group = GroupWriter(Directory(tmp_path), backend=writer.create_many)
    created: list[str] = []
    await asyncio.gather(*(group.create([(f"C/{n}.jpg", b"%d" % n)], created) for n in range(12)))
    assert sorted(created) == sorted(f"C/{n}.jpg" for n in range(12))
    (tmp_path / "blocked").write_bytes(b"")
    failed: list[str] = []
    with pytest.raises(FileExistsError):
        await group.create([("C/ok.jpg", b"ok"), ("blocked/x.jpg", b"x")], failed)
    assert failed == ["C/ok.jpg"]  # made, so the caller's clean-up can remove it

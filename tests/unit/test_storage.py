from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.files.directory import Directory, GroupWriter


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "", "a/./../b"])
def test_keys_that_could_leave_the_root_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        Directory(tmp_path).path(key)


def test_write_is_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = Directory(tmp_path)
    assert store.write("A/2025/01/20/x.webp", b"data") == 4
    assert store.read("A/2025/01/20/x.webp") == b"data"
    assert [p.name for p in (tmp_path / "A/2025/01/20").iterdir()] == ["x.webp"]


class CountingStore(Directory):
    """A real store that counts its batches and can hold one on its thread."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def create_many(self, files: Sequence[tuple[str, bytes]]) -> list[BaseException | None]:
        self.entered.set()
        self.release.wait(10)
        self.batches.append([key for key, _ in files])
        return super().create_many(files)


async def test_writes_that_arrive_together_share_a_batch(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    writer = GroupWriter(store, in_flight=1)
    store.release.clear()  # hold the first batch so that the others queue up behind it
    created: list[str] = []
    first = asyncio.create_task(writer.create([("A/0.jpg", b"0")], created))
    assert await asyncio.to_thread(store.entered.wait, 10)
    rest = [asyncio.create_task(writer.create([(f"A/{n}.jpg", b"%d" % n)], created)) for n in range(1, 10)]
    await asyncio.sleep(0)
    store.release.set()
    await asyncio.gather(first, *rest)
    assert store.batches == [["A/0.jpg"], [f"A/{n}.jpg" for n in range(1, 10)]]
    assert sorted(created) == sorted(f"A/{n}.jpg" for n in range(10))
    assert all(store.read(f"A/{n}.jpg") == b"%d" % n for n in range(10))


async def test_a_file_that_fails_fails_only_its_caller(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    writer = GroupWriter(Directory(tmp_path))
    good: list[str] = []
    bad: list[str] = []
    results = await asyncio.gather(
        writer.create([("ok/a.jpg", b"a")], good),
        writer.create([("ok/b.jpg", b"b"), ("blocked/c.jpg", b"c")], bad),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], OSError)
    assert good == ["ok/a.jpg"]
    assert bad == ["ok/b.jpg"]  # made, so the caller's clean-up can remove it
    assert Directory(tmp_path).read("ok/b.jpg") == b"b"


async def test_a_cancelled_caller_still_learns_which_files_were_made(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    store.release.clear()
    writer = GroupWriter(store)
    created: list[str] = []
    task = asyncio.create_task(writer.create([("A/x.jpg", b"x")], created))
    assert await asyncio.to_thread(store.entered.wait, 10)
    task.cancel()
    await asyncio.sleep(0.01)
    assert not task.done()  # it waits for the file rather than leave it unaccounted for
    store.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert created == ["A/x.jpg"] and store.exists("A/x.jpg")


def test_create_many_rewrites_a_key_left_by_an_earlier_try(tmp_path: Path) -> None:
    store = Directory(tmp_path)
    assert store.create_many([("A/x.jpg", b"torn")]) == [None]
    assert store.create_many([("A/x.jpg", b"whole")]) == [None]
    assert store.read("A/x.jpg") == b"whole"


async def test_a_batch_holds_at_most_max_batch_files(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    writer = GroupWriter(store, max_batch_files=4, in_flight=1)
    store.release.clear()
    created: list[str] = []
    first = asyncio.create_task(writer.create([("A/0.jpg", b"0")], created))
    assert await asyncio.to_thread(store.entered.wait, 10)
    rest = writer.create([(f"A/{n}.jpg", b"%d" % n) for n in range(1, 10)], created)
    store.release.set()
    await asyncio.gather(first, rest)
    assert [len(batch) for batch in store.batches] == [1, 4, 4, 1]
    assert all(store.read(f"A/{n}.jpg") == b"%d" % n for n in range(10))


def test_every_file_of_a_batch_is_whole_when_one_in_the_middle_fails(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    store = Directory(tmp_path)
    outcome = store.create_many([("A/a.jpg", b"a" * 70_000), ("blocked/b.jpg", b"b"), ("A/c.jpg", b"c" * 70_000)])
    assert outcome[0] is None and isinstance(outcome[1], OSError) and outcome[2] is None
    assert store.read("A/a.jpg") == b"a" * 70_000 and store.read("A/c.jpg") == b"c" * 70_000

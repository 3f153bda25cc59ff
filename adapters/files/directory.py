"""Files under one directory of this host. Keys are relative paths (`PRODUCT/2025/01/20/<uuid>.webp`).

`write` goes to a temporary file in the target directory, is fsync'd, then renamed into place,
and the directory is fsync'd: a key either holds the whole file or does not exist. Uploads'
originals use `create_many` through a `GroupWriter` instead: nothing reads those keys before the
upload's transaction commits, so a torn file is only ever an orphan for the sweep, and the rename
buys nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import structlog

from adapters.batching import Batcher
from adapters.files import fsync as durable
from core import errors
from core.ports import Content, Spooled

TMP_SUFFIX = ".part"
log = structlog.get_logger("storage")


class Directory:
    """Files under one root; blocking calls: run them in a thread from async code."""

    def __init__(self, root: str | Path, *, durable: bool = True) -> None:
        """`durable=False`: scratch space (a conversion's workspace on S3), where `write` skips the
        fsyncs and the rename, since nothing reads a scratch file after a crash."""
        self.root = Path(root).resolve()
        self.durable = durable
        self._made_dirs: set[Path] = set()

    def path(self, key: str) -> Path:
        """Return the absolute path of a key; refuse keys that could leave the root.

        A lexical check (no `..`, not absolute) instead of resolve(): keys are ours, and this sits
        on the upload path, where resolve()'s lstat of every component showed in profiles.
        """
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise ValueError(f"storage key {key!r} leaves the storage root")
        return self.root.joinpath(*parts)

    def write(self, key: str, data: bytes | memoryview) -> int:
        """Write a whole file durably and atomically; return its size."""
        target = self.path(key)
        self._make_parent(target)
        if not self.durable:
            target.write_bytes(data)
            return len(data)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
        durable.write_fsynced(tmp, data, os.O_EXCL)
        os.replace(tmp, target)
        durable.fsync_dir(target.parent)
        return len(data)

    def create_many(self, files: Sequence[tuple[str, Content]]) -> list[BaseException | None]:
        """Create new files durably, fsyncing each directory once; return each file's error.

        For keys nothing reads until a later commit makes them known (uploads): each file is
        written at its key and fsync'd, with no temporary name and rename, since a torn file left
        by a crash has no row and the orphan sweep removes it. (An upload command delivered again
        after an uncommitted try rewrites its own key.) Every file is written and its write-back
        started before the first fsync (`durable`). A file that failed is removed; a failed
        directory fsync fails every file of that directory.
        """
        outcome: list[BaseException | None] = [None] * len(files)
        directories: dict[Path, list[int]] = {}
        started: list[tuple[int, Path, int]] = []
        try:
            for n, (key, data) in enumerate(files):
                try:
                    target = self.path(key)
                    self._make_parent(target)
                    if isinstance(data, Spooled):  # written as it arrived: moved here, then made durable
                        started.append((n, target, durable.adopt(Path(data.path), target)))
                    else:
                        started.append((n, target, durable.write_started(target, data, os.O_TRUNC)))
                except Exception as exc:  # handed back to that file's caller
                    outcome[n] = exc
        finally:
            for n, target, fd in started:  # fsync'd (or closed) even if the first pass broke off
                try:
                    durable.finish(target, fd)
                except Exception as exc:
                    outcome[n] = exc
                    continue
                directories.setdefault(target.parent, []).append(n)
        for directory, members in directories.items():
            try:
                durable.fsync_dir(directory)
            except OSError as exc:
                for n in members:
                    outcome[n] = exc
                    self.remove(files[n][0])
        return outcome

    def _make_parent(self, target: Path) -> None:
        if target.parent not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(target.parent)

    def read(self, key: str) -> bytes:
        """Return a file's bytes."""
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """Tell whether a key holds a file."""
        return self.path(key).is_file()

    def remove(self, key: str) -> bool:
        """Remove a file if it is there; return whether it was."""
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def walk(self, *, older_than_s: float) -> Iterator[str]:
        """Yield the keys of files last modified more than `older_than_s` ago."""
        cutoff = time.time() - older_than_s
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = Path(dirpath) / name
                try:
                    if full.stat().st_mtime < cutoff:
                        yield full.relative_to(self.root).as_posix()
                except FileNotFoundError:
                    continue


class GroupWriter:
    """Durable creation of new files from async code, with group commit.

    The files asked for while one batch is being made durable go together in the next: one call
    (on a worker thread, or in the api's helper process) writes and fsyncs them all, then fsyncs
    each of their directories once. Per file that is one hand-off less, one directory fsync less
    and no rename, which was most of an upload's durable-write cost (bench/NOTES.md). Nothing
    touches the disk on the event loop:
    with fsyncs in flight even a page-cache write can wait on the file system's journal, and the
    loop must not. A lone file goes at once: nothing waits for company.
    """

    def __init__(
        self,
        store: Directory,
        *,
        backend: Callable[[list[tuple[str, Content]]], Awaitable[list[BaseException | None]]] | None = None,
        max_batch_bytes: int = 1024 * 1024,
        max_batch_files: int = 64,
        in_flight: int = 4,
    ) -> None:
        """`backend` makes a batch's files (Directory.create_many's contract, awaited); by default
        `store.create_many` on a worker thread. The api gives its helper process's (file_writer)."""
        self.store = store
        self._backend = backend
        self._max_batch_bytes = max_batch_bytes
        self._max_batch_files = max_batch_files  # each is an open descriptor until its fsync
        self._batcher: Batcher[tuple[str, Content]] = Batcher(
            self._write_batch, take=self._batch_size, in_flight=in_flight
        )

    async def create(self, files: Sequence[tuple[str, Content]], created: list[str]) -> None:
        """Create these files durably; add each key created to `created`; raise the first failure.

        Returns, raises or is cancelled only once every file is either created or failed, so
        that `created` is complete when the caller cleans up.
        """
        waits = self._batcher.submit(list(files))
        try:
            await asyncio.wait(waits)  # waits without cancelling them, even when cancelled itself
        finally:
            if not all(done.done() for done in waits):  # cancelled: the files are being written anyway
                with contextlib.suppress(BaseException):
                    await asyncio.wait(waits)
            created.extend(key for (key, _), done in zip(files, waits, strict=True) if _succeeded(done))
        for done in waits:
            if done.cancelled():  # only when the loop shuts down under the drainer
                raise asyncio.CancelledError
            if (error := done.exception()) is not None:
                # The disk (or the api's file writer) failed: the upload will answer IMAGE_SAVE_FAILED,
                # or 503 when the disk is full (a state health shows, not a fault of this upload).
                if errors.is_disk_full(error):
                    log.warning("store_full", error=str(error), root=str(self.store.root))
                else:
                    log.error("upload_save_failed", error=str(error), errno=getattr(error, "errno", None))
                raise error

    async def remove(self, key: str) -> bool:
        """Remove a file if it is there; return whether it was."""
        return await asyncio.to_thread(self.store.remove, key)

    async def keep_in_doubt(self, keys: Sequence[str]) -> None:
        """Leave files whose rows may have committed; if no row names them, the orphan sweep removes them."""
        log.error("upload_commit_in_doubt", kept=list(keys))

    def _batch_size(self, queue: Sequence[tuple[tuple[str, Content], asyncio.Future[None]]]) -> int:
        """How many of the queue's first files go together: up to max_batch_bytes and max_batch_files.

        A batch's files are written one after the other, so large files go alone or in small
        batches and several batches run at once: batching saves per-file overhead, which only
        matters for small files.
        """
        size = 0
        for n, ((_, data), _) in enumerate(queue):
            size += data.size if isinstance(data, Spooled) else len(data)
            if n and (size > self._max_batch_bytes or n == self._max_batch_files):
                return n
        return len(queue)

    async def _write_batch(self, batch: list[tuple[tuple[str, Content], asyncio.Future[None]]]) -> None:
        files = [payload for payload, _ in batch]
        on_disk: asyncio.Future[list[BaseException | None]] = (
            asyncio.get_running_loop().run_in_executor(None, self.store.create_many, files)
            if self._backend is None
            else asyncio.ensure_future(self._backend(files))
        )
        try:
            await asyncio.wait([on_disk])  # raises only if this task is cancelled
        except asyncio.CancelledError:  # the loop is shutting down
            # Let the batch finish and report what it made, so that every caller's clean-up
            # knows its files; what is still queued is never written (the Batcher cancels it).
            await asyncio.wait([on_disk])
            _resolve(batch, on_disk)
            raise
        _resolve(batch, on_disk)


def _resolve(
    batch: list[tuple[tuple[str, Content], asyncio.Future[None]]], on_disk: asyncio.Future[list[BaseException | None]]
) -> None:
    """Resolve each file's future from the thread's per-file outcome (or its own failure)."""
    if on_disk.cancelled():
        for _, done in batch:
            done.cancel()
        return
    # If the hand-off itself failed, so did every file of the batch.
    failed = on_disk.exception()
    outcome: list[BaseException | None] = [failed] * len(batch) if failed is not None else on_disk.result()
    for (_, done), error in zip(batch, outcome, strict=True):
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def _succeeded(done: asyncio.Future[None]) -> bool:
    return done.done() and not done.cancelled() and done.exception() is None

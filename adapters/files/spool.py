"""An upload's large parts, spooled to this host's disk as they arrive instead of held (issue 26).

A request keeps its parts in memory while they total at most SPOOL_AFTER (2 MiB: every small
upload, and the ingest path it is measured on, is unchanged); a part that would take it past
that is written to a file here as it arrives, 256 KiB at a time on a thread, hashed on the way
(sha256: the Idempotency-Key fingerprint of a spooled part). Memory per request is then about
SPOOL_AFTER and the chunk being read, whatever its size.

Where: under the storage's own local directory, `_originals/_incoming/`: on a directory that is
the storage's disk, so storing the part is a rename (Directory.create_many), and `_originals/` is
never served; on S3 it is this process's scratch space, and the PUT reads it back. What a request
spooled and did not hand over is removed when it ends; a crash's leftovers are swept as orphans
(directory) or with the stale scratch directories (S3).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from adapters.files import fsync as durable
from core.ports import Spooled

SPOOL_AFTER = 2 * 1024 * 1024
INCOMING = Path("_originals") / "_incoming"


def spool_dir(local_dir: Path) -> Path:
    """Where a process spools uploads: the storage's disk (file://) or its scratch (s3://)."""
    return local_dir / INCOMING


class SpoolFile:
    """One part being written to disk as it arrives."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path, self._file = path, file
        self._hash = hashlib.sha256()
        self.size = 0

    @classmethod
    async def create(cls, directory: Path) -> SpoolFile:
        def make() -> SpoolFile:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{uuid.uuid4().hex}.part"
            return cls(path, path.open("xb"))

        return await asyncio.to_thread(make)

    async def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        await asyncio.to_thread(self._write, chunk)

    def _write(self, chunk: bytes | memoryview) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)

    async def close(self) -> Spooled:
        """The part, complete: its path, size and digest (not yet durable: storing it fsyncs it)."""
        await asyncio.to_thread(self._file.close)
        return Spooled(str(self.path), self.size, self._hash.hexdigest())

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def spill(directory: Path, data: bytes) -> str:
    """Write a held part to a new file in `directory` at once, on the caller's thread; return its path.

    One copy into the page cache, no fsync (whoever stores it makes it durable): the file writer's
    way of handing bytes to its helper process (writer_process.py). A failed write leaves nothing.
    """
    path = directory / f"{uuid.uuid4().hex}.part"
    flags = os.O_EXCL | os.O_CLOEXEC
    try:
        fd = durable.written(path, data, flags)
    except FileNotFoundError:  # the first spill, or the directory was removed under us
        directory.mkdir(parents=True, exist_ok=True)
        fd = durable.written(path, data, flags)
    os.close(fd)
    return str(path)


async def remove(paths: Iterable[str]) -> None:
    """Remove spooled files a request left (a stored one was moved away already: nothing to do)."""
    left = list(paths)
    if left:
        await asyncio.to_thread(_unlink_all, left)


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

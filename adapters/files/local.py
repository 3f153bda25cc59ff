"""The storage of a `file://` URL: image files under one directory of this host (core/ports.Storage).

Conversions work in the storage's own directory: the original is already there, and the codec
writes each result atomically (temporary name, fsync, rename) at its final key, so a reader never
sees part of a file and there is nothing to copy afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.files.directory import Directory, GroupWriter
from core.ports import Content, Conversion
from core.storage import PROBE_PREFIX

LIST_BATCH = 200
Backend = Callable[[list[tuple[str, Content]]], Awaitable[list[BaseException | None]]]


class LocalWorkspace:
    """A conversion's files on the disk they are served from: nothing to fetch or publish."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.durable = True  # results are written where they are served: fsync'd, renamed into place

    async def fetch(self, key: str) -> None:
        """The original is already under the root (a missing one fails the conversion as missing)."""

    async def publish(self, conversion: Conversion) -> None:
        """The codec wrote the results at their keys, atomically: they are served already."""


class LocalStorage:
    """Image files under one directory: Directory for reads and removals, a GroupWriter for uploads."""

    def __init__(self, root: str | Path, *, backend: Backend | None = None) -> None:
        """`backend` makes uploads' batches durable (the api's file-writer process); default: threads."""
        Path(root).mkdir(parents=True, exist_ok=True)
        self.files = Directory(root)
        self.blobs = GroupWriter(self.files, backend=backend)
        self.name = f"file://{self.files.root}"
        self.local_dir = self.files.root

    async def exists(self, key: str) -> bool:
        """Tell whether a key holds a file."""
        return await asyncio.to_thread(self.files.exists, key)

    async def remove(self, key: str) -> bool:
        """Remove a file if it is there; return whether it was."""
        return await asyncio.to_thread(self.files.remove, key)

    async def older_than(self, seconds: float) -> AsyncIterator[list[str]]:
        """Yield, in batches, the keys of files last modified more than `seconds` ago (walked on a thread)."""
        walk = self.files.walk(older_than_s=seconds)
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(walk, LIST_BATCH))):
            yield batch

    @asynccontextmanager
    async def workspace(self) -> AsyncIterator[LocalWorkspace]:
        """The directory a conversion reads its original from and writes its results to: the storage's."""
        yield LocalWorkspace(self.files.root)

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """Write, fsync and remove a probe file under the root (the health check's `fileSystem`)."""
        return await asyncio.to_thread(probe_directory, self.files.root)


def probe_directory(base_dir: Path) -> tuple[bool, dict[str, Any]]:
    """Write, fsync and remove a probe file under `base_dir`; return (writable, details)."""
    details: dict[str, Any] = {"baseDir": str(base_dir)}
    probe = base_dir / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
        return True, details | {"writable": True}
    except OSError as exc:
        return False, details | {"writable": False, "error": f"{type(exc).__name__}: {exc}"}

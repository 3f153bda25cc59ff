"""The storage of an `s3://` URL: image files as objects in a bucket (core/ports.Storage).

Conversions run in a process that reads and writes local files (adapters/images/codec.py), so on
S3 each conversion gets a workspace: a fresh directory under this process's scratch space. The
original is downloaded into it (never more than the upload limit), the codec writes its results
there, and `publish` PUTs each result with its Content-Type and the immutable Cache-Control,
variants first and the full size last, before the caller commits READY. The directory is removed
when the conversion is done, whatever happened: scratch space holds only conversions in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from adapters.files.directory import Directory
from adapters.s3.bucket import S3Bucket
from core.ports import Conversion, StoreUnavailable
from core.upload_rules import content_type

log = structlog.get_logger("s3")

WORKSPACE_PREFIX = "convert-"


class S3Workspace:
    """One conversion's directory: the original fetched into it, its results published from it."""

    def __init__(self, store: S3Bucket, root: Path, max_original_bytes: int) -> None:
        self._store = store
        self._files = Directory(root, durable=False)  # scratch: nobody reads it after a crash
        self._max_bytes = max_original_bytes
        self.root = str(root)
        self.durable = False

    async def fetch(self, key: str) -> None:
        """Download the original to `root/key`; FileNotFoundError when the bucket has none."""
        data = await self._store.read(key, max_bytes=self._max_bytes)
        await asyncio.to_thread(self._files.write, key, data)

    async def publish(self, conversion: Conversion) -> None:
        """PUT the conversion's files; on failure remove those already put, then raise."""
        if conversion.key is None:
            return
        keys = [*(v.key for v in conversion.variants), conversion.key]
        put: list[str] = []
        try:
            for key in keys:
                data = await asyncio.to_thread(self._files.read, key)
                await self._store.write(key, data, content_type=content_type(key))
                put.append(key)
        except BaseException:
            for key in put:  # no row will name them; if this fails too, the orphan sweep will
                with contextlib.suppress(OSError, StoreUnavailable):
                    await self._store.remove(key)
            raise


class S3Storage:
    """Image files as objects under the bucket's prefix, and this process's scratch space for conversions."""

    def __init__(
        self, store: S3Bucket, scratch_dir: str | Path, *, max_original_bytes: int, stale_after_s: float
    ) -> None:
        """`stale_after_s`: a workspace untouched this long belongs to a process that died; it is removed."""
        self.store = self.blobs = store
        self.name = f"s3://{store.bucket}/{store.prefix}"
        self._max_bytes = max_original_bytes
        # One directory per host and process: processes that share a scratch disk never meet.
        self.local_dir = Path(scratch_dir).resolve() / f"{socket.gethostname()}-{os.getpid()}"
        self.local_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.local_dir.parent, older_than_s=stale_after_s)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        return await self.store.exists(key)

    async def remove(self, key: str) -> bool:
        """Delete an object if it is there; return whether it was."""
        return await self.store.remove(key)

    def older_than(self, seconds: float) -> AsyncIterator[list[str]]:
        """Yield, in batches, the keys of objects last modified more than `seconds` ago."""
        return self.store.older_than(seconds)

    @asynccontextmanager
    async def workspace(self) -> AsyncIterator[S3Workspace]:
        """A fresh scratch directory for one conversion, removed afterwards."""
        root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=WORKSPACE_PREFIX, dir=self.local_dir))
        try:
            yield S3Workspace(self.store, root, self._max_bytes)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """Write and delete a probe object (the health check's `fileSystem`: here, the bucket)."""
        details: dict[str, Any] = {"store": self.name}
        try:
            await self.store.probe()
        except (OSError, StoreUnavailable) as exc:
            return False, details | {"writable": False, "error": f"{type(exc).__name__}: {exc}"}
        return True, details | {"writable": True}

    def close(self) -> None:
        """Remove this process's scratch directory (the process is stopping)."""
        shutil.rmtree(self.local_dir, ignore_errors=True)


def _remove_stale(scratch: Path, *, older_than_s: float) -> None:
    """Remove what processes killed mid-conversion left: workspaces untouched for `older_than_s`."""
    cutoff = time.time() - older_than_s
    for workspace in scratch.glob(f"*/{WORKSPACE_PREFIX}*"):
        with contextlib.suppress(OSError):
            if workspace.stat().st_mtime < cutoff:
                shutil.rmtree(workspace, ignore_errors=True)
                log.info("scratch_workspace_removed", path=str(workspace))

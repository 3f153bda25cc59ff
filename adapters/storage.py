"""Where image files live, chosen by `IMAGES_STORAGE_URL` (issue 14): the one place storage is opened.

- `file:///dir`: `adapters/files/local.LocalStorage`, one host's disk (the default).
- `s3://bucket/prefix`: `adapters/s3/storage.S3Storage`, any S3-compatible server; every host
  of the fleet reads and writes the same objects, and each process needs only scratch space.

Both keep the same guarantees (CONTRACT 4 and 6): an upload's original is durable before its row
commits (`blobs`, the upload's BlobStore port); a conversion's results are whole before READY
commits (`workspace` ... `publish`); sweeps list what is older than an age and remove by key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from adapters.files.local import Backend, LocalStorage
from adapters.retry import until_available
from adapters.s3.storage import S3Storage
from adapters.s3.store import S3Store
from core.ports import BlobStore, Conversion, StoreUnavailable
from core.settings import Settings

# A conversion workspace untouched this long was left by a process killed mid-conversion.
STALE_WORKSPACE_MIN_S = 3600.0


class Workspace(Protocol):
    """A local directory where one conversion reads its original and writes its results."""

    root: str
    durable: bool  # whether results written under root are already served (the local store)

    async def fetch(self, key: str) -> None:
        """Make the stored `key` readable under root; FileNotFoundError when there is none."""
        ...

    async def publish(self, conversion: Conversion) -> None:
        """Make the conversion's files (written under root) served; raise if they could not be."""
        ...


class Storage(Protocol):
    """Image files: uploads' originals, conversions' results, what the sweeps list and remove."""

    name: str  # `file:///...` or `s3://bucket/prefix`: for logs and the health check
    blobs: BlobStore  # where uploads put their originals
    local_dir: Path  # this process's directory on this host: the store (file://) or its scratch (s3://)

    async def exists(self, key: str) -> bool: ...
    async def remove(self, key: str) -> bool: ...
    def older_than(self, seconds: float) -> AsyncIterator[list[str]]: ...
    def workspace(self) -> AbstractAsyncContextManager[Workspace]: ...
    async def check(self) -> tuple[bool, dict[str, Any]]: ...


def is_unavailable(exc: BaseException) -> bool:
    """Tell whether an error says the object store cannot be reached (an outage to wait out)."""
    return isinstance(exc, StoreUnavailable)


@asynccontextmanager
async def open_storage(settings: Settings, *, backend: Backend | None = None) -> AsyncIterator[Storage]:
    """Open the storage `settings.storage` names, waiting for an object store that does not answer yet.

    `backend`: how a file store makes uploads durable (the api's file-writer process); unused on S3.
    A missing bucket is an error naming it, at once: waiting would not make it appear.
    """
    url = settings.storage
    if url.local:
        yield LocalStorage(url.location, backend=backend)
        return
    async with AsyncExitStack() as stack:

        async def opened() -> S3Store:  # entered anew on each try: a failed try has closed its own client
            return await stack.enter_async_context(
                S3Store.open(url.bucket, url.prefix, path_style=settings.s3_path_style)
            )

        store = await until_available("object-store", opened, retry_on=is_unavailable)
        storage = S3Storage(
            store,
            settings.scratch_dir,
            max_original_bytes=settings.max_file_bytes,
            stale_after_s=max(STALE_WORKSPACE_MIN_S, 10 * settings.convert_timeout_s),
        )
        try:
            yield storage
        finally:
            storage.close()

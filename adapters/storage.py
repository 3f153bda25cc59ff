"""Where image files live, chosen by `IMAGES_STORAGE_URL` (issue 14): the one place storage is opened.

- `file:///dir`: `adapters/files/local.LocalStorage`, one host's disk (the default).
- `s3://bucket/prefix`: `adapters/s3/bucket_storage.S3Storage`, any S3-compatible server; every host
  of the fleet reads and writes the same objects, and each process needs only scratch space.

Both implement `core/ports.Storage`, with the same guarantees (CONTRACT 4 and 6): an upload's
original is durable before its row commits (`blobs`, the upload's OriginalFiles port); a
conversion's results are whole before READY commits (`workspace` ... `publish`); sweeps list what
is older than an age and remove by key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from adapters.files.local import Backend, LocalStorage
from adapters.retry import until_available
from adapters.s3.bucket import S3Bucket
from adapters.s3.bucket_storage import S3Storage
from core.ports import Storage, StoreUnavailable
from core.settings import Settings

# A conversion workspace untouched this long was left by a process killed mid-conversion.
STALE_WORKSPACE_MIN_S = 3600.0


def is_unavailable(exc: BaseException) -> bool:
    """Tell whether an error says the object storage cannot be reached (an outage to wait out)."""
    return isinstance(exc, StoreUnavailable)


@asynccontextmanager
async def open_storage(settings: Settings, *, backend: Backend | None = None) -> AsyncIterator[Storage]:
    """Open the storage `settings.storage` names, waiting for object storage that does not answer yet.

    `backend`: how a directory makes uploads durable (the api's file-writer process); unused on S3.
    A missing bucket is an error naming it, at once: waiting would not make it appear.
    """
    url = settings.storage
    if url.local:
        yield LocalStorage(url.location, backend=backend)
        return
    async with AsyncExitStack() as stack:

        async def opened() -> S3Bucket:  # entered anew on each try: a failed try has closed its own client
            return await stack.enter_async_context(
                S3Bucket.open(url.bucket, url.prefix, path_style=settings.s3_path_style)
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

"""Objects in an S3-compatible bucket, through aiobotocore (issue 14).

aiobotocore is botocore (AWS's own request signing, endpoints and retry rules) on aiohttp, which
the api already runs on: no hand-written SigV4, and no thread per request. Retries are botocore's
"standard" mode: throttling, 5xx and connection errors are retried with jittered exponential
backoff; a 4xx is not. Credentials, region and endpoint come from the standard AWS variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL), never logged.

What the retries could not cure is one of two things: `StoreUnavailable` (an outage: callers
answer 503 or wait), or an OSError (a refusal: FileNotFoundError for a missing key,
PermissionError for a 403, OSError(EIO) for the other 4xx).

An object is written whole by one PUT, so a reader never sees part of one. Keys are the same as
on disk (`POST/2025/01/20/<uuid>.webp`) under the storage's prefix.
"""

from __future__ import annotations

import asyncio
import errno
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from adapters.s3.outcomes import code, request, unavailable
from core.ports import Content, Spooled, StoreUnavailable
from core.storage import PROBE_PREFIX

log = structlog.get_logger("s3")

# The AWS SDKs' default: 3 tries in all (botocore's `max_attempts` would count the retries only), ~1-3 s.
RETRIES = {"mode": "standard", "total_max_attempts": 3}
IMMUTABLE = "public, max-age=31536000, immutable"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
# Requests in flight per process: an api's concurrent uploads each PUT at once (botocore's default is 10).
MAX_CONNECTIONS = 64
LIST_BATCH = 200
READ_CHUNK_BYTES = 1024 * 1024
MAX_READ_BYTES = 64 * 1024 * 1024  # a read with no limit of its own: far above any image this service stores


class S3Bucket:
    """Objects of one bucket under a prefix; open it with `S3Bucket.open(...)`."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    @asynccontextmanager
    async def open(
        cls, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, path_style: bool = False
    ) -> AsyncIterator[S3Bucket]:
        """Connect, check that the bucket exists (an error naming it otherwise), and yield the storage.

        A store that does not answer at all raises StoreUnavailable (the caller may wait for it);
        a bucket that is missing or not ours raises RuntimeError naming it (a deployment error).
        """
        config = AioConfig(
            retries=RETRIES,
            s3={"addressing_style": "path" if path_style else "auto"},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            max_pool_connections=MAX_CONNECTIONS,
        )
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                get_session().create_client("s3", endpoint_url=endpoint_url, config=config)
            )
            try:
                await client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if unavailable(exc):
                    raise StoreUnavailable(f"S3 bucket {bucket!r}: {code(exc)}") from None
                raise RuntimeError(f"S3 bucket {bucket!r} is not there or not ours: {code(exc)}") from None
            except Exception as exc:
                if not unavailable(exc):
                    raise
                raise StoreUnavailable(f"S3 at {client.meta.endpoint_url}: {code(exc)}") from None
            yield cls(client, bucket, prefix)

    def object_key(self, key: str) -> str:
        """The object's name for a storage key."""
        return self.prefix + key

    async def create(self, files: Sequence[tuple[str, Content]], created: list[str]) -> None:
        """PUT every file at once; add each key stored to `created`; raise the first failure.

        Returns, raises or is cancelled only once every PUT has an outcome, so that `created` is
        complete when the caller cleans up (the OriginalFiles port's promise).
        """
        puts = asyncio.gather(*(self._put(key, data) for key, data in files), return_exceptions=True)
        try:
            outcomes = await asyncio.shield(puts)
        except asyncio.CancelledError:  # the requests are out: learn what they made, then stop
            outcomes = await puts
            created.extend(key for (key, _), outcome in zip(files, outcomes, strict=True) if outcome is None)
            raise
        created.extend(key for (key, _), outcome in zip(files, outcomes, strict=True) if outcome is None)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if isinstance(outcome, OSError):  # a refusal; an outage is logged once, by its caller
                    log.error("upload_save_failed", store="s3", error=str(outcome))
                raise outcome

    async def _put(self, key: str, content: Content) -> None:
        # A spooled upload is read from scratch for its PUT (at most the per-file limit at once).
        data = await asyncio.to_thread(Path(content.path).read_bytes) if isinstance(content, Spooled) else content
        async with request("put", key):
            await self._client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    async def write(self, key: str, data: bytes, *, content_type: str) -> int:
        """Store one served object with its Content-Type and the immutable Cache-Control; return its size."""
        async with request("put", key):
            await self._client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(key),
                Body=data,
                ContentType=content_type,
                CacheControl=IMMUTABLE,
            )
        return len(data)

    async def read(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; FileNotFoundError when there is none, OSError(EFBIG) past `max_bytes`
        (by default MAX_READ_BYTES: no read takes unbounded memory)."""
        limit = max_bytes if max_bytes is not None else MAX_READ_BYTES
        async with request("get", key):
            response = await self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            async with response["Body"] as body:
                too_large = int(response.get("ContentLength") or 0) > limit
                data = b"" if too_large else await _read_at_most(body, limit + 1)
        if too_large or len(data) > limit:  # declared, or a length the headers did not declare
            raise OSError(errno.EFBIG, f"object {key} is over {limit} bytes")
        return data

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        try:
            async with request("head", key):
                await self._client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except FileNotFoundError:
            return False
        return True

    async def remove(self, key: str) -> bool:
        """Delete the object if it is there; return whether it was (a HEAD first: DELETE does not say)."""
        if not await self.exists(key):
            return False
        await self._delete(key)
        return True

    async def _delete(self, key: str) -> None:
        async with request("delete", key):
            await self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    async def keep_in_doubt(self, keys: Sequence[str]) -> None:
        """Leave objects whose rows may have committed; the orphan sweep lists the prefix later."""
        log.error("upload_commit_in_doubt", kept=list(keys), store="s3")

    async def older_than(self, seconds: float) -> AsyncIterator[list[str]]:
        """Yield, a listing page at a time (at most LIST_BATCH keys), the keys under the prefix last
        modified more than `seconds` ago."""
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
        pages = aiter(
            self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": LIST_BATCH}
            )
        )
        while True:
            async with request("list", self.prefix or "/"):
                page = await anext(pages, None)
            if page is None:
                return
            old = [e["Key"][len(self.prefix) :] for e in page.get("Contents", ()) if e["LastModified"] < cutoff]
            if old:
                yield old

    async def probe(self) -> None:
        """Write and delete a small object: the bucket answers and takes writes (the health check)."""
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        await self.write(key, b"ok", content_type="text/plain")
        await self._delete(key)


async def _read_at_most(body: Any, limit: int) -> bytes:
    """Read a response body to its end, or until `limit` bytes: a read returns what has arrived, not all."""
    chunks: list[bytes] = []
    total = 0
    while total < limit and (chunk := await body.read(min(READ_CHUNK_BYTES, limit - total))):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)

"""A BlobStore on S3-compatible object storage, through aiobotocore (issue 14).

aiobotocore is botocore (AWS's own request signing, endpoints and retry rules) on aiohttp, which
the api already runs on: no hand-written SigV4, and no thread per request. Retries are botocore's
"standard" mode: throttling, 5xx and connection errors are retried with jittered exponential
backoff; a 4xx is not. Credentials, region and endpoint come from the standard AWS variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL), never logged.

An object is written whole by one PUT, so a reader never sees part of one. Keys are the same as
on disk (`POST/2025/01/20/<uuid>.webp`) under the store's prefix.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

log = structlog.get_logger("s3")

RETRIES = {"mode": "standard", "max_attempts": 5}
IMMUTABLE = "public, max-age=31536000, immutable"


class S3Store:
    """BlobStore on one bucket under a prefix; open it with `S3Store.open(...)`."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    @asynccontextmanager
    async def open(
        cls, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, path_style: bool = False
    ) -> AsyncIterator[S3Store]:
        """Connect, check that the bucket exists (an error naming it otherwise), and yield the store."""
        config = AioConfig(retries=RETRIES, s3={"addressing_style": "path" if path_style else "auto"})
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                get_session().create_client("s3", endpoint_url=endpoint_url, config=config)
            )
            try:
                await client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                raise RuntimeError(f"S3 bucket {bucket!r} is not there or not ours: {_code(exc)}") from None
            yield cls(client, bucket, prefix)

    def object_key(self, key: str) -> str:
        """The object's name for a storage key."""
        return self.prefix + key

    async def create(self, files: Sequence[tuple[str, bytes]], created: list[str]) -> None:
        """PUT every file at once; add each key stored to `created`; raise the first failure as an OSError."""
        outcomes = await asyncio.gather(*(self._put(key, data) for key, data in files), return_exceptions=True)
        created.extend(key for (key, _), outcome in zip(files, outcomes, strict=True) if outcome is None)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if isinstance(outcome, ClientError | BotoCoreError):
                    log.error("upload_save_failed", store="s3", error=_code(outcome))
                    raise OSError(errno.EIO, f"S3 refused an object: {_code(outcome)}") from outcome
                raise outcome

    async def _put(self, key: str, data: bytes) -> None:
        await self._client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    async def write(self, key: str, data: bytes, *, content_type: str) -> int:
        """Store one served object with its Content-Type and the immutable Cache-Control; return its size."""
        await self._client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type, CacheControl=IMMUTABLE
        )
        return len(data)

    async def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none."""
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        try:
            await self._client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def remove(self, key: str) -> bool:
        """Delete the object if it is there; return whether it was."""
        if not await self.exists(key):
            return False
        await self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return True

    async def keep_in_doubt(self, keys: Sequence[str]) -> None:
        """Leave objects whose rows may have committed; the orphan sweep lists the prefix later."""
        log.error("upload_commit_in_doubt", kept=list(keys), store="s3")


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__

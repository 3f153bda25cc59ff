"""The I/O the use cases need, as small Protocols; adapters/ implements them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from core.events import Envelope
from core.idempotency import IdempotentRequest, StoredAnswer
from core.images import Image, StatusChange
from core.quotas import Usage
from core.variants import Sizes, Variant, VariantFile

T = TypeVar("T")


@dataclass(frozen=True)
class StorageRecord:
    """One row of `storage_objects`: where an image's bytes are and what they are."""

    image_id: str
    storage_location: str
    origin_location: str | None
    origin_size: int
    origin_format: str
    converted_size: int | None = None
    converted_format: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Conversion:
    """What a conversion produced (CONTRACT 4), wherever it ran: the stored file and its variants,
    or why there is none.

    Without a `key` the image could not be converted and `reason` says why; with one, `reason`
    is set only when WebP encoding failed and the original is served instead.
    """

    key: str | None = None
    format: str | None = None  # the stored file's: WEBP, or the original's on pass-through
    size: int | None = None
    width: int | None = None
    height: int | None = None
    variants: tuple[VariantFile, ...] = ()
    reason: str | None = None

    @property
    def ready(self) -> bool:
        """Whether there is a stored file to serve."""
        return self.key is not None

    @classmethod
    def failed(cls, reason: str) -> Conversion:
        """No file: the image ends FAILED with this reason."""
        return cls(reason=reason)


@dataclass(frozen=True)
class SequenceEntry:
    """One row of `image_sequence`."""

    image_id: str
    seq_number: int


class ImageRepository(Protocol):
    """Images, their storage rows, history and sequences, inside one transaction."""

    async def add(self, image: Image, storage: StorageRecord) -> None: ...
    async def get(self, image_id: str, *, for_update: bool = False) -> Image | None: ...
    async def get_many(self, image_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Image]: ...
    async def confirmed_of(
        self, reference_type: str, reference_id: str, *, for_update: bool = False
    ) -> list[Image]: ...
    async def referenced_types(self, reference_id: str) -> list[str]: ...
    async def save(self, image: Image) -> None: ...
    async def add_history(self, change: StatusChange) -> None: ...
    async def lock_reference(self, reference_type: str, reference_id: str, at: datetime) -> None: ...
    async def replace_sequence(
        self, reference_type: str, reference_id: str, entries: Sequence[SequenceEntry], at: datetime
    ) -> None: ...
    async def storage(self, image_id: str) -> StorageRecord | None: ...
    async def save_storage(self, record: StorageRecord) -> None: ...
    async def delete(self, image_id: str) -> None: ...
    async def forget_attempts(self, image_id: str) -> None: ...
    async def add_variants(self, image_id: str, variants: Sequence[Variant]) -> None: ...
    async def sizes_of(self, image_ids: Sequence[str]) -> dict[str, Sizes]: ...


class Outbox(Protocol):
    """Envelopes written in the caller's transaction, published by the relay after commit."""

    async def add(self, envelope: Envelope) -> None: ...


class ProcessedEvents(Protocol):
    """Consumer-side dedupe by eventId."""

    async def seen(self, consumer: str, event_id: str) -> bool: ...
    async def record(self, consumer: str, event_id: str, *, outcome: str, detail: str | None, at: datetime) -> None: ...


class IdempotencyKeys(Protocol):
    """The first answer to a keyed request, written with the work it answers (core/idempotency.py)."""

    async def remember(self, request: IdempotentRequest, answer: StoredAnswer, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    """One transaction: everything written through it commits together or not at all."""

    images: ImageRepository
    outbox: Outbox
    processed: ProcessedEvents
    idempotency: IdempotencyKeys
    # True after commit() failed without telling whether the commit happened (the connection broke
    # or the call was cancelled once the COMMIT had been sent); False when it surely did not.
    commit_in_doubt: bool

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...


class UploadImages(Protocol):
    """What an upload writes of images: rows, history and (sync) variants. Nothing is read."""

    async def add(self, image: Image, storage: StorageRecord) -> None: ...
    async def add_history(self, change: StatusChange) -> None: ...
    async def add_variants(self, image_id: str, variants: Sequence[Variant]) -> None: ...


class UploadQuotas(Protocol):
    """An uploader's usage (core/quotas.py), read under the uploader's lock and counted in the upload's transaction.

    Reading needs a transaction that can read: with quotas on, uploads do not go through the
    write-only group commit.
    """

    async def usage_locked(self, uploader_id: str, *, since: datetime) -> list[Usage]: ...
    async def add(self, uploader_id: str, usage: Usage) -> None: ...


class UploadUnitOfWork(Protocol):
    """The transaction of an upload: write-only (committed with others by the group commit) unless quotas read."""

    @property
    def images(self) -> UploadImages: ...
    @property
    def quotas(self) -> UploadQuotas: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def idempotency(self) -> IdempotencyKeys: ...
    @property
    def commit_in_doubt(self) -> bool: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...


class Transactions(Protocol):
    """Runs one transaction (a function that opens, writes and commits it), again if the database
    chose it as a deadlock victim."""

    def __call__(self, transaction: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


class StoreUnavailable(Exception):
    """The object store cannot be reached (no connection, throttled, 5xx after the client's retries).

    An outage, not a refusal: HTTP answers 503 with Retry-After (CONTRACT 2), a worker waits it
    out, and no image ends FAILED for it. A refusal (a 4xx) is an OSError instead.
    """


@dataclass(frozen=True)
class Spooled:
    """A file part the shell wrote to this host's scratch space as it arrived, instead of holding it (issue 26).

    `path` is on the storage's own disk where there is one (so storing it is a rename); `digest` is
    the sha256 of its bytes. Whoever stores it may move it away; the shell removes what is left.
    """

    path: str
    size: int
    digest: str


# An upload's bytes: held (small parts) or spooled (the rest of a large request).
Content = bytes | Spooled


class OriginalFiles(Protocol):
    """Durable bytes under keys: the originals an upload stores."""

    async def create(self, files: Sequence[tuple[str, Content]], created: list[str]) -> None:
        """Create the files durably, adding each key made to `created` (complete even on failure);
        raise the first failure: an OSError, or StoreUnavailable during an outage."""
        ...

    async def remove(self, key: str) -> bool: ...

    async def keep_in_doubt(self, keys: Sequence[str]) -> None:
        """Keep files whose rows may have committed (the orphan sweep decides later); say so."""
        ...


@dataclass(frozen=True)
class FileFacts:
    """What an upload's bytes are, as far as their headers tell (FileInspector)."""

    format: str | None  # the format code the bytes are (JPEG, PNG, MP4, ...); None: none supported
    width: int = 0
    height: int = 0
    too_many_pixels: str | None = None  # why the image is over the pixel limit (frames summed)
    unreadable: str | None = None  # why the header or container cannot be read


class FileInspector(Protocol):
    """Reads what an upload's bytes are without decoding their pixels."""

    async def inspect(self, content: Content) -> FileFacts: ...


class Undecodable(Exception):
    """A file the converter cannot turn into what is stored; the message says why."""

    def __init__(self, reason: str, *, too_many_pixels: bool = False) -> None:
        super().__init__(reason)
        self.too_many_pixels = too_many_pixels


class SyncConverter(Protocol):
    """Converts an upload's bytes and writes the result and its variants under `stem` (?sync=true)."""

    async def convert(self, content: Content, stem: str, widths: Sequence[int]) -> Conversion:
        """Raise Undecodable when the bytes cannot be converted."""
        ...


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
    blobs: OriginalFiles  # where uploads put their originals
    local_dir: Path  # this process's directory on this host: the storage (file://) or its scratch (s3://)

    async def exists(self, key: str) -> bool: ...
    async def remove(self, key: str) -> bool: ...
    def older_than(self, seconds: float) -> AsyncIterator[list[str]]: ...
    def workspace(self) -> AbstractAsyncContextManager[Workspace]: ...
    async def check(self) -> tuple[bool, dict[str, Any]]: ...

"""The I/O the use cases need, as small Protocols; adapters/ implements them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from core.events import Envelope
from core.idempotency import IdempotentRequest, StoredAnswer
from core.images import Image, StatusChange
from core.variants import Sizes, Variant


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

"""In-memory fakes of the ports (core/ports.py), for unit tests of the use cases.

The same contract tests run against these and the MariaDB adapters
(tests/integration/test_uow_contract.py), so the fakes cannot drift from the real thing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from core.events import Envelope
from core.idempotency import IdempotentRequest, StoredAnswer
from core.images import Image, ImageStatus, StatusChange
from core.ports import SequenceEntry, StorageRecord
from core.quotas import Usage
from core.references import EXTENSIONS, RULES, ReferenceData
from core.variants import Sizes, Variant

# The contract's reference types and extensions, as schema.sql seeds them (the ReferenceCache's data).
REFERENCE_DATA = ReferenceData(rules={r.code: r for r in RULES.values()}, extensions=EXTENSIONS)


@dataclass
class FakeState:
    """Everything the fake database holds."""

    images: dict[str, Image] = field(default_factory=dict)
    storage: dict[str, StorageRecord] = field(default_factory=dict)
    history: list[StatusChange] = field(default_factory=list)
    sequences: dict[tuple[str, str], list[SequenceEntry]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox: list[Envelope] = field(default_factory=list)
    processed: dict[tuple[str, str], str] = field(default_factory=dict)
    answers: dict[str, tuple[str, StoredAnswer]] = field(default_factory=dict)  # key hash -> (fingerprint, answer)
    attempts: dict[str, int] = field(default_factory=dict)  # conversion attempts per image
    variants: dict[str, list[Variant]] = field(default_factory=dict)
    usage: dict[tuple[str, datetime], Usage] = field(default_factory=dict)  # (uploader, minute) -> usage


class FakeImages:
    def __init__(self, state: FakeState) -> None:
        self.s = state

    async def add(self, image: Image, storage: StorageRecord) -> None:
        if image.image_id in self.s.images:
            raise KeyError(f"duplicate image {image.image_id}")
        self.s.images[image.image_id] = image
        self.s.storage[image.image_id] = storage

    async def get(self, image_id: str, *, for_update: bool = False) -> Image | None:
        return self.s.images.get(image_id)

    async def get_many(self, image_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Image]:
        return {i: self.s.images[i] for i in image_ids if i in self.s.images}

    async def confirmed_of(self, reference_type: str, reference_id: str, *, for_update: bool = False) -> list[Image]:
        order = {e.image_id: e.seq_number for e in self.s.sequences.get((reference_type, reference_id), [])}
        found = [
            i
            for i in self.s.images.values()
            if i.reference_type == reference_type
            and i.reference_id == reference_id
            and i.status is ImageStatus.CONFIRMED
        ]
        return sorted(
            found, key=lambda i: (i.image_id not in order, order.get(i.image_id, 0), i.updated_at, i.image_id)
        )

    async def referenced_types(self, reference_id: str) -> list[str]:
        return sorted(
            {
                i.reference_type
                for i in self.s.images.values()
                if i.reference_id == reference_id and i.status is ImageStatus.CONFIRMED
            }
        )

    async def save(self, image: Image) -> None:
        self.s.images[image.image_id] = image

    async def add_history(self, change: StatusChange) -> None:
        self.s.history.append(change)

    async def lock_reference(self, reference_type: str, reference_id: str, at: datetime) -> None:
        key = (reference_type, reference_id)
        self.s.versions[key] = self.s.versions.get(key, 0) + 1

    async def replace_sequence(
        self, reference_type: str, reference_id: str, entries: Sequence[SequenceEntry], at: datetime
    ) -> None:
        self.s.sequences[(reference_type, reference_id)] = list(entries)

    async def storage(self, image_id: str) -> StorageRecord | None:
        return self.s.storage.get(image_id)

    async def save_storage(self, record: StorageRecord) -> None:
        self.s.storage[record.image_id] = record

    async def delete(self, image_id: str) -> None:
        self.s.images.pop(image_id, None)
        self.s.storage.pop(image_id, None)
        self.s.history = [h for h in self.s.history if h.image_id != image_id]

    async def forget_attempts(self, image_id: str) -> None:
        self.s.attempts.pop(image_id, None)

    async def add_variants(self, image_id: str, variants: Sequence[Variant]) -> None:
        kept = self.s.variants.setdefault(image_id, [])
        if {v.width for v in kept} & {v.width for v in variants}:
            raise KeyError(f"duplicate variant of {image_id}")  # MariaDB: the primary key
        kept.extend(variants)

    async def sizes_of(self, image_ids: Sequence[str]) -> dict[str, Sizes]:
        return {
            i: Sizes(s.width, s.height, tuple(sorted(self.s.variants.get(i, []), key=lambda v: v.width)))
            for i in image_ids
            if (s := self.s.storage.get(i)) is not None
        }


class FakeOutbox:
    def __init__(self, state: FakeState) -> None:
        self.s = state

    async def add(self, envelope: Envelope) -> None:
        if any(e.event_id == envelope.event_id for e in self.s.outbox):
            raise KeyError(f"duplicate event {envelope.event_id}")
        self.s.outbox.append(envelope)


class FakeProcessed:
    def __init__(self, state: FakeState) -> None:
        self.s = state

    async def seen(self, consumer: str, event_id: str) -> bool:
        return (consumer, event_id) in self.s.processed

    async def record(self, consumer: str, event_id: str, *, outcome: str, detail: str | None, at: datetime) -> None:
        if (consumer, event_id) in self.s.processed:
            raise KeyError(f"duplicate processed event {event_id}")
        self.s.processed[(consumer, event_id)] = outcome


class FakeIdempotency:
    def __init__(self, state: FakeState) -> None:
        self.s = state

    async def remember(self, request: IdempotentRequest, answer: StoredAnswer, at: datetime) -> None:
        if request.key_hash in self.s.answers:
            raise KeyError(f"duplicate idempotency key {request.key_hash}")  # MariaDB: the primary key
        self.s.answers[request.key_hash] = (request.fingerprint, answer)


class FakeQuotas:
    def __init__(self, state: FakeState) -> None:
        self.s = state

    async def usage_locked(self, uploader_id: str, *, since: datetime) -> list[Usage]:
        return sorted(
            (u for (who, minute), u in self.s.usage.items() if who == uploader_id and minute >= since),
            key=lambda u: u.minute,
        )

    async def add(self, uploader_id: str, usage: Usage) -> None:
        old = self.s.usage.get((uploader_id, usage.minute))
        if old is not None:
            usage = Usage(usage.minute, old.images + usage.images, old.bytes + usage.bytes)
        self.s.usage[(uploader_id, usage.minute)] = usage


class FakeUnitOfWork:
    """Works on a copy of the state; commit() publishes the copy, leaving without commit drops it."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state if state is not None else FakeState()
        self.commits = 0
        self.commit_in_doubt = False

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self.state)
        self.images = FakeImages(self._working)
        self.outbox = FakeOutbox(self._working)
        self.processed = FakeProcessed(self._working)
        self.idempotency = FakeIdempotency(self._working)
        self.quotas = FakeQuotas(self._working)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        del self._working

    async def commit(self) -> None:
        for name in vars(self.state):
            setattr(self.state, name, getattr(self._working, name))
        self._working = copy.deepcopy(self.state)
        self.images.s = self.outbox.s = self.processed.s = self.idempotency.s = self.quotas.s = self._working
        self.commits += 1


class FakeStore:
    """OriginalFiles in memory; `fail_on` makes creating that many-th file raise OSError(`fail_errno`): a full disk."""

    def __init__(self, fail_on: int | None = None, fail_errno: int = 28) -> None:
        self.files: dict[str, bytes] = {}
        self.kept: list[str] = []
        self._fail_on = fail_on
        self._fail_errno = fail_errno

    async def create(self, files: Sequence[tuple[str, bytes]], created: list[str]) -> None:
        failure: OSError | None = None
        for n, (key, data) in enumerate(files):
            if n == self._fail_on:
                failure = failure or OSError(self._fail_errno, os.strerror(self._fail_errno))
            elif len(key) > 1024:  # like S3's key limit (and the disk's name limit)
                failure = failure or OSError(36, "File name too long")
            else:
                self.files[key] = data
                created.append(key)
        if failure is not None:
            raise failure

    async def remove(self, key: str) -> bool:
        return self.files.pop(key, None) is not None

    async def keep_in_doubt(self, keys: Sequence[str]) -> None:
        self.kept.extend(keys)

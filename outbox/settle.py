"""What to do with each row of a publish attempt: mark it published, fail it for good, or retry it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka.errors import KafkaError


@dataclass(frozen=True)
class Row:
    """One claimed outbox row."""

    id: int
    event_id: str
    topic: str
    key: str
    payload: bytes
    created_at: datetime


@dataclass
class BatchOutcome:
    """What one publish attempt did with a batch."""

    published: list[int]
    failed: list[tuple[int, str]]  # never publishable: marked FAILED with the reason
    retry: list[int]  # transient failure, or behind one on the same key
    error: str | None = None


def is_permanent(exc: BaseException) -> bool:
    """Tell whether a publish error can never succeed for this row (too large, bad topic)."""
    return (
        isinstance(exc, KafkaError)
        and not exc.retriable
        and type(exc).__name__
        in {
            "MessageSizeTooLargeError",
            "RecordListTooLargeError",
            "InvalidTopicError",
            "TopicAuthorizationFailedError",
        }
    )


def settle(rows: Sequence[Row], results: Sequence[BaseException | None]) -> BatchOutcome:
    """Decide per row from the send results: publish, fail for good, or retry.

    Once a key has a transient failure, its later rows in the batch are retried too, even if the
    broker took them: publishing them again later keeps the key's order (duplicates are fine).
    """
    outcome = BatchOutcome([], [], [])
    blocked: set[str] = set()
    for row, exc in zip(rows, results, strict=True):
        if row.key in blocked:
            outcome.retry.append(row.id)
        elif exc is None:
            outcome.published.append(row.id)
        elif is_permanent(exc):
            outcome.failed.append((row.id, f"{type(exc).__name__}: {exc}"[:1000]))
        else:
            blocked.add(row.key)
            outcome.retry.append(row.id)
            outcome.error = outcome.error or f"{type(exc).__name__}: {exc}"
    return outcome

"""Idempotency-Key (CONTRACT 2.1; IETF httpapi draft "The Idempotency-Key HTTP Header Field").

A client that retries a request with the key it first sent gets the first answer again and
nothing is done twice. The pure part lives here: what the key may be, what identifies "the same
request" (a fingerprint of what the request means, not of its bytes: a retried multipart body
has a new boundary), and the decision taken on what is stored. The first answer is recorded in
the same transaction as the work it answers (`UnitOfWork.idempotency`), so a request either
did its work and left its answer, or did neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from core import errors, fields
from core.images import Image

KEPT_FOR = timedelta(hours=24)  # an answer is replayed for this long, then the key may be used again
UPLOAD = "upload"
CONFIRM = "confirm"


@dataclass(frozen=True)
class IdempotentRequest:
    """A request that came with a key: who it is (scope, owner, key) and what it asks (fingerprint)."""

    key_hash: str  # sha256 of scope, owner and key: the row's primary key
    scope: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a keyed request, replayed to its retries."""

    status: int
    body: bytes


@dataclass(frozen=True)
class Remember:
    """What a use case records with its work: the keyed request and how its answer is made."""

    request: IdempotentRequest
    answer: Callable[[Sequence[Image]], StoredAnswer]  # from the images the work recorded


def empty_answer(_: Sequence[Image]) -> StoredAnswer:
    """A confirm's answer: 200 with no body."""
    return StoredAnswer(200, b"")


def parse_key(raw: str) -> str:
    """Return the key of an Idempotency-Key header value; raise VALIDATION_ERROR when it cannot be one.

    The draft's form is a structured-field string (`"8e03978e-..."`); a bare token is taken too,
    since that is what most clients send.
    """
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key.strip():
        raise errors.ValidationError("Idempotency-Key must not be blank")
    fields.require_fits("Idempotency-Key", key, fields.IDEMPOTENCY_KEY)
    if not key.isprintable() or not key.isascii():
        raise errors.ValidationError("Idempotency-Key must be printable ASCII")
    return key


def request_of(scope: str, owner: str, key: str, meaning: Iterable[bytes]) -> IdempotentRequest:
    """The keyed request: `owner` scopes the key (the uploader for uploads), `meaning` is what it asks."""
    digest = hashlib.sha256()
    for part in meaning:
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two part lists hash alike
        digest.update(part)
    scoped = hashlib.sha256("\0".join((scope, owner, key)).encode()).hexdigest()
    return IdempotentRequest(key_hash=scoped, scope=scope, fingerprint=digest.hexdigest())


def replay(request: IdempotentRequest, stored_fingerprint: str, answer: StoredAnswer) -> StoredAnswer:
    """The stored answer for a retry; IDEMPOTENCY_KEY_REUSED when the key came with another request."""
    if stored_fingerprint != request.fingerprint:
        raise errors.IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return answer


def in_progress(request: IdempotentRequest, claimed_fingerprint: str) -> errors.DomainError:
    """What a request is told while another with its key is still being handled."""
    if claimed_fingerprint != request.fingerprint:
        return errors.IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return errors.IdempotencyRequestInProgress("a request with this Idempotency-Key is still being handled")

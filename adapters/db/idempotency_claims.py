"""Idempotency-Key outside the work's transaction: claims of keyed requests in flight, stored answers.

The answer itself commits with the work (`records.MariaDbIdempotencyKeys`, a plain INSERT
on the key's hash), which alone makes "two requests with one key never both do the work" hold:
the second transaction fails on the primary key and is answered with the first's answer. The
claim row here only tells a retry that arrives meanwhile to wait (409); a claim older than its
lease belongs to a request that died, and the next retry takes it over (compare-and-set). A
lease too short for a slow request costs wasted work, never a second store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomysql
import pymysql

from core import idempotency
from core.idempotency import IdempotentRequest, StoredAnswer

LEASE = timedelta(seconds=60)
DUPLICATE_ENTRY = 1062

SELECT_ANSWER = (
    "SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys WHERE key_hash = %s"
)
DELETE_EXPIRED_ANSWER = "DELETE FROM idempotency_keys WHERE key_hash = %s AND created_at = %s"
INSERT_CLAIM = "INSERT INTO idempotency_claims (key_hash, fingerprint, claimed_at) VALUES (%s, %s, %s)"
SELECT_CLAIM = "SELECT fingerprint, claimed_at FROM idempotency_claims WHERE key_hash = %s"
TAKE_OVER = "UPDATE idempotency_claims SET fingerprint = %s, claimed_at = %s WHERE key_hash = %s AND claimed_at = %s"
RELEASE = "DELETE FROM idempotency_claims WHERE key_hash = %s AND claimed_at = %s"
SWEEP_ANSWERS = "DELETE FROM idempotency_keys WHERE created_at < %s LIMIT %s"
SWEEP_CLAIMS = "DELETE FROM idempotency_claims WHERE claimed_at < %s LIMIT %s"


@dataclass(frozen=True)
class KeyClaim:
    """This request holds its key until it answers (or its lease runs out)."""

    request: IdempotentRequest
    claimed_at: datetime  # naive UTC, as stored: the release matches it exactly


def _db(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


async def begin(pool: aiomysql.Pool, request: IdempotentRequest, now: datetime) -> KeyClaim | StoredAnswer:
    """Claim the key for this request, or return the stored answer to replay.

    Raises IDEMPOTENCY_KEY_REUSED (another request came with this key) or
    IDEMPOTENCY_REQUEST_IN_PROGRESS (the first is still being handled).
    """
    at = _db(now)
    async with pool.acquire() as conn, conn.cursor() as cur:
        answer = await _stored(cur, request, at)
        if answer is not None:
            return answer
        try:
            await cur.execute(INSERT_CLAIM, (request.key_hash, request.fingerprint, at))
            return KeyClaim(request, at)
        except pymysql.err.IntegrityError as exc:
            if exc.args[0] != DUPLICATE_ENTRY:
                raise
        await cur.execute(SELECT_CLAIM, (request.key_hash,))
        row = await cur.fetchone()
        if row is None:  # answered and released just now: its answer is there, or it failed
            answer = await _stored(cur, request, at)
            if answer is not None:
                return answer
            raise idempotency.in_progress(request, request.fingerprint)
        fingerprint, claimed_at = row
        if at - claimed_at < LEASE:
            raise idempotency.in_progress(request, fingerprint)
        if await cur.execute(TAKE_OVER, (request.fingerprint, at, request.key_hash, claimed_at)) != 1:
            raise idempotency.in_progress(request, request.fingerprint)  # another retry took it first
        return KeyClaim(request, at)


async def release(pool: aiomysql.Pool, claim: KeyClaim) -> None:
    """Give the key up once answered (a claim left behind expires with its lease)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(RELEASE, (claim.request.key_hash, claim.claimed_at))


async def answer_after_race(pool: aiomysql.Pool, request: IdempotentRequest, exc: BaseException) -> StoredAnswer | None:
    """After the work failed on a duplicate entry: the answer of the request that committed first, if that was it."""
    if not (isinstance(exc, pymysql.err.IntegrityError) and exc.args and exc.args[0] == DUPLICATE_ENTRY):
        return None
    async with pool.acquire() as conn, conn.cursor() as cur:
        return await _stored(cur, request, _db(datetime.now(UTC)))


async def _stored(cur: aiomysql.Cursor, request: IdempotentRequest, at: datetime) -> StoredAnswer | None:
    await cur.execute(SELECT_ANSWER, (request.key_hash,))
    row = await cur.fetchone()
    if row is None:
        return None
    fingerprint, status, body, created_at = row
    if at - created_at >= idempotency.KEPT_FOR:  # expired, not swept yet: the key is free again
        await cur.execute(DELETE_EXPIRED_ANSWER, (request.key_hash, created_at))
        return None
    return idempotency.replay(request, fingerprint, StoredAnswer(int(status), str(body).encode()))


async def sweep(pool: aiomysql.Pool, *, now: datetime, batch: int = 5000) -> int:
    """Delete answers past KEPT_FOR and claims long past their lease; return the rows deleted."""
    total = 0
    for sql, cutoff in ((SWEEP_ANSWERS, now - idempotency.KEPT_FOR), (SWEEP_CLAIMS, now - 10 * LEASE)):
        while True:
            async with pool.acquire() as conn, conn.cursor() as cur:
                deleted = await cur.execute(sql, (_db(cutoff), batch))
            total += deleted
            if deleted < batch:
                break
    return total

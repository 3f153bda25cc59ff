"""The `Idempotency-Key` header on uploads and confirms (CONTRACT 2.1): one answer per key.

A handler says what its request means (the fingerprint's parts) and gives its work as a
function of a `Remember` (None without a key); the work records the answer in its own
transaction. Here the key is claimed first (`adapters.db.idempotency_claims`): a stored answer is replayed
(with `Idempotency-Replayed: true`), a different request under the key is 422, one still in
flight is 409; and a request that lost the race at commit answers with the winner's answer.
Errors are not stored: nothing was done, so a retry simply tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog
from aiohttp import web

from adapters.db import idempotency_claims as claims
from api import keys
from core import idempotency
from core.idempotency import IdempotentRequest, Remember, StoredAnswer
from core.images import Image

HEADER = "Idempotency-Key"
REPLAYED = "Idempotency-Replayed"
HASH_ON_THREAD_BYTES = 1024 * 1024  # hashing a large upload's bytes must not hold the event loop

log = structlog.get_logger("api.idempotency")


async def keyed(request: web.Request, scope: str, owner: str, meaning: Sequence[bytes]) -> IdempotentRequest | None:
    """The request's key and fingerprint, or None when it came without the header."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = idempotency.parse_key(raw)
    if sum(len(m) for m in meaning) > HASH_ON_THREAD_BYTES:
        return await asyncio.to_thread(idempotency.request_of, scope, owner, key, meaning)
    return idempotency.request_of(scope, owner, key, meaning)


async def answer_once(
    request: web.Request,
    keyed_request: IdempotentRequest | None,
    answer_of: Callable[[Sequence[Image]], StoredAnswer],
    work: Callable[[Remember | None], Awaitable[Sequence[Image]]],
) -> web.Response:
    """Do the work once per key and answer; replay the first answer to the key's retries."""
    if keyed_request is None:
        return _response(answer_of(await work(None)))
    pool = request.app[keys.POOL]
    begun = await claims.begin(pool, keyed_request, datetime.now(UTC))
    if isinstance(begun, StoredAnswer):
        return _replayed(request, begun)
    try:
        recorded = await work(Remember(keyed_request, answer_of))
    except Exception as exc:
        first = await claims.answer_after_race(pool, keyed_request, exc)
        if first is None:
            raise
        return _replayed(request, first)  # a concurrent request with this key committed first
    finally:
        try:
            await claims.release(pool, begun)
        except Exception as exc:  # an outage: the claim expires with its lease
            log.warning("idempotency_claim_not_released", error=f"{type(exc).__name__}: {exc}")
    return _response(answer_of(recorded))


def _replayed(request: web.Request, answer: StoredAnswer) -> web.Response:
    fields = request.get(keys.LOG_FIELDS, {})
    request[keys.LOG_FIELDS] = fields | {"idempotent_replay": True}
    response = _response(answer)
    response.headers[REPLAYED] = "true"
    return response


def _response(answer: StoredAnswer) -> web.Response:
    if not answer.body:
        return web.Response(status=answer.status)
    return web.Response(status=answer.status, body=answer.body, content_type="application/json", charset="utf-8")

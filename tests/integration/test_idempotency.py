"""`Idempotency-Key` on uploads and confirms over real HTTP against real MariaDB (CONTRACT 2.1)."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import aiomysql
import pytest
from aiohttp.test_utils import TestClient

from adapters.db import idempotency_claims as claims
from core import idempotency
from core.images import ImageStatus
from tests import images, services
from tests.integration.conftest import fetch_all
from tests.integration.test_confirm import make_image, sequence


def photo_form(
    data: bytes, *, uploader: str = "u-idem", category: str = "POST", field: str = "file"
) -> aiohttp.FormData:
    """A browser-like form: aiohttp picks a new boundary for each one, as a retrying client would."""
    form = aiohttp.FormData()
    form.add_field(field, io.BytesIO(data), filename="a.jpg", content_type="image/jpeg")
    form.add_field("uploaderId", uploader)
    form.add_field("category", category)
    return form


async def upload(client: TestClient, data: bytes, key: str | None, **form: str):  # type: ignore[no-untyped-def]
    headers = {} if key is None else {"Idempotency-Key": key}
    return await client.post("/api/images", data=photo_form(data, **form), headers=headers)


async def images_of(pool: aiomysql.Pool, uploader: str) -> list[str]:
    return [r[0] for r in await fetch_all(pool, "SELECT image_id FROM images WHERE uploader_id = %s", uploader)]


def key() -> str:
    return str(uuid.uuid4())


async def test_a_retried_upload_answers_the_first_answer_and_stores_one_image(client, pool) -> None:  # type: ignore[no-untyped-def]
    k, data = key(), images.jpeg(40, 30)
    first = await upload(client, data, k)
    first_body = await first.read()
    again = await upload(client, data, f'"{k}"')  # the draft's quoted form is the same key
    assert (first.status, again.status) == (200, 200)
    assert await again.read() == first_body
    assert again.headers.get("Idempotency-Replayed") == "true" and "Idempotency-Replayed" not in first.headers
    assert await images_of(pool, "u-idem") == [(await first.json())["id"]]


async def test_the_same_key_with_another_request_is_refused_and_stores_nothing(client, pool) -> None:  # type: ignore[no-untyped-def]
    k = key()
    assert (await upload(client, images.jpeg(40, 30), k)).status == 200
    other = await upload(client, images.jpeg(41, 30), k)  # another photo
    assert (other.status, (await other.json())["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    sync = await client.post(
        "/api/images?sync=true", data=photo_form(images.jpeg(40, 30)), headers={"Idempotency-Key": k}
    )
    assert (sync.status, (await sync.json())["code"]) == (
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )  # the same photo, asked otherwise
    assert len(await images_of(pool, "u-idem")) == 1


async def test_a_key_belongs_to_its_uploader(client, pool) -> None:  # type: ignore[no-untyped-def]
    k, data = key(), images.jpeg(40, 30)
    a = await upload(client, data, k, uploader="u-a")
    b = await upload(client, data, k, uploader="u-b")
    assert (a.status, b.status) == (200, 200)
    assert (await a.json())["id"] != (await b.json())["id"]


async def test_concurrent_requests_with_one_key_store_once(client, pool) -> None:  # type: ignore[no-untyped-def]
    k, data = key(), images.jpeg(40, 30)
    answers = await asyncio.gather(*(upload(client, data, k) for _ in range(8)))
    bodies = [(r.status, await r.json()) for r in answers]
    stored = await images_of(pool, "u-idem")
    assert len(stored) == 1, bodies
    for status, body in bodies:
        assert (status == 200 and body["id"] == stored[0]) or (
            status == 409 and body["code"] == "IDEMPOTENCY_REQUEST_IN_PROGRESS"
        ), body
    after = await upload(client, data, k)  # once answered, every retry gets the answer
    assert (after.status, (await after.json())["id"]) == (200, stored[0])


async def test_a_request_that_lost_the_race_at_commit_answers_with_the_winners_answer(client, pool) -> None:  # type: ignore[no-untyped-def]
    """Two requests doing the work at once (one took over a claim that looked dead): one commits."""
    k, data = key(), images.jpeg(40, 30)
    first = await upload(client, data, k)
    winner = await first.read()
    request = await _keyed(client, data, k)
    ((row,)) = await fetch_all(pool, "SELECT * FROM idempotency_keys WHERE key_hash = %s", request.key_hash)
    stale = datetime.now(UTC).replace(tzinfo=None) - claims.LEASE * 2
    async with pool.acquire() as conn, conn.cursor() as cur:  # as if the first had not committed yet
        await cur.execute("DELETE FROM idempotency_keys WHERE key_hash = %s", (request.key_hash,))
        await cur.execute(claims.INSERT_CLAIM, (request.key_hash, request.fingerprint, stale))
    async with pool.acquire() as first_tx, first_tx.cursor() as cur:
        # The first request's transaction, its answer written but not committed: the second's
        # INSERT of the same key waits on it.
        await cur.execute("BEGIN")
        await cur.execute("INSERT INTO idempotency_keys VALUES (%s, %s, %s, %s, %s, %s)", row)
        second = asyncio.ensure_future(upload(client, data, k))

        async def taken_over() -> bool:
            claimed = await fetch_all(
                pool, "SELECT claimed_at FROM idempotency_claims WHERE key_hash = %s", request.key_hash
            )
            return bool(claimed) and claimed[0][0] > stale

        await services.eventually(taken_over, timeout_s=10, what="the second request to take the claim over")
        await cur.execute("COMMIT")
    answered = await second
    assert (answered.status, answered.headers.get("Idempotency-Replayed")) == (200, "true")
    assert await answered.read() == winner
    assert await images_of(pool, "u-idem") == [(await first.json())["id"]]  # the second's rows never committed


async def _keyed(client: TestClient, data: bytes, k: str) -> idempotency.IdempotentRequest:
    meaning = [b"async", b"POST", b"file", b"a.jpg", data]
    return idempotency.request_of(idempotency.UPLOAD, "u-idem", k, meaning)


async def test_a_request_in_flight_is_answered_409_and_a_dead_ones_claim_is_taken_over(client, pool) -> None:  # type: ignore[no-untyped-def]
    k, data = key(), images.jpeg(40, 30)
    request = await _keyed(client, data, k)
    now = datetime.now(UTC).replace(tzinfo=None)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(claims.INSERT_CLAIM, (request.key_hash, request.fingerprint, now))
    busy = await upload(client, data, k)
    assert (busy.status, (await busy.json())["code"]) == (409, "IDEMPOTENCY_REQUEST_IN_PROGRESS")
    other = await upload(client, images.jpeg(41, 30), k)
    assert (other.status, (await other.json())["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert await images_of(pool, "u-idem") == []
    async with pool.acquire() as conn, conn.cursor() as cur:  # the holder died a lease ago
        await cur.execute("UPDATE idempotency_claims SET claimed_at = %s", (now - claims.LEASE * 2,))
    taken = await upload(client, data, k)
    assert taken.status == 200 and len(await images_of(pool, "u-idem")) == 1
    assert await fetch_all(pool, "SELECT 1 FROM idempotency_claims") == []  # released once answered


async def test_a_refused_request_stores_no_answer_and_an_expired_answer_frees_the_key(client, pool) -> None:  # type: ignore[no-untyped-def]
    k = key()
    bad = await upload(client, images.jpeg(40, 30), k, category="NOPE")
    assert bad.status == 400
    good = await upload(client, images.jpeg(40, 30), k)  # nothing was done: the key is still free
    assert good.status == 200
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "UPDATE idempotency_keys SET created_at = %s",
            (datetime.now(UTC).replace(tzinfo=None) - idempotency.KEPT_FOR - timedelta(seconds=1),),
        )
    later = await upload(client, images.jpeg(41, 30), k)  # 24 h on, the key may mean something new
    assert later.status == 200 and len(await images_of(pool, "u-idem")) == 2


@pytest.mark.parametrize("value", ["", "   ", '""', "k" * 256, "ключ"])
async def test_a_malformed_key_is_a_validation_error(client, pool, value: str) -> None:  # type: ignore[no-untyped-def]
    r = await upload(client, images.jpeg(40, 30), value)
    assert (r.status, (await r.json())["code"]) == (400, "VALIDATION_ERROR")
    assert await images_of(pool, "u-idem") == []


async def test_a_retried_confirm_is_not_applied_again(client, pool) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_image(pool, "POST"), await make_image(pool, "POST")
    ref, k = f"ref-{uuid.uuid4().hex[:8]}", key()
    headers = {"Idempotency-Key": k}
    first = await client.post("/api/v1/images/confirm", json={"imageIds": [a, b], "referenceId": ref}, headers=headers)
    assert first.status == 200
    reorder = await client.post("/api/v1/images/confirm", json={"imageIds": [b, a], "referenceId": ref})
    assert reorder.status == 200 and await sequence(pool, "POST", ref) == [b, a]
    retry = await client.post("/api/v1/images/confirm", json={"imageIds": [a, b], "referenceId": ref}, headers=headers)
    assert (retry.status, retry.headers.get("Idempotency-Replayed")) == (200, "true")
    assert await sequence(pool, "POST", ref) == [b, a]  # the late retry did not undo the reorder
    other = await client.post("/api/v1/images/confirm", json={"imageIds": [b], "referenceId": ref}, headers=headers)
    assert (other.status, (await other.json())["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_retried_single_confirm_and_delete_all_answer_once(client, pool) -> None:  # type: ignore[no-untyped-def]
    a = await make_image(pool, "PROFILE")
    ref, k = f"ref-{uuid.uuid4().hex[:8]}", key()
    r = await client.post(f"/api/v1/images/confirm/{ref}", params={"imageId": a}, headers={"Idempotency-Key": k})
    assert r.status == 200
    again = await client.post(f"/api/v1/images/confirm/{ref}", params={"imageId": a}, headers={"Idempotency-Key": k})
    assert (again.status, again.headers.get("Idempotency-Replayed")) == (200, "true")
    d = key()
    gone = await client.post(f"/api/v1/images/confirm/{ref}", params={"imageId": ""}, headers={"Idempotency-Key": d})
    assert gone.status == 200
    ((status,),) = await fetch_all(pool, "SELECT status FROM images WHERE image_id = %s", a)
    assert status == ImageStatus.DELETED.value
    twice = await client.post(f"/api/v1/images/confirm/{ref}", params={"imageId": ""}, headers={"Idempotency-Key": d})
    assert (twice.status, twice.headers.get("Idempotency-Replayed")) == (200, "true")


async def test_the_sweep_removes_answers_past_a_day(pool) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC).replace(tzinfo=None) - idempotency.KEPT_FOR - timedelta(minutes=1)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("INSERT INTO idempotency_keys VALUES ('a' , 'upload', 'f', 200, '{}', %s)", (old,))
        await cur.execute(
            "INSERT INTO idempotency_keys VALUES ('b' , 'upload', 'f', 200, '{}', %s)",
            (datetime.now(UTC).replace(tzinfo=None),),
        )
    assert await claims.sweep(pool, now=datetime.now(UTC)) == 1
    assert await fetch_all(pool, "SELECT key_hash FROM idempotency_keys") == [("b",)]

"""Admission control (issue 26): past what a process may hold, an upload is answered 503 before its body.

Uploads are held in flight on raw connections that send their headers and part of a body, then
wait: the process holds their declared bytes, as it would while a slow client is sending. A new
upload past a bound is answered 503 SERVICE_UNAVAILABLE with Retry-After at once, its body never
sent; with `Expect: 100-continue` it is answered instead of "continue". Reads are never shed, and
once the held uploads finish, the same upload is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import aiohttp
import aiomysql
import pytest
from aiohttp.test_utils import TestClient

from api.admission import SHED
from core.settings import Settings
from tests import images
from tests.integration.conftest import ClientFactory, fetch_all

BOUNDARY = "b0undary"


def multipart(uploader: str, picture: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + picture
        + (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="uploaderId"\r\n\r\n{uploader}'
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="category"\r\n\r\nPOST\r\n--{BOUNDARY}--\r\n'
        ).encode()
    )


@dataclass
class RawUpload:
    """An upload on a connection of its own, sent in two steps: headers and a first part, then the rest."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    body: bytes

    @classmethod
    async def begin(
        cls, client: TestClient, uploader: str, *, sync: bool = False, expect: bool = False, first: int = 100
    ) -> RawUpload:
        body = multipart(uploader, images.png(300, 300))
        reader, writer = await asyncio.open_connection(client.host, client.port)
        head = (
            f"POST /api/images{'?sync=true' if sync else ''} HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
            + ("Expect: 100-continue\r\n" if expect else "")
            + "\r\n"
        )
        writer.write(head.encode() + (b"" if expect else body[:first]))
        await writer.drain()
        return cls(reader, writer, body[first:] if not expect else body)

    async def answer_head(self) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)

    async def finish(self) -> int:
        self.writer.write(self.body)
        await self.writer.drain()
        head = await self.answer_head()
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()  # closed before the test's loop ends: no transport left to the collector


@pytest.fixture
async def held() -> AsyncIterator[list[RawUpload]]:
    uploads: list[RawUpload] = []
    yield uploads
    for upload in uploads:
        await upload.close()


async def bounded(settings: Settings, make_client: ClientFactory, **bounds: int) -> TestClient:
    return await make_client(replace(settings, **bounds))


async def until_held(client: TestClient, uploads: int) -> None:
    """Wait until the app holds `uploads` in flight (the server reads headers asynchronously)."""
    from api.admission import ADMISSION

    admission = client.server.app[ADMISSION]
    for _ in range(500):
        if admission.uploads >= uploads:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the app holds {admission.uploads} uploads, not {uploads}")


def shed(bound: str) -> float:
    return SHED.labels(bound)._value.get()


async def stored_by(pool: aiomysql.Pool, uploader: str) -> int:
    return (await fetch_all(pool, "SELECT COUNT(*) FROM images WHERE uploader_id = %s", uploader))[0][0]


async def test_past_the_bytes_bound_an_upload_is_answered_503_before_its_body_is_sent(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory, held: list[RawUpload]
) -> None:
    client = await bounded(settings, make_client, max_inflight_bytes=len(multipart("x", images.png(300, 300))) + 10)
    held.append(await RawUpload.begin(client, "holder"))
    await until_held(client, 1)
    before = shed("bytes")
    refused_uploader = f"shed-{uuid.uuid4().hex[:8]}"
    refused = await RawUpload.begin(client, refused_uploader, first=0)  # nothing of its body is sent
    held.append(refused)
    head = await refused.answer_head()
    assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head, head
    assert shed("bytes") == before + 1
    # Reads are never shed, while the bound is full.
    assert (await client.get("/health")).status == 200
    assert (await client.get("/api/v1/enums/extensions")).status == 200
    assert await held[0].finish() == 200
    assert await stored_by(pool, refused_uploader) == 0  # nothing of the shed upload was stored
    again = await client.post("/api/images", data=form(refused_uploader))
    assert again.status == 200, await again.text()  # the same upload, once the first is done


async def test_an_upload_that_asks_to_continue_is_refused_instead_and_sends_nothing(
    settings: Settings, make_client: ClientFactory, held: list[RawUpload]
) -> None:
    client = await bounded(settings, make_client, max_inflight_uploads=1)
    asking = await RawUpload.begin(client, "asker", expect=True)
    held.append(asking)
    assert (await asking.answer_head()).startswith(b"HTTP/1.1 100 Continue")  # room: go on
    await until_held(client, 1)  # its handler runs, holding the one place while the body is awaited
    second = await RawUpload.begin(client, "second", expect=True)
    held.append(second)
    head = await second.answer_head()
    assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head and b"SERVICE_UNAVAILABLE" not in head
    assert b'"code":"SERVICE_UNAVAILABLE"' in await asyncio.wait_for(second.reader.read(4096), 10)
    assert await asking.finish() == 200


async def test_sync_uploads_wait_in_a_bounded_queue_then_are_shed(
    settings: Settings, make_client: ClientFactory, held: list[RawUpload]
) -> None:
    client = await bounded(settings, make_client, convert_processes=1)  # a queue of two sync uploads
    held += [await RawUpload.begin(client, f"sync-{n}", sync=True) for n in range(2)]
    await until_held(client, 2)
    before = shed("sync")
    third = await client.post("/api/images?sync=true", data=form("sync-3"))
    assert (third.status, (await third.json())["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert third.headers["Retry-After"] == "1" and shed("sync") == before + 1
    assert (await client.post("/api/images", data=form("async-1"))).status == 200  # async uploads still come in
    assert [await upload.finish() for upload in held] == [200, 200]


async def test_a_chunked_body_past_the_bound_is_stopped_and_answered_503(
    settings: Settings, make_client: ClientFactory, held: list[RawUpload]
) -> None:
    one = len(multipart("x", images.png(300, 300)))
    client = await bounded(settings, make_client, max_inflight_bytes=one + 100)  # room for 100 bytes more
    held.append(await RawUpload.begin(client, "holder"))
    await until_held(client, 1)

    async def chunks() -> AsyncIterator[bytes]:
        body = multipart("chunked", images.png(300, 300))
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    r = await client.post(
        "/api/images", data=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert (r.status, (await r.json())["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert await held[0].finish() == 200


def form(uploader: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", io.BytesIO(images.png(64, 64)), filename="a.png", content_type="image/png")
    data.add_field("uploaderId", uploader)
    data.add_field("category", "POST")
    return data

"""Hostile input over real HTTP (issue 13): every class gets its contract answer, within bounded memory.

Each case is sent the way an attacker would, through `POST /api/images` (sync, so the conversion
runs inside the request) or the other routes, and asserts the status, the error code and that no
process grew past MAX_GROWTH_MB: the api (this test process) and its conversion processes.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import replace
from typing import Any

import aiomysql
import psutil
import pytest
from PIL import Image

from adapters.db import mariadb
from core import fields
from core.settings import Settings
from tests import images, services
from tests.integration.conftest import ClientFactory
from tests.integration.test_uploads import counts, form, post, stored_files
from tests.proxy import TcpProxy

pytestmark = pytest.mark.integration

MAX_GROWTH_MB = 768  # issue 13: no process grows by more than this for any single input


def _gif(frames: int, size: int) -> bytes:
    imgs = [Image.new("RGB", (size, size), (i % 256, 0, 0)) for i in range(frames)]
    return images.encode(imgs[0], "GIF", save_all=True, append_images=imgs[1:])


def _nested_svg(depth: int) -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * depth + b"</g>" * depth + b"</svg>"


def _peak_mb() -> dict[int, float]:
    """Peak resident memory of this process and of each of its children (the conversion processes)."""
    peaks = {0: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for child in psutil.Process().children(recursive=True):
        try:
            with open(f"/proc/{child.pid}/status") as status:
                hwm = next(line for line in status if line.startswith("VmHWM:"))
            peaks[child.pid] = int(hwm.split()[1]) / 1024
        except (OSError, StopIteration, psutil.Error):
            continue
    return peaks


def _bomb_png() -> bytes:
    """A 1x1 PNG whose IHDR claims 100,000 x 100,000 (10 GP), CRC fixed up."""
    import struct
    import zlib

    data = bytearray(images.png(1, 1))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 6, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


SYNC_CASES: list[tuple[str, str, bytes, int, str | None]] = [
    # (case, file name, bytes, status, code)
    ("animated GIF, 300 frames of 1000x1000", "anim.gif", _gif(300, 1000), 400, "IMAGE_DIMENSIONS_EXCEEDED"),
    ("decompression bomb: a PNG header of 100k x 100k", "bomb.png", _bomb_png(), 400, "IMAGE_DIMENSIONS_EXCEEDED"),
    ("SVG of 100,000 nested groups", "deep.svg", _nested_svg(100_000), 400, "INVALID_FILE_CONTENT"),
    ("SVG of 1,500 nested groups", "deep.svg", _nested_svg(1_500), 400, "INVALID_FILE_CONTENT"),
    (
        "SVG with an entity expansion",
        "lol.svg",
        b"<svg><!DOCTYPE x [<!ENTITY a 'a'>]></svg>",
        400,
        "INVALID_FILE_CONTENT",
    ),
    (
        "PHP behind a QuickTime atom, named .jpg",
        "shell.jpg",
        b"\0\0\0\x08free<?php system($_GET['c']); ?>",
        400,
        "INVALID_FILE_CONTENT",
    ),
    (
        "HTML behind an ftyp box, named .mp4",
        "page.mp4",
        b"\0\0\0\x18ftypisom\0\0\0\0isommp41<html></html>",
        400,
        "INVALID_FILE_CONTENT",
    ),
    ("a JPEG cut in half", "half.jpg", images.noisy_jpeg(400, 300)[:4000], 400, "INVALID_FILE_CONTENT"),
    ("a GIF/JAR polyglot", "poly.gif", b"GIF89a" + b"PK\x03\x04" + bytes(64), 400, "INVALID_FILE_CONTENT"),
    ("a traversal name", "../../etc/passwd.jpg", images.jpeg(), 400, "INVALID_FILE_NAME"),
    ("a file name of 300 characters", "a" * 300 + ".jpg", images.jpeg(), 400, "VALIDATION_ERROR"),
    ("a 16-bit grey PNG", "grey16.png", images.encode(Image.new("I;16", (64, 64), 40_000), "PNG"), 200, None),
    ("a valid MP4", "clip.mp4", images.mp4(), 200, None),
]


@pytest.mark.parametrize(("case", "name", "data", "status", "code"), SYNC_CASES, ids=[c[0] for c in SYNC_CASES])
async def test_hostile_upload_gets_its_contract_answer_within_bounded_memory(  # type: ignore[no-untyped-def]
    client, settings: Settings, pool: aiomysql.Pool, case: str, name: str, data: bytes, status: int, code: str | None
) -> None:
    before = _peak_mb()
    response = await post(client, form(("file", name, data)), "?sync=true")
    body: Any = await response.json()
    assert response.status == status, body
    if code is not None:
        assert body["code"] == code
        assert await counts(pool) == (0, 0, 0, 0) and stored_files(settings) == []
    after = _peak_mb()
    grown = {pid: after[pid] - before.get(pid, 30.0) for pid in after}  # a new process starts at ~30 MB
    assert max(grown.values()) < MAX_GROWTH_MB, grown


def _gif_of_one_byte_blocks(megabytes: int) -> bytes:
    """A valid 1x1 GIF whose one frame's data is split into one-byte sub-blocks, `megabytes` long."""
    head = images.encode(Image.new("P", (1, 1)), "GIF")
    at = head.index(b",")  # the image descriptor (10 bytes), then the LZW minimum code size
    return head[: at + 11] + b"\x01\x00" * (megabytes * 500_000) + b"\x00;"


async def test_a_gif_that_is_slow_to_walk_does_not_stall_the_event_loop(client) -> None:  # type: ignore[no-untyped-def]
    data = _gif_of_one_byte_blocks(9)  # walking its blocks takes ~0.9 s of CPU
    gaps: list[float] = []

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - before)

    beat = asyncio.create_task(heartbeat())
    try:
        response = await post(client, form(("file", "slow.gif", data)))
    finally:
        beat.cancel()
    assert response.status == 200, await response.text()
    assert max(gaps) < 0.3, f"the loop stalled for {max(gaps):.2f} s"


async def test_every_text_field_over_its_column_is_a_validation_error(client, pool) -> None:  # type: ignore[no-untyped-def]
    too_long_ref = "r" * (fields.REFERENCE_ID + 1)
    answers = [
        await post(client, form(("file", "a.jpg", images.jpeg()), uploader="u" * 1_000)),
        await post(client, form(("file", "a.jpg", images.jpeg()), category="P" * 40)),
        await client.post("/api/v1/images/confirm", json={"imageIds": ["x"], "referenceId": too_long_ref}),
        await client.post("/api/v1/images/confirm", json={"imageIds": ["i" * 300], "referenceId": "r"}),
        await client.post("/api/v1/images/confirm", json={"imageIds": [], "referenceId": too_long_ref}),
        await client.post(f"/api/v1/images/confirm/{too_long_ref}?imageId=x"),
        await client.post(f"/api/v1/images/confirm/{too_long_ref}?imageId="),
    ]
    assert [(r.status, (await r.json())["code"]) for r in answers] == [(400, "VALIDATION_ERROR")] * len(answers)
    assert await counts(pool) == (0, 0, 0, 0)


async def test_abusive_json_is_a_validation_error(client) -> None:  # type: ignore[no-untyped-def]
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (deep, b'{"imageIds": ' + deep + b', "referenceId": "r"}', b'{"imageIds": "x"}', b"\xff\xfe"):
        r = await client.post("/api/v1/images/confirm", data=body, headers={"Content-Type": "application/json"})
        assert (r.status, (await r.json())["code"]) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 400),  # a 100 KB header
        (b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # an 8 KB+ request line
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n", 400),  # TLS to a plain port
    ],
)
async def test_the_http_parsers_own_errors_get_the_json_error_body(
    client, caplog, request_bytes: bytes, status: int
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request_bytes)
    await writer.drain()
    head, _, body = (await asyncio.wait_for(reader.read(), 10)).partition(b"\r\n\r\n")
    writer.close()
    assert head.split(b" ")[1] == str(status).encode()
    assert b"content-type: application/json" in head.lower()
    assert b'"code":"VALIDATION_ERROR"' in body and b'"path":' in body
    # A client's bad bytes are not the server's error: no error-level traceback per request.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_405_keeps_its_allow_header_and_images_answers_404_for_any_bad_name(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/api/images")
    assert (r.status, (await r.json())["code"], r.headers.get("Allow")) == (405, "METHOD_NOT_ALLOWED", "POST")
    r = await client.get("/api/v1/images/confirm")  # not an image called "confirm"
    assert (r.status, r.headers.get("Allow")) == (405, "POST")
    for name in ("a" * 300 + ".webp", "PRODUCT/%00.webp", "../../etc/passwd", "_originals/x.jpg"):
        r = await client.get(f"/images/{name}")
        assert (r.status, (await r.json())["code"]) == (404, "NOT_FOUND"), name


async def test_while_mariadb_is_unreachable_requests_answer_503_and_the_log_says_so_once(
    settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory
) -> None:
    from structlog.testing import capture_logs

    proxy = TcpProxy(services.free_port(), settings.db_dsn.port)
    await proxy.start()
    client = await make_client(replace(settings, db_dsn=replace(settings.db_dsn, port=proxy.port)))
    await proxy.cut()
    with capture_logs() as logs:
        answers = [await post(client, form(("file", "a.jpg", images.jpeg()))) for _ in range(3)]
        answers.append(await client.post("/api/v1/images/confirm", json={"imageIds": ["x"], "referenceId": "r"}))
        answers.append(await client.get("/api/v1/images/x"))
    assert [(r.status, r.headers.get("Retry-After")) for r in answers] == [(503, "5")] * 5
    assert {(await r.json())["code"] for r in answers} == {"SERVICE_UNAVAILABLE"}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["dependency_unreachable"]
    assert stored_files(settings) == []  # nothing was sent, so nothing is in doubt: the files are gone
    await proxy.restore()

    async def recovered() -> bool:
        return (await post(client, form(("file", "a.jpg", images.jpeg())))).status == 200

    await services.eventually(recovered, timeout_s=20, what="uploads succeed once MariaDB is back")
    await mariadb.ping(pool)
    await proxy.cut()

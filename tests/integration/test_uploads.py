"""`POST /api/images` over real HTTP against real MariaDB (CONTRACT 2.1, issue 3)."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiomysql
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from api.app import create_app
from core import upload_rules
from core.settings import Settings
from tests import images
from tests.integration.conftest import ClientFactory, fetch_all

JPEG = images.jpeg()


BOUNDARY = "----image-server-test-boundary"


class Multipart:
    """A multipart/form-data body built byte by byte, with file names exactly as a browser sends them."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def form(
    *files: tuple[str, str | None, bytes], uploader: str | None = "u-1", category: str | None = "product"
) -> Multipart:
    chunks: list[bytes] = []
    for field, name, content in files:
        disposition = f'form-data; name="{field}"' + ("" if name is None else f'; filename="{name}"')
        chunks.append(
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    for field, value in (("uploaderId", uploader), ("category", category)):
        if value is not None:
            chunks.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return Multipart(b"".join(chunks))


async def post(client: TestClient, data: Multipart, query: str = ""):  # type: ignore[no-untyped-def]
    return await client.post("/api/images" + query, data=io.BytesIO(data.body), headers=data.headers)


async def counts(pool: aiomysql.Pool) -> tuple[int, int, int, int]:
    rows = await fetch_all(
        pool,
        "SELECT (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM storage_objects),"
        " (SELECT COUNT(*) FROM status_history), (SELECT COUNT(*) FROM outbox)",
    )
    return tuple(rows[0])  # type: ignore[return-value]


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in Path(settings.upload_dir).rglob("*") if p.is_file()]


async def test_single_upload_answers_processing_with_the_webp_url(client: TestClient, settings: Settings, pool) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(("file", "photo.jpg", JPEG)))
    body = await r.json()
    assert r.status == 200 and body["status"] == "PROCESSING"
    assert body["imageUrl"].startswith(settings.base_url + "PRODUCT/")
    assert body["imageUrl"].endswith(f"/{body['id']}.webp")
    row = await fetch_all(
        pool, "SELECT status, reference_type_id, uploader_id, image_url FROM images WHERE image_id = %s", body["id"]
    )
    assert row == [("TEMP", "PRODUCT", "u-1", body["imageUrl"])]


async def test_the_upload_transaction_writes_storage_history_and_the_outbox_row(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    body = await (await post(client, form(("file", "photo.JPG", JPEG)))).json()
    storage = await fetch_all(
        pool,
        "SELECT origin_size, origin_format_id, origin_location FROM storage_objects WHERE image_id = %s",
        body["id"],
    )
    assert storage[0][:2] == (len(JPEG), "JPEG")
    assert (Path(settings.upload_dir) / storage[0][2]).read_bytes() == JPEG
    assert await fetch_all(
        pool, "SELECT old_status, new_status FROM status_history WHERE image_id = %s", body["id"]
    ) == [(None, "TEMP")]
    ((topic, key, event_type, payload, status),) = await fetch_all(
        pool, "SELECT topic, message_key, event_type, payload, status FROM outbox"
    )
    envelope = json.loads(payload)
    assert (topic, key, event_type, status) == ("image-uploaded", body["id"], "IMAGE_UPLOADED", "PENDING")
    assert set(envelope) == {"eventId", "eventType", "timestamp", "payload"}
    assert envelope["payload"]["imageId"] == body["id"]
    assert envelope["payload"]["originKey"] == storage[0][2]
    assert envelope["payload"]["originFormat"] == "JPEG"


async def test_multi_upload_answers_an_array_in_part_order(client, pool) -> None:  # type: ignore[no-untyped-def]
    parts = [("files", f"p{n}.png", images.png(10 + n, 10)) for n in range(3)]
    r = await post(client, form(*parts))
    body = await r.json()
    assert r.status == 200 and [b["status"] for b in body] == ["PROCESSING"] * 3
    widths = [
        (await fetch_all(pool, "SELECT width FROM storage_objects WHERE image_id = %s", b["id"]))[0][0] for b in body
    ]
    assert widths == [10, 11, 12]


async def test_one_bad_part_stores_nothing(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    parts = [("files", "a.jpg", JPEG), ("files", "b.jpg", b"not an image at all"), ("files", "c.jpg", JPEG)]
    r = await post(client, form(*parts))
    assert (r.status, (await r.json())["code"]) == (400, "INVALID_FILE_CONTENT")
    assert await counts(pool) == (0, 0, 0, 0)
    assert stored_files(settings) == []


async def test_a_file_that_cannot_be_stored_is_image_save_failed_and_records_nothing(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    blocked = Path(settings.upload_dir) / upload_rules.ORIGINALS_DIR
    blocked.write_bytes(b"a file where the originals directory should be")
    try:
        r = await post(client, form(("files", "a.jpg", JPEG), ("files", "b.jpg", JPEG)))
        assert (r.status, (await r.json())["code"]) == (500, "IMAGE_SAVE_FAILED")
    finally:
        blocked.unlink()
    assert await counts(pool) == (0, 0, 0, 0)
    assert not any(p.is_file() for p in Path(settings.upload_dir).rglob("*"))


async def test_a_failed_transaction_leaves_no_row_and_no_file(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW"
            " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'"
        )
    try:
        r = await post(client, form(("files", "a.jpg", JPEG), ("files", "b.jpg", JPEG)))
        body = await r.json()
        assert (r.status, body["code"]) == (500, "INTERNAL_SERVER_ERROR")
        assert "injected" not in body["message"]
    finally:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("DROP TRIGGER fail_outbox")
    assert await counts(pool) == (0, 0, 0, 0)
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("parts", "uploader", "category", "code"),
    [
        ([("file", "a.jpg", JPEG)], None, "PRODUCT", "VALIDATION_ERROR"),
        ([("file", "a.jpg", JPEG)], "  ", "PRODUCT", "VALIDATION_ERROR"),
        ([("file", "a.jpg", JPEG)], "u", None, "REFERENCE_TYPE_NOT_FOUND"),
        ([("file", "a.jpg", JPEG)], "u", " ", "REFERENCE_TYPE_NOT_FOUND"),
        ([("file", "a.jpg", JPEG)], "u", "SHOES", "REFERENCE_TYPE_NOT_FOUND"),
        ([], "u", "PRODUCT", "VALIDATION_ERROR"),
        ([("file", "a.jpg", b"")], "u", "PRODUCT", "VALIDATION_ERROR"),
        ([("files", "a.jpg", JPEG), ("files", "b.jpg", b"")], "u", "PRODUCT", "VALIDATION_ERROR"),
        ([("file", "a.jpg", JPEG), ("files", "b.jpg", JPEG)], "u", "PRODUCT", "VALIDATION_ERROR"),
        ([("file", " ", JPEG)], "u", "PRODUCT", "INVALID_FILE_NAME"),
        ([("file", "..a.jpg", JPEG)], "u", "PRODUCT", "INVALID_FILE_NAME"),
        ([("file", "a\\\\b.jpg", JPEG)], "u", "PRODUCT", "INVALID_FILE_NAME"),
        ([("file", "dir/a.jpg", JPEG)], "u", "PRODUCT", "INVALID_FILE_NAME"),
        ([("file", "photo", JPEG)], "u", "PRODUCT", "FILE_EXTENSION_NOT_FOUND"),
        ([("file", "photo.", JPEG)], "u", "PRODUCT", "FILE_EXTENSION_NOT_FOUND"),
        ([("file", ".jpg", JPEG)], "u", "PRODUCT", "FILE_EXTENSION_NOT_FOUND"),
        ([("file", "a.php.jpg", JPEG)], "u", "PRODUCT", "INVALID_FILE_EXTENSION"),
        ([("file", "a.exe", JPEG)], "u", "PRODUCT", "INVALID_FILE_EXTENSION"),
        ([("file", "a.jpg", b"%PDF-1.7 not an image")], "u", "PRODUCT", "INVALID_FILE_CONTENT"),
        ([("files", "a.jpg", JPEG), ("files", "b.jpg", JPEG)], "u", "PROFILE", "NOT_ALLOWED_MULTIPLE_IMAGES"),
    ],
)
async def test_validation_table(client, pool, parts, uploader, category, code) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(*parts, uploader=uploader, category=category))
    body = await r.json()
    assert (r.status, body["code"]) == (400, code)
    assert set(body) == {"timestamp", "status", "code", "message", "path"} and body["path"] == "/api/images"
    assert await counts(pool) == (0, 0, 0, 0)


async def test_a_file_over_ten_megabytes_is_too_large(client, pool) -> None:  # type: ignore[no-untyped-def]
    big = JPEG + b"\0" * (10 * 1024 * 1024)
    r = await post(client, form(("file", "a.jpg", big)))
    assert (r.status, (await r.json())["code"]) == (400, "FILE_TOO_LARGE")
    assert await counts(pool) == (0, 0, 0, 0)


async def test_a_request_over_the_limit_is_413(settings, pool, make_client: ClientFactory) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(replace(settings, max_request_bytes=2 * 1024 * 1024, max_file_bytes=1024 * 1024))
    parts = [("files", f"{n}.jpg", JPEG + b"\0" * 900_000) for n in range(3)]
    r = await post(client, form(*parts))
    assert (r.status, (await r.json())["code"]) == (413, "REQUEST_TOO_LARGE")


async def test_dimensions_over_the_pixel_limit_are_refused(settings, pool, make_client: ClientFactory) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(replace(settings, max_image_pixels=64 * 32 - 1))
    r = await post(client, form(("file", "a.jpg", images.jpeg(64, 32))))
    assert (r.status, (await r.json())["code"]) == (400, "IMAGE_DIMENSIONS_EXCEEDED")


async def test_a_body_that_is_not_multipart_is_415(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/images", json={"file": "x"})
    assert (r.status, (await r.json())["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


async def test_a_malformed_multipart_body_is_400(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/images", data=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert (r.status, (await r.json())["code"]) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"garbage", f"multipart/form-data; boundary={BOUNDARY}"),
        (form(("file", "a.jpg", JPEG)).body.removesuffix(f"--{BOUNDARY}--\r\n".encode()), None),  # cut short
        (form(("file", "a.jpg", JPEG)).body, "multipart/form-data"),  # no boundary
    ],
    ids=["garbage", "no-closing-boundary", "no-boundary"],
)
async def test_a_broken_multipart_body_is_400_and_stores_nothing(client, pool, body, content_type) -> None:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": content_type or form().headers["Content-Type"]}
    r = await client.post("/api/images", data=body, headers=headers)
    assert (r.status, (await r.json())["code"]) == (400, "VALIDATION_ERROR")
    assert await counts(pool) == (0, 0, 0, 0)


async def test_a_form_field_over_64_kib_is_too_large(client, pool) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(("file", "a.jpg", JPEG), uploader="u" * (64 * 1024 + 1)))
    assert (r.status, (await r.json())["code"]) == (400, "FILE_TOO_LARGE")
    assert await counts(pool) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "sent",
    ["사진 %221%22.jpg", '사진 \\"1\\".jpg'],  # browsers (WHATWG: " as %22); curl and older clients (\\")
    ids=["percent-encoded-quote", "backslash-escaped-quote"],
)
async def test_a_utf8_file_name_as_clients_send_it_is_accepted(client, pool, sent) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(("file", sent, JPEG)))
    assert r.status == 200, await r.text()
    rows = await fetch_all(pool, "SELECT COUNT(*) FROM images")
    assert rows[0][0] == 1


async def test_sync_upload_converts_before_answering(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(("file", "a.jpg", images.jpeg(40, 30))), "?sync=true")
    body = await r.json()
    assert (r.status, body["status"]) == (200, "READY")
    rows = await fetch_all(pool, "SELECT status FROM images WHERE image_id = %s", body["id"])
    assert rows == [("READY",)]
    ((event_type,),) = await fetch_all(pool, "SELECT event_type FROM outbox")
    assert event_type == "IMAGE_READY"
    served = await client.get(
        body["imageUrl"].removeprefix(settings.base_url.removesuffix("images/")).replace("//", "/")
    )
    assert served.status == 200 and (await served.read())[8:12] == b"WEBP"
    assert served.content_type == "image/webp"
    assert "immutable" in served.headers["Cache-Control"]
    original = await client.get("/images/_originals/" + body["imageUrl"].removeprefix(settings.base_url))
    assert original.status == 404


async def test_sync_upload_that_cannot_be_decoded_writes_nothing(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    truncated = images.noisy_jpeg(128, 128)[:600]
    r = await post(client, form(("file", "a.jpg", truncated)), "?sync=true")
    assert (r.status, (await r.json())["code"]) == (400, "INVALID_FILE_CONTENT")
    assert await counts(pool) == (0, 0, 0, 0)
    assert stored_files(settings) == []


async def test_get_image_shows_status_and_sizes(client, pool) -> None:  # type: ignore[no-untyped-def]
    up = await (await post(client, form(("file", "a.jpg", JPEG)))).json()
    body = await (await client.get(f"/api/v1/images/{up['id']}")).json()
    assert (body["status"], body["originSize"], body["originFormat"], body["width"]) == ("TEMP", len(JPEG), "JPEG", 64)
    missing = await client.get("/api/v1/images/nope")
    assert (missing.status, (await missing.json())["code"]) == (404, "IMAGE_NOT_FOUND")


async def test_one_log_line_per_request_with_the_image_ids(client, pool) -> None:  # type: ignore[no-untyped-def]
    with capture_logs() as logs:
        up = await (await post(client, form(("file", "a.jpg", JPEG)))).json()
    lines = [entry for entry in logs if entry["event"] == "request_handled"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["method"], line["path"], line["status"], line["image_ids"]) == ("POST", "/api/images", 200, [up["id"]])
    assert line["duration_ms"] >= 0 and "code" not in line


async def test_an_error_answer_s_log_line_carries_its_code(client, pool) -> None:  # type: ignore[no-untyped-def]
    with capture_logs() as logs:
        r = await post(client, form(("file", "a.exe", JPEG)))
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert (line["status"], line["code"]) == (r.status, (await r.json())["code"])


async def hang_up_mid_upload(host: str, port: int) -> None:
    head = (
        "POST /api/images HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    ).encode()
    _, writer = await asyncio.open_connection(host, port)
    writer.write(head + JPEG[:1000])
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def request_line(logs: list[dict[str, Any]]) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 10
    while not (lines := [e for e in logs if e["event"] == "request_handled"]):
        assert asyncio.get_running_loop().time() < deadline, f"the request was never logged: {logs}"
        await asyncio.sleep(0.01)
    (line,) = lines
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    return line


async def test_a_client_that_hangs_up_mid_upload_is_logged_as_aborted_not_as_a_failure(settings, pool) -> None:  # type: ignore[no-untyped-def]
    # Served as `python -m api` serves (run_app: handlers are not cancelled when a client leaves).
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        with capture_logs() as logs:
            await hang_up_mid_upload("127.0.0.1", port)
            line = await request_line(logs)
    finally:
        await runner.cleanup()
    assert (line["status"], line["aborted"]) == (400, True)
    assert await fetch_all(pool, "SELECT 1 FROM images") == []


async def test_a_cancelled_request_still_gets_its_log_line(client, pool) -> None:  # type: ignore[no-untyped-def]
    # The test server cancels a handler whose client left, as a stopping server does.
    with capture_logs() as logs:
        await hang_up_mid_upload(client.server.host, client.server.port)
        line = await request_line(logs)
    assert (line["status"], line["cancelled"]) == (499, True)
    assert await fetch_all(pool, "SELECT 1 FROM images") == []

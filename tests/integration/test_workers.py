"""Conversion and upload-command handling against real MariaDB, disk and broker (issue 5)."""

from __future__ import annotations

import base64
import io
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiomysql
import pytest
from PIL import Image

from adapters.ids import new_id
from core.events import UPLOAD_REQUESTED, UPLOAD_REQUESTED_TOPIC, Envelope
from core.settings import Settings
from core.upload import IncomingFile, UploadForm
from core.upload import upload as upload_images
from tests import images
from tests.integration.conftest import fetch_all
from workers import commands, handlers


async def upload(res: handlers.Resources, data: bytes, name: str = "a.jpg") -> tuple[str, bytes, bytes]:
    """Upload through the real upload path (a worker's ports); return (image id, outbox key, outbox value)."""
    (img,) = await upload_images(
        UploadForm("u", "POST", single=[IncomingFile(name, data)]),
        references=res.references.data,
        settings=res.settings,
        ports=res.uploads,
        now=datetime.now(UTC),
        new_id=new_id,
    )
    ((key, value),) = await fetch_all(
        res.pool,
        "SELECT message_key, payload FROM outbox WHERE message_key = %s AND topic = 'image-uploaded'",
        img.image_id,
    )
    return img.image_id, key.encode(), value.encode()


async def image_row(pool: aiomysql.Pool, image_id: str) -> tuple:
    rows = await fetch_all(
        pool,
        "SELECT i.status, i.image_url, s.storage_location, s.converted_format_id, s.converted_size, s.origin_location"
        " FROM images i JOIN storage_objects s USING (image_id) WHERE image_id = %s",
        image_id,
    )
    return rows[0]


async def test_an_upload_reaches_ready_with_a_webp_of_the_same_size_at_its_url(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg(120, 80))
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    status, url, location, fmt, size, origin = await image_row(resources.pool, image_id)
    assert (status, fmt, origin) == ("READY", "WEBP", None)
    assert url == resources.settings.base_url + location and location.endswith(f"{image_id}.webp")
    out = Image.open(io.BytesIO(resources.storage.files.read(location)))
    assert (out.format, out.size, size) == ("WEBP", (120, 80), resources.storage.files.path(location).stat().st_size)
    ((event_type, payload),) = await fetch_all(
        resources.pool, "SELECT event_type, payload FROM outbox WHERE topic = 'image-processed'"
    )
    assert event_type == "IMAGE_READY" and json.loads(payload)["payload"]["imageUrl"] == url
    history = await fetch_all(
        resources.pool, "SELECT old_status, new_status FROM status_history WHERE image_id = %s ORDER BY id", image_id
    )
    assert history == [(None, "TEMP"), ("TEMP", "READY")]


async def test_a_redelivered_message_changes_nothing(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg())
    await handlers.handle_uploaded(resources, key, value)
    before = await image_row(resources.pool, image_id)
    mtime = resources.storage.files.path(before[2]).stat().st_mtime_ns
    assert await handlers.handle_uploaded(resources, key, value) == "skipped"
    assert await image_row(resources.pool, image_id) == before
    assert resources.storage.files.path(before[2]).stat().st_mtime_ns == mtime  # not written again
    assert len(await fetch_all(resources.pool, "SELECT 1 FROM outbox WHERE topic = 'image-processed'")) == 1


async def test_an_undecodable_upload_ends_failed_with_the_reason(resources) -> None:  # type: ignore[no-untyped-def]
    data = images.noisy_jpeg(256, 256)
    image_id, key, value = await upload(resources, data[:700])
    assert await handlers.handle_uploaded(resources, key, value) == "FAILED"
    ((reason,),) = await fetch_all(
        resources.pool, "SELECT reason FROM status_history WHERE image_id = %s AND new_status = 'FAILED'", image_id
    )
    assert "undecodable" in reason


async def test_a_wider_than_webp_image_is_stored_as_the_original_with_its_url_corrected(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.png(17_000, 2, mode="RGB"), name="wide.png")
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    status, url, location, fmt, *_ = await image_row(resources.pool, image_id)
    assert (status, fmt) == ("READY", "PNG") and url.endswith(f"{image_id}.png") and location.endswith(".png")
    assert resources.storage.files.exists(location)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"eventId": "x", "eventType": "IMAGE_UPLOADED", "timestamp": "2025-01-01T00:00:00Z", "payload": {}}',
    ],
)
async def test_a_poison_message_is_recorded_and_the_next_one_processed(resources, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    assert await handlers.handle_uploaded(resources, b"k", raw) == "poison"
    assert await fetch_all(resources.pool, "SELECT outcome FROM processed_events") == [("POISON",)]
    image_id, key, value = await upload(resources, images.jpeg())
    assert await handlers.handle_uploaded(resources, key, value) == "READY"


async def test_a_message_whose_row_is_gone_is_skipped(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg())
    async with resources.pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM images WHERE image_id = %s", (image_id,))
    assert await handlers.handle_uploaded(resources, key, value) == "skipped"


async def test_a_message_whose_original_is_missing_ends_failed(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg())
    origin = (await image_row(resources.pool, image_id))[5]
    resources.storage.files.remove(origin)
    assert await handlers.handle_uploaded(resources, key, value) == "FAILED"


def command(image_id: str, **payload: object) -> bytes:
    body = {"imageId": image_id, "category": "PRODUCT", "uploaderId": "svc-1", "fileName": "a.jpg"} | payload
    return Envelope(
        str(uuid.uuid4()), UPLOAD_REQUESTED, datetime.now(UTC), UPLOAD_REQUESTED_TOPIC, image_id, body
    ).to_bytes()


async def test_an_upload_command_with_content_is_stored_once(resources) -> None:  # type: ignore[no-untyped-def]
    image_id = str(uuid.uuid4())
    raw = command(image_id, content=base64.b64encode(images.jpeg()).decode())
    assert await commands.handle_upload_command(resources, image_id.encode(), raw) == "accepted"
    assert (
        await commands.handle_upload_command(
            resources, image_id.encode(), command(image_id, content=base64.b64encode(images.jpeg()).decode())
        )
        == "skipped"
    )
    assert await fetch_all(resources.pool, "SELECT status, reference_type_id FROM images") == [("TEMP", "PRODUCT")]
    ((key, value),) = await fetch_all(
        resources.pool, "SELECT message_key, payload FROM outbox WHERE topic = 'image-uploaded'"
    )
    assert await handlers.handle_uploaded(resources, key.encode(), value.encode()) == "READY"


async def test_an_upload_command_with_a_disallowed_url_fails_cleanly(resources) -> None:  # type: ignore[no-untyped-def]
    image_id = str(uuid.uuid4())
    raw = command(image_id, sourceUrl="http://169.254.169.254/latest/meta-data")
    assert await commands.handle_upload_command(resources, image_id.encode(), raw) == "rejected"
    assert await fetch_all(resources.pool, "SELECT 1 FROM images") == []
    ((event_type, payload),) = await fetch_all(
        resources.pool, "SELECT event_type, payload FROM outbox WHERE topic = 'image-processed'"
    )
    body = json.loads(payload)["payload"]
    assert event_type == "IMAGE_FAILED" and body["imageId"] == image_id and "disabled" in body["reason"]


async def test_an_upload_command_is_validated_like_http(resources) -> None:  # type: ignore[no-untyped-def]
    image_id = str(uuid.uuid4())
    raw = command(image_id, fileName="a.php.jpg", content=base64.b64encode(images.jpeg()).decode())
    assert await commands.handle_upload_command(resources, image_id.encode(), raw) == "rejected"
    ((payload,),) = await fetch_all(resources.pool, "SELECT payload FROM outbox WHERE topic = 'image-processed'")
    assert "INVALID_FILE_EXTENSION" in json.loads(payload)["payload"]["reason"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"uploaderId": "u" * 1_000}, "VALIDATION_ERROR"),  # once recorded as poison with no answer
        ({"fileName": "a" * 300 + ".jpg"}, "VALIDATION_ERROR"),
        ({"category": "P" * 40}, "VALIDATION_ERROR"),
        ({"fileName": "shell.jpg", "raw": b"\0\0\0\x08free<?php system($_GET['c']); ?>"}, "INVALID_FILE_CONTENT"),
        ({"fileName": "page.mp4", "raw": b"\0\0\0\x18ftypisom\0\0\0\0isommp41<html></html>"}, "INVALID_FILE_CONTENT"),
    ],
)
async def test_a_hostile_upload_command_is_answered_with_image_failed(resources, payload, code) -> None:  # type: ignore[no-untyped-def]
    image_id = str(uuid.uuid4())
    content = payload.pop("raw", images.jpeg())
    raw = command(image_id, content=base64.b64encode(content).decode(), **payload)
    assert await commands.handle_upload_command(resources, image_id.encode(), raw) == "rejected"
    assert await fetch_all(resources.pool, "SELECT 1 FROM images") == []
    ((event_type, value),) = await fetch_all(
        resources.pool, "SELECT event_type, payload FROM outbox WHERE topic = 'image-processed'"
    )
    assert event_type == "IMAGE_FAILED" and json.loads(value)["payload"]["reason"].startswith(code)


async def test_an_upload_command_whose_image_id_is_not_a_uuid_is_still_answered(resources) -> None:  # type: ignore[no-untyped-def]
    raw = command("not-a-uuid", content=base64.b64encode(images.jpeg()).decode())
    assert await commands.handle_upload_command(resources, b"not-a-uuid", raw) == "rejected"
    ((key, value),) = await fetch_all(
        resources.pool, "SELECT message_key, payload FROM outbox WHERE topic = 'image-processed'"
    )
    assert key == "not-a-uuid" and "VALIDATION_ERROR" in json.loads(value)["payload"]["reason"]


async def test_a_url_on_the_allow_list_is_fetched(resources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    data = images.jpeg()

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=data)

    async def away(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://elsewhere.invalid/x.jpg")

    app = web.Application()
    app.router.add_get("/img.jpg", image)
    app.router.add_get("/away", away)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        res = replace(resources, settings=replace(resources.settings, fetch_allowed_hosts=("127.0.0.1",)))
        ok_id, away_id = str(uuid.uuid4()), str(uuid.uuid4())
        assert (
            await commands.handle_upload_command(res, b"k", command(ok_id, sourceUrl=str(server.make_url("/img.jpg"))))
            == "accepted"
        )
        assert (
            await commands.handle_upload_command(res, b"k", command(away_id, sourceUrl=str(server.make_url("/away"))))
            == "rejected"
        )
        assert await fetch_all(res.pool, "SELECT image_id FROM images") == [(ok_id,)]
    finally:
        await server.close()


async def test_an_unforeseen_error_is_recorded_and_the_stream_goes_on(resources) -> None:  # type: ignore[no-untyped-def]
    async def broken(res, key, raw):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug nobody foresaw")

    assert await handlers.guarded(resources, "image-converter", "image-uploaded", b"k", b"v", broken) == "poison"
    ((outcome, detail),) = await fetch_all(resources.pool, "SELECT outcome, detail FROM processed_events")
    assert outcome == "POISON" and "a bug nobody foresaw" in detail
    image_id, key, value = await upload(resources, images.jpeg())
    assert (
        await handlers.guarded(resources, "image-converter", "image-uploaded", key, value, handlers.handle_uploaded)
        == "READY"
    )


async def test_a_video_keeps_the_url_it_was_given_at_upload(resources) -> None:  # type: ignore[no-untyped-def]
    video = images.mp4(b"mp42")
    image_id, key, value = await upload(resources, video, name="clip.mp4")
    ((url_at_upload,),) = await fetch_all(resources.pool, "SELECT image_url FROM images WHERE image_id = %s", image_id)
    assert url_at_upload.endswith(f"{image_id}.mp4")
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    status, url, location, fmt, *_ = await image_row(resources.pool, image_id)
    assert (status, url, fmt) == ("READY", url_at_upload, "MP4")
    assert resources.storage.files.read(location) == video


async def test_a_dead_conversion_process_is_replaced_and_the_image_still_converted(resources) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    first = await resources.converter.run(os.getpid)
    os.kill(first, signal.SIGKILL)  # as the OOM killer would
    image_id, key, value = await upload(resources, images.jpeg())
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    assert await resources.converter.run(os.getpid) != first


async def test_conversion_processes_keep_image_memory_between_conversions(resources) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from adapters.images.process_pool import PILLOW_BLOCKS_KEPT

    assert Image.core.get_blocks_max() != PILLOW_BLOCKS_KEPT  # this process has Pillow's default
    assert await resources.converter.run(Image.core.get_blocks_max) == PILLOW_BLOCKS_KEPT


async def test_an_image_whose_conversion_never_finishes_ends_failed_after_its_attempts(resources) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import time

    from tests import services

    image_id, key, value = await upload(resources, images.jpeg())
    blocker = asyncio.ensure_future(resources.converter.run(time.sleep, 60))  # holds the only process
    try:
        for attempt in range(1, resources.settings.convert_max_attempts + 1):
            # Each delivery dies (cancelled, as its worker would be killed) while its conversion waits.
            delivery = asyncio.ensure_future(handlers.handle_uploaded(resources, key, value))

            async def counted(n: int = attempt) -> bool:
                rows = await fetch_all(
                    resources.pool, "SELECT attempts FROM conversion_attempts WHERE image_id = %s", image_id
                )
                return rows == [(n,)]

            await services.eventually(counted, timeout_s=10, what=f"attempt {attempt} to be counted")
            delivery.cancel()
            with pytest.raises(asyncio.CancelledError):
                await delivery
    finally:
        blocker.cancel()
    assert await handlers.handle_uploaded(resources, key, value) == "FAILED"
    (reason,) = await fetch_all(
        resources.pool, "SELECT reason FROM status_history WHERE image_id = %s AND new_status = 'FAILED'", image_id
    )
    assert reason == (
        f"conversion abandoned: {resources.settings.convert_max_attempts} attempts never finished (the worker stopped each time)",
    )
    assert await handlers.handle_uploaded(resources, key, value) == "skipped"  # and it stays answered


async def test_a_finished_conversion_counts_one_attempt(resources) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.jpeg())
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    assert await handlers.handle_uploaded(resources, key, value) == "skipped"
    assert await fetch_all(
        resources.pool, "SELECT attempts FROM conversion_attempts WHERE image_id = %s", image_id
    ) == [(1,)]


async def test_the_workers_kafka_consumer_waits_at_most_the_setting(settings: Settings) -> None:
    """faust-streaming fixes the fetch wait at 1500 ms; the worker's consumer takes the setting."""
    from workers.app import create_app

    app = create_app(replace(settings, worker_fetch_max_wait_ms=42))
    thread = app.consumer._thread  # a service thread with an event loop of its own, never started here
    consumer = thread._create_worker_consumer(app.transport)  # built, not started
    try:
        assert consumer._fetch_max_wait_ms == 42
    finally:
        await consumer.stop()
        thread.thread_loop.close()

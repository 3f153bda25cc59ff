"""Variants through the real worker handler, the sync upload and the reads, on MariaDB and files."""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import replace
from datetime import timedelta

from PIL import Image

from adapters.db.sweeps import sweep_orphans
from core.variants import parse_widths
from tests import images
from tests.integration.conftest import fetch_all
from tests.integration.test_uploads import form, post
from tests.integration.test_workers import upload
from workers import handlers


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def test_a_conversion_stores_records_and_announces_each_variant(resources, pool, client) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.noisy_jpeg(700, 350))  # a POST: 640 and 1280
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    rows = await fetch_all(
        pool,
        "SELECT width, height, storage_location, image_url, size FROM image_variants WHERE image_id = %s",
        image_id,
    )
    ((width, height, location, url, size),) = rows  # 1280 would be an upscale
    assert (width, height) == (640, 320) and location.endswith(f"/{image_id}_640w.webp")
    assert url == resources.settings.base_url + location
    stored = resources.storage.files.read(location)
    assert len(stored) == size and size_of(stored) == (640, 320)

    ((payload,),) = await fetch_all(
        pool, "SELECT payload FROM outbox WHERE message_key = %s AND event_type = 'IMAGE_READY'", image_id
    )
    ready = json.loads(payload)["payload"]
    assert (ready["width"], ready["height"]) == (700, 350)
    assert ready["variants"] == [{"width": 640, "height": 320, "imageUrl": url}]

    body = await (await client.get(f"/api/v1/images/{image_id}")).json()
    assert (body["width"], body["height"], body["variants"]) == (700, 350, ready["variants"])


async def test_a_sync_upload_answers_after_making_its_variants(client, settings, pool) -> None:  # type: ignore[no-untyped-def]
    r = await post(client, form(("file", "a.jpg", images.noisy_jpeg(400, 300))), "?sync=true")  # PRODUCT
    body = await r.json()
    assert (r.status, body["status"]) == (200, "READY")
    details = await (await client.get(f"/api/v1/images/{body['id']}")).json()
    assert [(v["width"], v["height"]) for v in details["variants"]] == [(320, 240)]
    served = await client.get("/images/" + details["variants"][0]["imageUrl"].removeprefix(settings.base_url))
    assert served.status == 200 and size_of(await served.read()) == (320, 240)
    ((payload,),) = await fetch_all(pool, "SELECT payload FROM outbox WHERE event_type = 'IMAGE_READY'")
    assert json.loads(payload)["payload"]["variants"] == details["variants"]


async def test_a_type_without_widths_gets_no_variants(resources, pool) -> None:  # type: ignore[no-untyped-def]
    resources.settings = replace(resources.settings, variant_widths=parse_widths("POST="))
    image_id, key, value = await upload(resources, images.noisy_jpeg(900, 600))
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    assert await fetch_all(pool, "SELECT 1 FROM image_variants WHERE image_id = %s", image_id) == []


async def test_the_orphan_sweep_keeps_recorded_variants_and_removes_unrecorded_ones(resources, pool) -> None:  # type: ignore[no-untyped-def]
    image_id, key, value = await upload(resources, images.noisy_jpeg(700, 350))
    assert await handlers.handle_uploaded(resources, key, value) == "READY"
    ((location,),) = await fetch_all(pool, "SELECT storage_location FROM image_variants WHERE image_id = %s", image_id)
    leftover = location.replace("_640w", "_1280w")  # a variant no row names (a conversion cut short, say)
    resources.storage.files.write(leftover, b"x")
    for k in (location, leftover):
        os.utime(resources.storage.files.path(k), (time.time() - 7200,) * 2)
    await sweep_orphans(pool, resources.storage, older_than=timedelta(hours=1))
    assert (resources.storage.files.exists(location), resources.storage.files.exists(leftover)) == (True, False)

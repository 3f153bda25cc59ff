"""Confirm endpoints over HTTP with real MariaDB, reading the events back from the broker (issue 6)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiomysql
import pytest
from aiohttp.test_utils import TestClient

from adapters.kafka.client import create_producer
from core.images import ImageStatus
from core.settings import Settings
from outbox.relay import Relay
from tests.integration.conftest import fetch_all
from tests.kafka_reader import Message, read_messages


@pytest.fixture
async def relay(settings: Settings, pool: aiomysql.Pool) -> AsyncIterator[Relay]:
    r = Relay(settings, pool, create_producer(settings))
    task = asyncio.create_task(r.run())
    yield r
    r.stop()
    await asyncio.wait_for(task, 20)
    await r.close()


async def make_image(
    pool: aiomysql.Pool, kind: str, status: ImageStatus = ImageStatus.READY, ref: str | None = None
) -> str:
    image_id = str(uuid.uuid4())
    now = datetime.now(UTC).replace(tzinfo=None)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO images (image_id, status, reference_type_id, reference_id, image_url, uploader_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, 'u', %s, %s)",
            (image_id, status.value, kind, ref, f"http://img/{kind}/{image_id}.webp", now, now),
        )
        await cur.execute(
            "INSERT INTO storage_objects (image_id, storage_location, origin_size, converted_size, origin_format_id,"
            " converted_format_id, width, height) VALUES (%s, %s, 10, 5, 'JPG', 'WEBP', 800, 600)",
            (image_id, f"{kind}/{image_id}.webp"),
        )
        for width, height in ((64, 48), (256, 192)):
            await cur.execute(
                "INSERT INTO image_variants (image_id, width, height, storage_location, image_url, size)"
                " VALUES (%s, %s, %s, %s, %s, 3)",
                (
                    image_id,
                    width,
                    height,
                    f"{kind}/{image_id}_{width}w.webp",
                    f"http://img/{kind}/{image_id}_{width}w.webp",
                ),
            )
    return image_id


def sizes(kind: str, image_id: str) -> dict:
    """The width, height and variants make_image stored, as the events carry them."""
    variants = [(64, 48), (256, 192)]
    return {
        "width": 800,
        "height": 600,
        "variants": [
            {"width": w, "height": h, "imageUrl": f"http://img/{kind}/{image_id}_{w}w.webp"} for w, h in variants
        ],
    }


async def batch(client: TestClient, ref: str, ids: list[str]):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/images/confirm", json={"imageIds": ids, "referenceId": ref})


async def single(client: TestClient, ref: str, image_id: str | None):  # type: ignore[no-untyped-def]
    params = {} if image_id is None else {"imageId": image_id}
    return await client.post(f"/api/v1/images/confirm/{ref}", params=params)


async def events(settings: Settings, topic: str, ref: str, count: int, settle_s: float = 1.0) -> list[Message]:
    return await read_messages(
        settings.kafka_bootstrap, topic, match=lambda m: m.key == ref, count=count, settle_s=settle_s
    )


async def statuses(pool: aiomysql.Pool, ids: list[str]) -> list[str]:
    rows = dict(
        await fetch_all(
            pool, f"SELECT image_id, status FROM images WHERE image_id IN ({','.join(['%s'] * len(ids))})", *ids
        )
    )
    return [rows[i] for i in ids]


async def sequence(pool: aiomysql.Pool, kind: str, ref: str) -> list[str]:
    rows = await fetch_all(
        pool,
        "SELECT image_id FROM image_sequence WHERE reference_type_id = %s AND reference_id = %s ORDER BY seq_number",
        kind,
        ref,
    )
    return [r[0] for r in rows]


def ref() -> str:
    return f"ref-{uuid.uuid4().hex[:10]}"


async def test_first_single_confirm_announces_image_changed(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id, image = ref(), await make_image(pool, "PROFILE")
    assert (await single(client, r_id, image)).status == 200
    (msg,) = await events(settings, "profile-image-changed", r_id, 1)
    assert msg.value["eventType"] == "IMAGE_CHANGED"
    assert msg.value["payload"] == {
        "referenceId": r_id,
        "imageId": image,
        "imageUrl": f"http://img/PROFILE/{image}.webp",
        **sizes("PROFILE", image),  # additions: the fields above keep their names and meaning
    }
    assert await statuses(pool, [image]) == ["CONFIRMED"]


async def test_a_replacement_deletes_the_previous_image(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    old, new = await make_image(pool, "USER_BACKGROUND"), await make_image(pool, "USER_BACKGROUND")
    await single(client, r_id, old)
    await single(client, r_id, new)
    msgs = await events(settings, "user_background-image-changed", r_id, 2)
    assert [m.value["payload"]["imageId"] for m in msgs] == [old, new]
    assert await statuses(pool, [old, new]) == ["DELETED", "CONFIRMED"]


async def test_the_same_single_image_again_is_a_noop(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id, image = ref(), await make_image(pool, "CATEGORY")
    await single(client, r_id, image)
    assert (await single(client, r_id, image)).status == 200
    assert len(await events(settings, "category-image-changed", r_id, 1, settle_s=1.5)) == 1


async def test_batch_confirm_keeps_list_order(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    ids = [await make_image(pool, "PRODUCT") for _ in range(3)]
    order = [ids[2], ids[0], ids[1]]
    assert (await batch(client, r_id, order)).status == 200
    (msg,) = await events(settings, "product-image-changed", r_id, 1)
    assert msg.value["eventType"] == "IMAGES_CHANGED"
    assert [(i["imageId"], i["seqNumber"], i["referenceId"]) for i in msg.value["payload"]["images"]] == [
        (order[0], 0, r_id),
        (order[1], 1, r_id),
        (order[2], 2, r_id),
    ]
    for listed, image_id in zip(msg.value["payload"]["images"], order, strict=True):
        assert {k: listed[k] for k in ("width", "height", "variants")} == sizes("PRODUCT", image_id)
        assert listed["imageUrl"] == f"http://img/PRODUCT/{image_id}.webp"
    assert await sequence(pool, "PRODUCT", r_id) == order


async def test_partial_update_and_reorder(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    a, b, c, d = [await make_image(pool, "POST") for _ in range(4)]
    await batch(client, r_id, [a, b, c])
    await batch(client, r_id, [c, d, a])
    msgs = await events(settings, "post-image-changed", r_id, 2)
    assert [i["imageId"] for i in msgs[1].value["payload"]["images"]] == [c, d, a]
    assert await statuses(pool, [a, b, c, d]) == ["CONFIRMED", "DELETED", "CONFIRMED", "CONFIRMED"]
    assert await sequence(pool, "POST", r_id) == [c, d, a]


async def test_the_same_list_again_publishes_nothing(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    ids = [await make_image(pool, "BANNER") for _ in range(2)]
    await batch(client, r_id, ids)
    assert (await batch(client, r_id, ids)).status == 200
    assert len(await events(settings, "banner-image-changed", r_id, 1, settle_s=1.5)) == 1


@pytest.mark.parametrize("endpoint", ["batch", "single"])
async def test_delete_all_announces_images_deleted(client, pool, settings, relay, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    ids = [await make_image(pool, "PRODUCT") for _ in range(2)]
    await batch(client, r_id, ids)
    r = await (batch(client, r_id, []) if endpoint == "batch" else single(client, r_id, ""))
    assert r.status == 200
    msgs = await events(settings, "product-image-changed", r_id, 2)
    assert (msgs[1].value["eventType"], msgs[1].value["payload"]) == (
        "IMAGES_DELETED",
        {"referenceId": r_id, "images": []},
    )
    assert await statuses(pool, ids) == ["DELETED", "DELETED"]
    assert await sequence(pool, "PRODUCT", r_id) == []


@pytest.mark.parametrize("endpoint", ["batch", "single"])
async def test_delete_all_on_an_empty_reference_publishes_nothing(client, pool, settings, relay, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    r = await (batch(client, r_id, []) if endpoint == "batch" else single(client, r_id, ""))
    assert r.status == 200
    assert await fetch_all(pool, "SELECT 1 FROM outbox") == []


async def test_delete_all_is_scoped_to_a_reference_type_when_given(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    product, post = await make_image(pool, "PRODUCT"), await make_image(pool, "POST")
    await batch(client, r_id, [product])
    await batch(client, r_id, [post])
    r = await client.post("/api/v1/images/confirm", json={"imageIds": [], "referenceId": r_id, "referenceType": "post"})
    assert r.status == 200
    assert await statuses(pool, [product, post]) == ["CONFIRMED", "DELETED"]


ERROR_CASES = [
    ("IMAGE_NOT_FOUND", 404),
    ("IMAGE_PROCESSING_IN_PROGRESS", 409),
    ("IMAGE_PROCESSING_FAILED", 500),
    ("INVALID_IMAGE_STATUS", 400),
    ("IMAGE_ALREADY_CONFIRMED", 400),
    ("NOT_ALLOWED_MULTIPLE_IMAGES", 400),
    ("IMAGE_COUNT_EXCEEDED", 400),
    ("INVALID_IMAGE_SEQUENCE", 400),
    ("INVALID_REFERENCE", 400),
]


async def _case_ids(pool: aiomysql.Pool, code: str) -> list[str]:
    if code == "IMAGE_NOT_FOUND":
        return [await make_image(pool, "PRODUCT"), "no-such-image"]
    if code == "IMAGE_PROCESSING_IN_PROGRESS":
        return [await make_image(pool, "PRODUCT", ImageStatus.TEMP)]
    if code == "IMAGE_PROCESSING_FAILED":
        return [await make_image(pool, "PRODUCT", ImageStatus.FAILED)]
    if code == "INVALID_IMAGE_STATUS":
        return [await make_image(pool, "PRODUCT", ImageStatus.DELETED, ref="old")]
    if code == "IMAGE_ALREADY_CONFIRMED":
        return [await make_image(pool, "PRODUCT", ImageStatus.CONFIRMED, ref="someone-else")]
    if code == "NOT_ALLOWED_MULTIPLE_IMAGES":
        return [await make_image(pool, "PROFILE"), await make_image(pool, "PROFILE")]
    if code == "IMAGE_COUNT_EXCEEDED":
        return [await make_image(pool, "PRODUCT") for _ in range(11)]
    if code == "INVALID_IMAGE_SEQUENCE":
        image = await make_image(pool, "PRODUCT")
        return [image, image]
    return [await make_image(pool, "PRODUCT"), await make_image(pool, "POST")]


@pytest.mark.parametrize(("code", "status"), ERROR_CASES)
async def test_every_error_case_changes_nothing_and_publishes_nothing(client, pool, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    keep = await make_image(pool, "PRODUCT")
    assert (await batch(client, r_id, [keep])).status == 200
    before = await fetch_all(pool, "SELECT image_id, status, reference_id FROM images ORDER BY image_id")
    outbox_before = await fetch_all(pool, "SELECT COUNT(*) FROM outbox")
    history_before = await fetch_all(pool, "SELECT COUNT(*) FROM status_history")

    r = await batch(client, r_id, await _case_ids(pool, code))
    body = await r.json()
    assert (r.status, body["code"]) == (status, code)
    after = await fetch_all(pool, "SELECT image_id, status, reference_id FROM images ORDER BY image_id")
    assert [row for row in after if row in before] == before
    assert await fetch_all(pool, "SELECT COUNT(*) FROM outbox") == outbox_before
    assert await fetch_all(pool, "SELECT COUNT(*) FROM status_history") == history_before
    assert await sequence(pool, "PRODUCT", r_id) == [keep]


@pytest.mark.parametrize(
    ("path", "params", "body", "status", "code"),
    [
        ("/api/v1/images/confirm/r1", {}, None, 400, "VALIDATION_ERROR"),
        ("/api/v1/images/confirm/r1", {"imageId": "   "}, None, 400, "VALIDATION_ERROR"),
        ("/api/v1/images/confirm", {}, b"{not json", 400, "VALIDATION_ERROR"),
        ("/api/v1/images/confirm", {}, b'{"referenceId": "r"}', 400, "VALIDATION_ERROR"),
        ("/api/v1/images/confirm", {}, b'{"imageIds": ["a"], "referenceId": " "}', 400, "VALIDATION_ERROR"),
        ("/api/v1/images/confirm", {}, b'{"imageIds": ["a", ""], "referenceId": "r"}', 400, "VALIDATION_ERROR"),
    ],
)
async def test_malformed_confirm_requests(client, path, params, body, status, code) -> None:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"} if body is not None else {}
    r = await client.post(path, params=params, data=body, headers=headers)
    assert (r.status, (await r.json())["code"]) == (status, code)


async def test_a_batch_body_that_is_not_json_is_415(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/images/confirm", data="imageIds=a", headers={"Content-Type": "text/plain"})
    assert (r.status, (await r.json())["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


async def test_concurrent_confirms_of_one_reference_serialise(client, pool, settings, relay) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    lists = [[await make_image(pool, "POST") for _ in range(3)] for _ in range(6)]
    results = await asyncio.gather(*(batch(client, r_id, ids) for ids in lists))
    assert [r.status for r in results] == [200] * 6
    msgs = await events(settings, "post-image-changed", r_id, 6)
    announced = [[i["imageId"] for i in m.value["payload"]["images"]] for m in msgs]
    assert sorted(map(tuple, announced)) == sorted(map(tuple, lists)), "every confirm was applied and announced once"
    final = await sequence(pool, "POST", r_id)
    assert final == announced[-1], "the last event describes the committed state"
    confirmed = await fetch_all(
        pool, "SELECT COUNT(*) FROM images WHERE reference_id = %s AND status = 'CONFIRMED'", r_id
    )
    assert confirmed == [(3,)]
    # Each event's list was the reference's state when that transaction committed: the previous
    # list's images were deleted by the next one, in event order.
    for earlier, later in itertools.pairwise(announced):
        history = await fetch_all(
            pool,
            "SELECT COUNT(*) FROM status_history WHERE new_status = 'DELETED' AND image_id IN (%s, %s, %s)",
            *earlier,
        )
        assert history == [(3,)] and earlier != later


async def test_get_image_shows_reference_and_sequence(client, pool) -> None:  # type: ignore[no-untyped-def]
    r_id = ref()
    a, b = await make_image(pool, "PRODUCT"), await make_image(pool, "PRODUCT")
    await batch(client, r_id, [a, b])
    body = await (await client.get(f"/api/v1/images/{b}")).json()
    assert (body["status"], body["referenceId"], body["seqNumber"]) == ("CONFIRMED", r_id, 1)
    assert json.dumps(body)

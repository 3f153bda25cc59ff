"""A connection lost with the COMMIT on its way (issue 26): the answer says the outcome is unknown, never 503.

A proxy between the api and MariaDB lets one transaction's COMMIT through, then drops the api's
connection before the answer comes back (tests/proxy.CommitCutter): the transaction committed,
the api cannot know it. 503 ("nothing was stored, retry") would make a client without an
Idempotency-Key store the image twice; the answer is 500 IMAGE_SAVE_FAILED saying the outcome
is unknown, and a retry with the same Idempotency-Key answers what was stored, as it promises.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import aiomysql
import pytest

from core.images import ImageStatus
from core.settings import Settings
from tests import images, services
from tests.integration.conftest import ClientFactory, fetch_all
from tests.integration.test_confirm import make_image, statuses
from tests.proxy import CommitCutter


@pytest.fixture
async def cutter(settings: Settings) -> AsyncIterator[CommitCutter]:
    proxy = CommitCutter(services.free_port(), settings.db_dsn.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def api(settings: Settings, cutter: CommitCutter, make_client: ClientFactory):  # type: ignore[no-untyped-def]
    return await make_client(replace(settings, db_dsn=replace(settings.db_dsn, port=cutter.port)))


def upload_form(uploader: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("files", io.BytesIO(images.jpeg()), filename="a.jpg", content_type="image/jpeg")
    data.add_field("uploaderId", uploader)
    data.add_field("category", "POST")
    return data


async def rows_of(pool: aiomysql.Pool, uploader: str) -> list[tuple]:
    return await fetch_all(pool, "SELECT image_id, status FROM images WHERE uploader_id = %s", uploader)


def assert_in_doubt(status: int, body: dict) -> None:
    assert (status, body["code"]) == (500, "IMAGE_SAVE_FAILED"), body
    assert "outcome is unknown" in body["message"] and "Idempotency-Key" in body["message"], body


async def test_an_upload_whose_commit_was_cut_is_in_doubt_not_unavailable(  # type: ignore[no-untyped-def]
    api, cutter: CommitCutter, pool: aiomysql.Pool
) -> None:
    uploader = f"doubt-{uuid.uuid4().hex[:8]}"
    cutter.arm()
    r = await api.post("/api/images", data=upload_form(uploader))
    assert_in_doubt(r.status, await r.json())
    assert cutter.cuts == 1
    # It did commit: the honest answer was "unknown", and 503 would have been a lie.
    stored = await services.eventually(lambda: rows_of(pool, uploader), timeout_s=10, what="the upload's rows")
    assert [s for _, s in stored] == ["TEMP"]
    # The api keeps serving: the next upload goes through the same proxy, uncut.
    r = await api.post("/api/images", data=upload_form(uploader))
    assert r.status == 200, await r.text()


async def test_a_retry_with_the_same_key_answers_what_the_in_doubt_upload_stored(  # type: ignore[no-untyped-def]
    api, cutter: CommitCutter, pool: aiomysql.Pool
) -> None:
    uploader, key = f"doubt-{uuid.uuid4().hex[:8]}", {"Idempotency-Key": str(uuid.uuid4())}
    cutter.arm()
    r = await api.post("/api/images", data=upload_form(uploader), headers=key)
    assert_in_doubt(r.status, await r.json())
    r = await api.post("/api/images", data=upload_form(uploader), headers=key)
    assert (r.status, r.headers.get("Idempotency-Replayed")) == (200, "true"), await r.text()
    answered = [image["id"] for image in await r.json()]
    assert answered == [image_id for image_id, _ in await rows_of(pool, uploader)]  # one image, not two


async def test_a_confirm_whose_commit_was_cut_is_in_doubt_not_unavailable(  # type: ignore[no-untyped-def]
    api, cutter: CommitCutter, pool: aiomysql.Pool
) -> None:
    ids = [await make_image(pool, "POST") for _ in range(2)]
    reference = f"ref-{uuid.uuid4().hex[:10]}"
    cutter.arm()
    r = await api.post("/api/v1/images/confirm", json={"imageIds": ids, "referenceId": reference})
    assert_in_doubt(r.status, await r.json())
    assert cutter.cuts == 1
    assert await statuses(pool, ids) == [ImageStatus.CONFIRMED.value] * 2  # it committed

"""End to end: HTTP in, Kafka and files out, through the real api, relay and worker processes."""

from __future__ import annotations

import asyncio

from tests import images, services
from tests.e2e.client import ImageClient
from tests.e2e.conftest import Stack, worker_ready
from tests.kafka_reader import read_messages


async def wait_ready(api: ImageClient, image_id: str, timeout_s: float = 60) -> dict:
    async def ready() -> dict | None:
        status, body = await api.image(image_id)
        return body if status == 200 and body["status"] in ("READY", "FAILED") else None

    return await services.eventually(ready, timeout_s=timeout_s, what=f"image {image_id} processed")  # type: ignore[return-value]


async def test_an_upload_becomes_ready_and_is_served_at_its_url(api: ImageClient, stack: Stack) -> None:
    status, (body,) = await api.upload([("photo.jpg", images.jpeg(300, 200))], category="POST")
    assert (status, body["status"]) == (200, "PROCESSING")
    image = await wait_ready(api, body["id"])
    assert (image["status"], image["convertedFormat"], image["imageUrl"]) == ("READY", "WEBP", body["imageUrl"])
    served_status, data = await api.get(body["imageUrl"])
    assert served_status == 200 and data[8:12] == b"WEBP"
    processed = await read_messages(
        stack.settings.kafka_bootstrap, "image-processed", match=lambda m: m.key == body["id"], count=1
    )
    assert processed[0].value["eventType"] == "IMAGE_READY"


async def test_an_uploaded_then_confirmed_list_is_announced(api: ImageClient, stack: Stack) -> None:
    _, uploaded = await api.upload([(f"{n}.png", images.png(20 + n, 20)) for n in range(3)], category="PRODUCT")
    ids = [u["id"] for u in uploaded]
    await asyncio.gather(*(wait_ready(api, i) for i in ids))
    reference = f"product-{ids[0][:8]}"
    assert (await api.confirm(reference, list(reversed(ids))))[0] == 200
    (msg,) = await read_messages(
        stack.settings.kafka_bootstrap, "product-image-changed", match=lambda m: m.key == reference, count=1
    )
    assert msg.value["eventType"] == "IMAGES_CHANGED"
    assert [i["imageId"] for i in msg.value["payload"]["images"]] == list(reversed(ids))


async def test_two_workers_share_the_topic(api: ImageClient, stack: Stack) -> None:
    second = stack.start("workers-2", ["workers", "worker"])
    await services.eventually(lambda: worker_ready(second), timeout_s=60, what="workers-2 to join")
    _, uploaded = await api.upload([(f"{n}.jpg", images.jpeg(64, 48)) for n in range(16)], category="BANNER")
    done = await asyncio.gather(*(wait_ready(api, u["id"]) for u in uploaded))
    assert {d["status"] for d in done} == {"READY"}
    workers_that_converted = {
        name
        for name, p in stack.processes.items()
        if name.startswith("workers") and any(f'"image_id": "{u["id"]}"' in p.log() for u in uploaded)
    }
    assert workers_that_converted == {"workers-1", "workers-2"}

"""`GET /metrics` on the api: the database's state and the process's request, upload and confirm counters."""

from __future__ import annotations

import io
import uuid

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests import images


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    r = await client.get("/metrics")
    assert r.status == 200 and r.content_type == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(await r.text())
        for s in family.samples
    }


def upload_form(data: bytes, category: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename="a.jpg", content_type="image/jpeg")
    form.add_field("uploaderId", "u-metrics")
    form.add_field("category", category)
    return form


async def test_requests_uploads_and_confirms_are_counted_by_route_template_and_outcome(client) -> None:  # type: ignore[no-untyped-def]
    before = await scrape(client)
    photo = images.jpeg(30, 20)
    assert (await client.post("/api/images", data=upload_form(photo, "POST"))).status == 200
    assert (await client.post("/api/images", data=upload_form(photo, "NOPE"))).status == 400
    assert (await client.post("/api/v1/images/confirm", json={"imageIds": [""], "referenceId": "r"})).status == 400
    assert (await client.get(f"/api/v1/images/{uuid.uuid4()}")).status == 404
    assert (await client.get("/no/such/route")).status == 404
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("http_requests_total", route="/api/images", method="POST", status="200") == 1
    assert moved("http_requests_total", route="/api/v1/images/{image_id}", method="GET", status="404") == 1
    assert moved("http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert moved("http_request_duration_seconds_count", route="/api/images", method="POST") == 2
    assert moved("image_uploads_total", outcome="accepted") == 1
    assert moved("image_uploads_total", outcome="REFERENCE_TYPE_NOT_FOUND") == 1
    assert moved("image_upload_bytes_total") == len(photo)
    assert moved("image_confirms_total", outcome="VALIDATION_ERROR") == 1
    assert after[("images_total", (("status", "TEMP"),))] >= 1  # the database's state is there too

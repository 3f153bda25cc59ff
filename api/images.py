"""Reads: `GET /api/v1/images/{id}` and `GET /metrics`."""

from __future__ import annotations

from datetime import UTC, datetime

import aiomysql
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapters.db import queries
from api import keys
from api.auth import caller
from api.errors import dumps
from core import auth, errors


async def get_image(request: web.Request) -> web.Response:
    """Return the image's status, url, reference, sequence, sizes and formats."""
    image_id = request.match_info["image_id"]
    details = await queries.image_details(request.app[keys.POOL], image_id)
    # Without images:read only one's own images: any other id, existing or not, is FORBIDDEN alike.
    auth.require_read(caller(request), None if details is None else details["uploaderId"])
    if details is None:
        raise errors.ImageNotFound(f"image {image_id} does not exist")
    return web.json_response(details, dumps=dumps)


async def metrics(request: web.Request) -> web.Response:
    """Expose images per status and the outbox lag in the Prometheus text format (images:metrics with tokens)."""
    auth.require(caller(request), auth.METRICS)
    return await render_metrics(request.app[keys.POOL])


async def render_metrics(pool: aiomysql.Pool) -> web.Response:
    """The Prometheus text of the database's state and of this process's own counters."""
    registry = CollectorRegistry()
    images = Gauge("images_total", "Images per status", ["status"], registry=registry)
    for status, n in (await queries.status_counts(pool)).items():
        images.labels(status=status).set(n)
    pending = Gauge("outbox_rows", "Outbox rows not published, per status", ["status"], registry=registry)
    age = Gauge("outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", registry=registry)
    state = await queries.outbox_state(pool)
    for status in ("PENDING", "FAILED"):
        pending.labels(status=status).set(state.get(status, (0, None))[0])
    oldest = state.get("PENDING", (0, None))[1]
    age.set(0 if oldest is None else (datetime.now(UTC) - oldest.replace(tzinfo=UTC)).total_seconds())
    # The database's state, then this process's own counters (api/metrics.py).
    response = web.Response(body=generate_latest(registry) + generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response

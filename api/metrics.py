"""The api's own Prometheus metrics (requests, latency, uploads, confirms), served with /metrics.

Process-global, like every prometheus_client metric: each api replica is scraped on its own.
The route label is the route's template (`/api/v1/images/{image_id}`), never the raw path, so
a client cannot grow the label set; a request no route matched counts as `unmatched`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiomysql
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapters.db import outbox_table, queries
from api import keys
from api.auth import caller
from core import auth

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival in the app to its answer",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOADS = Counter(
    "image_uploads_total", "Upload requests, by outcome: accepted, or the contract's error code", ["outcome"]
)
UPLOAD_BYTES = Counter("image_upload_bytes_total", "Bytes of the files of accepted uploads")
CONFIRMS = Counter(
    "image_confirms_total", "Confirm requests, by outcome: ok, or the contract's error code", ["outcome"]
)

UPLOAD_ROUTE = "/api/images"
CONFIRM_ROUTES = ("/api/v1/images/confirm", "/api/v1/images/confirm/{reference_id}")


def route_of(request: web.Request) -> str:
    """The matched route's template, or `unmatched`."""
    if request.match_info.http_exception is not None:  # no route (404) or not this method (405)
        return "unmatched"
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def observe(request: web.Request, status: int, code: str | None, seconds: float) -> None:
    """Count one answered request (and its upload or confirm outcome)."""
    route = route_of(request)
    REQUESTS.labels(route, request.method, str(status)).inc()
    LATENCY.labels(route, request.method).observe(seconds)
    if request.method != "POST":
        return
    if route == UPLOAD_ROUTE:
        UPLOADS.labels("accepted" if status == 200 else code or str(status)).inc()
    elif route in CONFIRM_ROUTES:
        CONFIRMS.labels("ok" if status == 200 else code or str(status)).inc()


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
    state = await outbox_table.outbox_state(pool)
    for status in ("PENDING", "FAILED"):
        pending.labels(status=status).set(state.get(status, (0, None))[0])
    age.set(outbox_table.age_s(state.get("PENDING", (0, None))[1], datetime.now(UTC)))
    # The database's state, then this process's own counters (above).
    response = web.Response(body=generate_latest(registry) + generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response

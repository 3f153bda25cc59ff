"""The aiohttp application factory: routes, middleware and the lifetimes of shared objects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog
from aiohttp import web

from adapters.auth.tokens import token_verifier
from adapters.db import mariadb
from adapters.db.group_commit import GroupCommit, GroupedUnitOfWork
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache, reload_daily
from adapters.files.directory import Directory
from adapters.files.writer_process import FileWriterProcess
from adapters.images.codec import configure_pillow
from adapters.images.process_pool import ConverterPool
from adapters.outage import Outage
from adapters.retry import until_available
from adapters.storage import open_storage
from adapters.upload_ports import upload_ports
from api import admission, confirm, cors, docs, enums, files, health, images, keys, metrics, openapi, uploads
from api.auth import auth_middleware
from api.errors import error_middleware
from core.ports import Storage, StoreUnavailable, UploadUnitOfWork
from core.settings import Settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the app; pools open on startup and close on cleanup."""
    verifier = token_verifier(settings)
    middlewares = [error_middleware()] + ([auth_middleware(verifier)] if verifier is not None else [])
    app = web.Application(client_max_size=settings.max_request_bytes, middlewares=middlewares)
    app[keys.SETTINGS] = settings
    app[admission.ADMISSION] = admission.Admission.of(settings)
    if verifier is not None:
        app[keys.VERIFIER] = verifier
        app.cleanup_ctx.append(_token_keys)
    configure_pillow(settings.max_image_pixels)  # headers are read here at upload: the same limit as ours
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_converter)
    if settings.storage.local:
        Path(settings.storage.location).mkdir(parents=True, exist_ok=True)
        app[keys.SERVED_DIRECTORY] = Directory(settings.storage.location)  # what /images/ serves
        # Uploads' files are written by a helper process, not threads of this one (adapters/files/writer_process.py).
        app[keys.FILE_WRITER] = FileWriterProcess(settings.storage.location)
        app.cleanup_ctx.append(_file_writer)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_uploads)
    add_routes(app, settings)
    cors.allow_origins(app, settings.cors_origins)
    return app


def add_routes(app: web.Application, settings: Settings) -> None:
    """Register every route (the OpenAPI test checks each one is documented)."""
    app.router.add_post("/api/images", uploads.upload, expect_handler=admission.expect_continue)
    # "confirm" is never an image id (ids are UUIDs): without the exclusion GET /api/v1/images/confirm
    # would read an image called "confirm" and its 405 would advertise GET.
    app.router.add_get("/api/v1/images/{image_id:(?!confirm$)[^/]+}", images.get_image)
    app.router.add_post("/api/v1/images/confirm", confirm.confirm_batch)
    app.router.add_post("/api/v1/images/confirm/{reference_id}", confirm.confirm_single)
    if not settings.api_metrics_port:  # else served on its own port only (api/server.py)
        app.router.add_get("/metrics", metrics.metrics)
    app.router.add_get("/openapi.json", openapi.openapi)
    # Swagger UI for that document, from swagger-ui-py's bundled copy (nothing vendored here);
    # its pages are not operations of the API, so the document leaves them out. `/` leads there.
    docs.add_docs(app, title="image-server API")
    app.router.add_get("/health", health.simple_health)
    app.router.add_get("/actuator/health", health.actuator_health)
    app.router.add_get("/api/v1/enums/extensions", enums.extensions)
    app.router.add_get("/api/v1/enums/referenceType", enums.reference_types)
    # Where the Java service actually serves its enums, in its shape: migrating clients need no change.
    app.router.add_get("/api/extensions", enums.legacy_extensions)
    app.router.add_get("/api/referenceType", enums.legacy_reference_types)
    if settings.serve_images and settings.storage.local:  # on S3, IMAGES_BASE_URL names the bucket or its CDN
        app.router.add_get("/images/{key:.+}", files.serve_file)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    # MariaDB may come up after us (make run, compose restarts): wait for it, logging each retry.
    pool = await mariadb.open_pool(settings.db_dsn, size=settings.db_pool_size)
    app[keys.POOL] = pool
    app[keys.GROUP_COMMIT] = GroupCommit(pool)
    cache = ReferenceCache(pool)
    await until_available("mariadb", cache.reload)
    app[keys.REFERENCES] = cache
    app[keys.OUTAGE] = Outage("mariadb", lambda: mariadb.ping(pool))
    log.info("database_pool_opened", dsn=str(settings.db_dsn))
    reloader = asyncio.create_task(reload_daily(cache))
    yield
    reloader.cancel()
    await app[keys.OUTAGE].close()
    pool.close()
    await pool.wait_closed()
    log.info("database_pool_closed")


async def _token_keys(app: web.Application) -> AsyncIterator[None]:
    """The issuer's keys (JWKS: fetched in the background, refreshed); a secret needs nothing."""
    keys_ = app[keys.VERIFIER].keys
    await keys_.start()
    yield
    await keys_.close()


async def _file_writer(app: web.Application) -> AsyncIterator[None]:
    """The helper process of uploads' durable writes: started with the app, closed after the last request."""
    writer = app[keys.FILE_WRITER]
    await writer.start()
    yield
    await writer.close()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Where image files live (IMAGES_STORAGE_URL): the directory, or an S3 bucket (waited for at start)."""
    settings = app[keys.SETTINGS]
    backend = app[keys.FILE_WRITER].create_many if settings.storage.local else None
    async with open_storage(settings, backend=backend) as storage:
        app[keys.STORAGE] = storage
        app[keys.STORE_OUTAGE] = Outage("object-store", lambda: _writable(storage))
        log.info("storage_opened", store=storage.name)
        yield
        await app[keys.STORE_OUTAGE].close()


async def _writable(storage: Storage) -> None:
    up, details = await storage.check()
    if not up:
        raise StoreUnavailable(str(details.get("error")))


async def _uploads(app: web.Application) -> AsyncIterator[None]:
    """The ports of an upload: its transaction group-committed with others, its files in the storage."""
    settings, group, storage, pool = app[keys.SETTINGS], app[keys.GROUP_COMMIT], app[keys.STORAGE], app[keys.POOL]
    # Quotas read an uploader's usage in the upload's transaction: the write-only group commit cannot.
    quota = settings.quota if settings.quota.active else None
    unit: Callable[[], UploadUnitOfWork] = (
        (lambda: MariaDbUnitOfWork(pool)) if quota is not None else (lambda: GroupedUnitOfWork(group))
    )
    app[keys.UPLOADS] = upload_ports(settings, storage, unit, quota=quota)
    app[keys.SYNC_UPLOADS] = upload_ports(settings, storage, unit, app[keys.CONVERTER], quota=quota)
    yield


async def _converter(app: web.Application) -> AsyncIterator[None]:
    """The process pool of ?sync=true conversions (CPU-bound: never on the event loop)."""
    settings = app[keys.SETTINGS]
    converter = ConverterPool(settings)
    app[keys.CONVERTER] = converter
    yield
    converter.shutdown()

"""The Faust app factory: agents and fleet-wide schedules registered programmatically."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import faust
import prometheus_client
import structlog
from mode import Service

from adapters.db import mariadb
from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache
from adapters.images.codec import configure_pillow
from adapters.images.process_pool import ConverterPool
from adapters.kafka.security import faust_credentials
from adapters.retry import until_available
from adapters.storage import open_storage
from adapters.upload_ports import upload_ports
from core import conversion
from core.events import IMAGE_UPLOADED_TOPIC, UPLOAD_REQUESTED_TOPIC
from core.settings import Settings
from workers import commands, handlers, metrics, sweeps, transport

log = structlog.get_logger("workers")

LAG_INTERVAL_S = 10.0


class Runtime:
    """Holds the worker's resources; agents wait for `ready` before their first message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self.resources: handlers.Resources | None = None
        self._opened = AsyncExitStack()  # what stop() closes: the storage (an S3 client, scratch space)

    async def start(self) -> None:
        """Open the pool and the storage, load the reference cache, start the conversion processes."""
        settings = self.settings
        configure_pillow(settings.max_image_pixels)  # upload commands' headers are read in this process
        if settings.worker_metrics_port:
            # A small HTTP thread of prometheus_client; conversions stay on the loop and their processes.
            prometheus_client.start_http_server(settings.worker_metrics_port, addr=settings.api_host)
        pool = await mariadb.open_pool(settings.db_dsn, size=settings.db_pool_size)
        references = ReferenceCache(pool)
        await until_available("mariadb", references.reload)
        storage = await self._opened.enter_async_context(open_storage(settings))
        self.resources = handlers.Resources(
            settings=settings,
            pool=pool,
            references=references,
            storage=storage,
            converter=ConverterPool(settings),
            uploads=upload_ports(settings, storage, lambda: MariaDbUnitOfWork(pool)),
        )
        self.ready.set()
        log.info("worker_resources_ready", concurrency=settings.effective_worker_concurrency, store=storage.name)

    async def get(self) -> handlers.Resources:
        """Return the resources once started."""
        await self.ready.wait()
        assert self.resources is not None
        return self.resources

    async def stop(self) -> None:
        """Close the pool and the conversion processes (after the agents stopped)."""
        log.info("stopping")
        if self.resources is not None:
            self.resources.converter.shutdown()
            self.resources.pool.close()
            await self.resources.pool.wait_closed()
        await self._opened.aclose()
        log.info("stopped")


def create_app(settings: Settings) -> faust.App:
    """Build the worker app: conversion and upload-command agents, leader-only schedules."""
    app = transport.App(
        settings.worker_app_id,
        fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap.split(",") if s.strip()],
        broker_credentials=faust_credentials(settings),  # TLS and SASL, as every other client has them
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.uploaded_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",  # the first message after a (new) group starts is handled
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_session_timeout=max(settings.worker_rebalance_timeout_s, 10.0),
        broker_heartbeat_interval=1.0,
        stream_wait_empty=True,
        worker_redirect_stdouts=False,
    )
    runtime = Runtime(settings)

    @app.service
    class RuntimeService(Service):  # the runtime, started and stopped with the worker
        async def on_start(self) -> None:
            await runtime.start()

        async def on_stop(self) -> None:
            await runtime.stop()

    _add_agents(app, runtime, settings)

    @app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: Any, **_: Any) -> None:
        metrics.ASSIGNED.set(0)

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: Any, **_: Any) -> None:
        metrics.ASSIGNED.set(len(assigned))  # the full assignment: > 0 once this worker takes work

    if settings.worker_metrics_port:

        async def measure() -> None:
            await measure_lag(app)

        app.timer(LAG_INTERVAL_S)(measure)
    _add_schedules(app, runtime)
    return app


def _add_agents(app: faust.App, runtime: Runtime, settings: Settings) -> None:
    """The two agents: conversions of uploaded images, and upload commands from other services."""
    concurrency = settings.effective_worker_concurrency
    uploaded = app.topic(
        IMAGE_UPLOADED_TOPIC, key_serializer="raw", value_serializer="raw", partitions=settings.uploaded_partitions
    )
    requested = app.topic(
        UPLOAD_REQUESTED_TOPIC, key_serializer="raw", value_serializer="raw", partitions=settings.uploaded_partitions
    )

    def agent(topic: str, consumer: str, handler: handlers.Handler) -> Callable[[faust.StreamT], Awaitable[None]]:
        async def handle(stream: faust.StreamT) -> None:
            async for event in stream.events():
                res = await runtime.get()
                with metrics.IN_FLIGHT.labels(topic).track_inprogress():
                    await handlers.guarded(res, consumer, topic, event.key, event.value, handler)

        return handle

    convert = agent(IMAGE_UPLOADED_TOPIC, conversion.CONVERTER, handlers.handle_uploaded)
    accept = agent(UPLOAD_REQUESTED_TOPIC, commands.COMMANDS, commands.handle_upload_command)
    app.agent(uploaded, name="convert-uploaded", concurrency=concurrency)(convert)
    app.agent(requested, name="accept-upload-commands", concurrency=max(1, concurrency // 2))(accept)


async def measure_lag(app: faust.App) -> None:
    """End offset minus committed offset of each partition of the agents' topics this worker holds."""
    consumer = app.consumer
    assigned = {tp for tp in consumer.assignment() if tp.topic in (IMAGE_UPLOADED_TOPIC, UPLOAD_REQUESTED_TOPIC)}
    ends = await consumer.highwaters(*assigned) if assigned else {}
    committed = getattr(consumer, "_committed_offset", {})  # faust-streaming's own record of commits
    metrics.CONSUMER_LAG.clear()
    for tp, end in ends.items():
        done = committed.get(tp)
        behind = end if done is None else end - (done + 1)  # Faust keeps the last committed message
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(behind, 0))


def _add_schedules(app: faust.App, runtime: Runtime) -> None:
    """CONTRACT 6 / guide 11.1. on_leader: one worker of the fleet runs each; all are idempotent."""

    def scheduled(name: str, sweep: sweeps.Sweep) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            res = await runtime.get()
            await sweep.run(res.pool, res.storage, None, None)

        run.__name__ = run.__qualname__ = f"sweep_{name}"  # what Faust's timer logs name it by
        return run

    for name, sweep in sweeps.SWEEPS.items():
        if sweep.crontab is not None:
            app.crontab(sweep.crontab, on_leader=True)(scheduled(name, sweep))
        else:
            assert sweep.every_s is not None
            app.timer(sweep.every_s, on_leader=True)(scheduled(name, sweep))

    async def reload_references() -> None:
        await (await runtime.get()).references.reload()

    # Every worker process has its own cache, so every worker reloads it (not leader-only).
    app.crontab("30 0 * * *")(reload_references)

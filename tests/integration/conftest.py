"""Integration fixtures: the real aiohttp app over real HTTP, against the session's MariaDB and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiomysql
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.db.mariadb import MariaDbUnitOfWork
from adapters.db.reference_cache import ReferenceCache
from adapters.files.local import LocalStorage
from adapters.images.process_pool import ConverterPool
from adapters.upload_ports import upload_ports
from api.app import create_app
from api.server import ApiRunner
from core.ports import Storage
from core.settings import Settings
from workers import handlers

ClientFactory = Callable[[Settings], Awaitable[TestClient]]


class ApiTestServer(TestServer):
    """A test server that serves the app the way `python -m api` does (api/server.py)."""

    async def _make_runner(self, **kwargs: object) -> ApiRunner:
        return ApiRunner(self.app, **kwargs)


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[TestClient] = []

    async def make(settings: Settings) -> TestClient:
        client = TestClient(ApiTestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def client(settings: Settings, pool: aiomysql.Pool, make_client: ClientFactory) -> TestClient:
    return await make_client(settings)


async def fetch_all(pool: aiomysql.Pool, sql: str, *args: object) -> list[tuple]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return list(await cur.fetchall())


def worker_resources(
    settings: Settings, pool: aiomysql.Pool, cache: ReferenceCache, storage: Storage, converter: ConverterPool
) -> handlers.Resources:
    """A worker's resources, composed as workers/app.py composes them."""
    uploads = upload_ports(settings, storage, lambda: MariaDbUnitOfWork(pool))
    return handlers.Resources(settings, pool, cache, storage, converter, uploads)


@pytest.fixture
async def resources(settings: Settings, pool: aiomysql.Pool) -> AsyncIterator[handlers.Resources]:
    """What a worker's handlers share, on the test database, with one conversion process."""
    cache = ReferenceCache(pool)
    await cache.reload()
    converter = ConverterPool(settings, processes=1)
    yield worker_resources(settings, pool, cache, LocalStorage(settings.upload_dir), converter)
    converter.shutdown()

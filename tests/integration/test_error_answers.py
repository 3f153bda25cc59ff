"""The error middleware's answers to failures no handler maps itself (CONTRACT 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pymysql
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.errors import error_middleware


@pytest.fixture
async def failing() -> AsyncIterator[TestClient]:
    async def deadlocked(request: web.Request) -> web.Response:
        raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[error_middleware()])
    app.router.add_post("/deadlocked", deadlocked)
    app.router.add_post("/broken", broken)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_a_transaction_that_lost_every_deadlock_retry_is_503_nothing_changed(failing: TestClient) -> None:
    """MariaDB rolled the victim back: nothing was stored, so the answer is the contract's 503, not a 500."""
    r = await failing.post("/deadlocked")
    body = await r.json()
    assert (r.status, body["code"], r.headers["Retry-After"]) == (503, "SERVICE_UNAVAILABLE", "1")
    assert "nothing was changed" in body["message"]


async def test_a_bug_is_still_a_500_without_internals(failing: TestClient) -> None:
    r = await failing.post("/broken")
    body = await r.json()
    assert (r.status, body["code"], body["message"]) == (500, "INTERNAL_SERVER_ERROR", "Internal server error")

"""What S3Bucket does with a server's errors (issue 14): throttling and 5xx retried with backoff,
a 4xx not retried, and what the retries did not cure told apart (an outage or a refusal) and
counted on /metrics (object_store_requests_total).

The server is a small aiohttp app answering as S3 does (XML error bodies), so each answer is chosen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from adapters.s3.bucket import S3Bucket
from core.ports import StoreUnavailable
from tests import services
from tests.conftest import AWS_TEST_CREDENTIALS

Answer = Callable[[int], tuple[int, str | None]]  # n-th PUT (from 1) -> (status, S3 error code or None)


def s3_error(status: int, code: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>test</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


class FakeS3:
    """Answers HEAD bucket with 200 and each PUT as `answer` says; counts the PUTs."""

    def __init__(self) -> None:
        self.puts = 0
        self.answer: Answer = lambda n: (200, None)
        self.before_answer: Callable[[], Awaitable[None]] | None = None  # holds a PUT's answer back

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200)
        await request.read()
        self.puts += 1
        if self.before_answer is not None:
            await self.before_answer()
        status, code = self.answer(self.puts)
        if code is None:
            return web.Response(status=status, headers={"ETag": '"0"'})
        return s3_error(status, code)


@pytest.fixture
async def fake_s3(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeS3, S3Bucket]]:
    fake = FakeS3()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = services.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    try:
        async with S3Bucket.open("bucket", endpoint_url=f"http://127.0.0.1:{port}", path_style=True) as store:
            yield fake, store
    finally:
        await runner.cleanup()


def counted(outcome: str) -> float:
    """object_store_requests_total of PUTs with this outcome, in this process."""
    return REGISTRY.get_sample_value("object_store_requests_total", {"operation": "put", "outcome": outcome}) or 0.0


async def test_throttling_and_5xx_are_retried_and_then_succeed(fake_s3: tuple[FakeS3, S3Bucket]) -> None:
    fake, store = fake_s3
    fake.answer = lambda n: {1: (503, "SlowDown"), 2: (500, "InternalError")}.get(n, (200, None))
    created: list[str] = []
    before = counted("ok")
    await store.create([("POST/a.jpg", b"x")], created)
    assert (created, fake.puts) == (["POST/a.jpg"], 3)
    assert counted("ok") == before + 1  # one request, its retries inside it


async def test_a_4xx_is_not_retried_and_is_a_refusal(fake_s3: tuple[FakeS3, S3Bucket]) -> None:
    fake, store = fake_s3
    fake.answer = lambda n: (403, "AccessDenied")
    before = counted("refused")
    with pytest.raises(PermissionError, match="AccessDenied"):
        await store.create([("POST/a.jpg", b"x")], [])
    assert (fake.puts, counted("refused")) == (1, before + 1)


async def test_5xx_past_the_retries_is_an_outage(fake_s3: tuple[FakeS3, S3Bucket]) -> None:
    fake, store = fake_s3
    fake.answer = lambda n: (503, "ServiceUnavailable")
    before = counted("unavailable")
    with pytest.raises(StoreUnavailable):
        await store.create([("POST/a.jpg", b"x")], [])
    assert fake.puts == 3  # botocore's standard mode: the first try and two retries
    assert counted("unavailable") == before + 1


async def test_a_cancelled_create_still_lists_what_it_stored(fake_s3: tuple[FakeS3, S3Bucket]) -> None:
    import asyncio

    fake, store = fake_s3
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:  # the PUT is out, its answer not back yet
        arrived.set()
        await release.wait()

    fake.before_answer = hold
    created: list[str] = []
    creating = asyncio.create_task(store.create([("POST/a.jpg", b"x")], created))
    await asyncio.wait_for(arrived.wait(), 10)
    creating.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await creating
    assert created == ["POST/a.jpg"]  # the caller's clean-up removes it

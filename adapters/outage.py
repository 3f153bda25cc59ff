"""One log line when a dependency goes away and one when it is back, instead of one per request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Outage:
    """Tracks one dependency's outage: `report()` on every failure, a probe finds its end.

    The first report logs `dependency_unreachable` (error) and starts probing every `interval_s`;
    later reports during the same outage log nothing. When the probe answers, the outage is
    over: `dependency_reachable` is logged with how long it lasted and how many failures it caused.
    """

    def __init__(self, name: str, probe: Callable[[], Awaitable[object]], *, interval_s: float = 1.0) -> None:
        self._name = name
        self._probe = probe
        self._interval_s = interval_s
        self._watch: asyncio.Task[None] | None = None
        self._failures = 0

    def report(self, exc: BaseException) -> None:
        """Count one failure caused by the outage; the first one logs and starts the probe."""
        self._failures += 1
        if self._watch is None:
            log.error(
                "dependency_unreachable",
                service=self._name,
                error=f"{type(exc).__name__}: {exc}",
                action="answering 503",
            )
            self._watch = asyncio.create_task(self._until_back(asyncio.get_running_loop().time()))

    async def _until_back(self, began: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self._probe()
            except Exception:  # still down: the first report said so already
                continue
            break
        log.info(
            "dependency_reachable",
            service=self._name,
            outage_s=round(loop.time() - began, 1),
            failed_requests=self._failures,
        )
        self._watch, self._failures = None, 0

    async def close(self) -> None:
        """Stop probing (the process is stopping)."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

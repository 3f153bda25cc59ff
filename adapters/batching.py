"""One batching mechanism for group commit: what is submitted while a batch is in flight goes in the next.

Used by GroupCommit (transactions) and GroupWriter (durable files). Each item carries the future
its submitter awaits; the batch handler resolves them. A lone item goes at once: nothing waits
for company. Up to `in_flight` batches run at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

P = TypeVar("P")


class Batcher(Generic[P]):
    """Queues items and hands them to `handle` in batches of `take(queue)` items (at least one)."""

    def __init__(
        self,
        handle: Callable[[list[tuple[P, asyncio.Future[None]]]], Awaitable[None]],
        *,
        take: Callable[[Sequence[tuple[P, asyncio.Future[None]]]], int],
        in_flight: int,
    ) -> None:
        self._handle = handle
        self._take = take
        self._in_flight = in_flight
        self._queue: list[tuple[P, asyncio.Future[None]]] = []
        self._drainers: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Items queued for a next batch (not yet taken)."""
        return len(self._queue)

    def submit(self, payloads: Sequence[P]) -> list[asyncio.Future[None]]:
        """Queue these items; return the future of each, resolved by the batch handler."""
        loop = asyncio.get_running_loop()
        items = [(payload, loop.create_future()) for payload in payloads]
        self._queue.extend(items)
        if len(self._drainers) < self._in_flight:
            drainer = asyncio.create_task(self._drain())
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return [done for _, done in items]

    async def _drain(self) -> None:
        while self._queue:
            n = max(1, self._take(self._queue))
            batch, self._queue = self._queue[:n], self._queue[n:]
            try:
                await self._handle(batch)
            except BaseException:  # the loop is shutting down: what is still queued is never handled
                for _, done in self._queue:
                    done.cancel()
                self._queue = []
                raise

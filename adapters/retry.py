"""Waiting out an outage with tenacity: exponential backoff, every retry logged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

T = TypeVar("T")
log = structlog.get_logger(__name__)


async def until_available(what: str, attempt: Callable[[], Awaitable[T]], *, max_wait_s: float = 5.0) -> T:
    """Call `attempt` until it succeeds, backing off up to `max_wait_s` between tries."""

    def report(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "service_unavailable",
            service=what,
            attempt=state.attempt_number,
            error=f"{type(exc).__name__}: {exc}" if exc else None,
            retry_in_s=round(state.next_action.sleep, 2) if state.next_action else None,
        )

    retrying = AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=max_wait_s),
        retry=retry_if_exception_type(Exception),
        before_sleep=report,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            return await attempt()
    raise AssertionError("unreachable: AsyncRetrying retries until success")

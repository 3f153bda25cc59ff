"""Waiting out an outage with tenacity: exponential backoff, every retry logged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, retry_if_exception_type, wait_exponential

T = TypeVar("T")
log = structlog.get_logger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Tell whether an error is an outage that waiting can cure (lost connection, deadlock, timeout).

    Anything else (a constraint violated, a bug) would fail the same way forever: it is not retried.
    """
    import pymysql

    return isinstance(
        exc, pymysql.err.OperationalError | pymysql.err.InterfaceError | ConnectionError | TimeoutError
    ) or (isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError))


async def until_available(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    max_wait_s: float = 5.0,
    retry_on: Callable[[BaseException], bool] = lambda _: True,
) -> T:
    """Call `attempt` until it succeeds, backing off up to `max_wait_s` between tries.

    Only errors for which `retry_on` is true are retried; others are raised at once.
    """

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
        retry=retry_if_exception_type(Exception) & retry_if_exception(retry_on),
        before_sleep=report,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            return await attempt()
    raise AssertionError("unreachable: AsyncRetrying retries until success")

"""Progress of long commands: tqdm's bar on a terminal, structured log lines when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from tqdm import tqdm


@contextmanager
def progress(desc: str, event: str | None, total: int | None = None, **fields: Any) -> Iterator[Callable[[int], None]]:
    """Yield `report(done)`: it moves the bar on a terminal, or logs `event` with `done` otherwise.

    `event=None` logs nothing when piped: for a command whose output lines already show its progress.
    """
    log = structlog.get_logger("workers.progress")
    bar = tqdm(desc=desc, total=total, unit=" done", file=sys.stderr) if sys.stderr.isatty() else None

    def report(done: int) -> None:
        if bar is None:
            if event is not None:
                log.info(event, done=done, total=total, **fields)
        else:
            bar.update(done - bar.n)

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()

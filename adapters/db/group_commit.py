"""Group commit: the write-only transactions that arrive together, committed as one."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import aiomysql

from adapters.batching import Batcher
from adapters.db.mariadb import MariaDbUnitOfWork, is_server_error, outcome_unknown
from adapters.db.records import repositories
from adapters.db.statements import Recorder, Table, Write, merge_inserts


class GroupCommit:
    """Commits the write-only transactions that arrive together as one transaction.

    Each upload's transaction is a handful of INSERTs; committing each alone costs a round trip,
    a COMMIT and, in aiomysql's pure-Python protocol, the parsing of one answer per statement,
    all on the event loop. The units of work that ask to commit while one group is in flight go
    together in the next: their INSERTs merged into one multi-row INSERT per table, sent with
    BEGIN and COMMIT in one round trip. A lone unit goes at once: nothing waits for company.

    If MariaDB refuses a group, each of its units is tried again alone, so one bad unit fails
    only itself. If the group's outcome is unknown (the connection broke after COMMIT was sent),
    every unit of it is in doubt.
    """

    def __init__(self, pool: aiomysql.Pool, *, max_units: int = 64, in_flight: int = 2) -> None:
        self._pool = pool
        self._batcher: Batcher[list[Write]] = Batcher(
            self._commit_group, take=lambda queue: max_units, in_flight=in_flight
        )

    async def commit(self, writes: list[Write]) -> None:
        """Commit these writes with whatever else is waiting; raise what committing them raised."""
        (done,) = self._batcher.submit([writes])
        await done

    async def _commit_group(self, group: list[tuple[list[Write], asyncio.Future[None]]]) -> None:
        try:
            await self._commit_live(group)
        except BaseException:  # the loop is shutting down: what was not sent never will be
            for _, done in group:
                done.cancel()
            raise

    async def _commit_live(self, group: list[tuple[list[Write], asyncio.Future[None]]]) -> None:
        live = [(writes, done) for writes, done in group if not done.cancelled()]
        if not live:
            return
        everything = [w for writes, _ in live for w in writes]
        try:
            await self._send(everything, merge=True)
        except Exception as exc:
            if len(live) == 1 or not is_server_error(exc):
                _fail(live, exc)  # a lone unit's own error, or every unit in doubt
                return
            for writes, done in live:  # one unit was refused: find which, by trying each alone
                try:
                    await self._send(writes, merge=False)
                except Exception as alone:
                    _fail([(writes, done)], alone)
                else:
                    _succeed([(writes, done)])
            return
        _succeed(live)

    async def _send(self, writes: list[Write], *, merge: bool) -> None:
        uow = MariaDbUnitOfWork(self._pool)
        async with uow:
            merged = merge_inserts(writes) if merge else None
            for target, args in writes if merged is None else merged:
                if isinstance(target, Table):
                    uow.pipeline.insert(target, args)
                else:
                    uow.pipeline.write(target, args)
            await uow.commit()


def _succeed(units: list[tuple[list[Write], asyncio.Future[None]]]) -> None:
    for _, done in units:
        if not done.done():
            done.set_result(None)


def _fail(units: list[tuple[list[Write], asyncio.Future[None]]], exc: BaseException) -> None:
    for _, done in units:
        if not done.done():
            done.set_exception(exc)


class GroupedUnitOfWork:
    """A write-only unit of work whose commit goes through a GroupCommit (uploads).

    Nothing is sent before commit(); leaving without committing sends nothing, so there is
    nothing to roll back. Reading raises TypeError.
    """

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self._recorder = Recorder()
        self.commit_in_doubt = False

    async def __aenter__(self) -> Self:
        self._recorder = Recorder()
        self.commit_in_doubt = False
        self.images, self.outbox, self.processed, self.idempotency, self.quotas = repositories(self._recorder)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._recorder = Recorder()

    async def commit(self) -> None:
        """Commit everything written through this unit of work, grouped with others."""
        try:
            await self._group.commit(self._recorder.writes)
        except BaseException as exc:
            self.commit_in_doubt = outcome_unknown(exc)
            raise

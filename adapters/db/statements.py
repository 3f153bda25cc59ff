"""How a transaction's statements travel to MariaDB: batched on its connection, or kept for a GroupCommit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import aiomysql


class Statements(Protocol):
    """Where a repository sends one transaction's SQL: a Pipeline (now) or a Recorder (a group, later)."""

    def write(self, sql: str, args: Sequence[Any] = ()) -> None: ...
    def write_rows(self, sql: str, row_sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...


class Pipeline:
    """One transaction's statements on one connection, sent in as few round trips as possible.

    Writes return nothing the caller needs, so they are queued, rendered with the driver's own
    escaping, and sent together with the next read or with the COMMIT as one multi-statement
    query: an upload's transaction (BEGIN, four INSERTs, COMMIT) is one round trip instead of
    six. aiomysql speaks the protocol in pure Python, so each round trip saved is CPU saved on the
    event loop. MariaDB runs the statements in order and stops at the first error, which is raised
    here (from the read or the commit that carried it); the unit of work then rolls back.
    """

    def __init__(self, conn: aiomysql.Connection, *, isolation: str | None = None) -> None:
        """`isolation` (e.g. "READ COMMITTED") applies to this transaction only."""
        self._conn = conn
        self._pending: list[str] = ["BEGIN"]
        if isolation is not None:
            self._pending.insert(0, f"SET TRANSACTION ISOLATION LEVEL {isolation}")

    def write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """Queue a write; it runs, in order, before the next read or the commit."""
        self._pending.append(self._render(sql, args))

    def write_rows(self, sql: str, row_sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Queue one multi-row INSERT: `sql` followed by `row_sql` rendered for each row."""
        if rows:
            self._pending.append(sql + ", ".join(self._render(row_sql, row) for row in rows))

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Send the queued writes and this read; return the read's rows."""
        return await self._send(self._render(sql, args))

    async def commit(self) -> None:
        """Send the queued writes and COMMIT."""
        await self._send("COMMIT")

    def _render(self, sql: str, args: Sequence[Any]) -> str:
        return sql % tuple(self._conn.literal(a) for a in args) if args else sql

    async def _send(self, last: str) -> list[Any]:
        statements, self._pending = [*self._pending, last], []
        async with self._conn.cursor() as cur:
            await cur.execute(";\n".join(statements))
            for _ in range(len(statements) - 1):
                await cur.nextset()
            return list(await cur.fetchall())


class Recorder:
    """A write-only transaction's statements, kept to be sent later by someone else (GroupCommit).

    Repositories write to it as to a Pipeline; reading is refused, since nothing has been sent.
    """

    def __init__(self) -> None:
        self.writes: list[tuple[str, Sequence[Any]]] = []

    def write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """Keep a write, in order."""
        self.writes.append((sql, args))

    def write_rows(self, sql: str, row_sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Keep each row as its own INSERT; a GroupCommit merges them again."""
        for row in rows:
            self.write(sql + row_sql, row)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise TypeError("a grouped unit of work is write-only: it cannot read")


def merge_inserts(writes: Sequence[tuple[str, Sequence[Any]]]) -> list[tuple[str, str, list[Sequence[Any]]]] | None:
    """Merge single-row INSERTs into one multi-row INSERT per statement; None if any write is not one.

    The result runs each distinct INSERT once, in the order each first appears, with its rows in
    their original order. That reorders rows across tables, which is sound for batches like
    several uploads' (images, storage, history, outbox each): every statement's rows depend only
    on rows of statements that first appeared before it.
    """
    merged: dict[str, tuple[str, list[Sequence[Any]]]] = {}
    for sql, args in writes:
        head, values, row = sql.partition(" VALUES ")
        if not values or not sql.startswith("INSERT INTO ") or not (row.startswith("(") and row.endswith(")")):
            return None
        if " ON DUPLICATE KEY " in row or "(" in row[1:]:
            return None
        merged.setdefault(head + values, (row, []))[1].append(args)
    return [(head, row, rows) for head, (row, rows) in merged.items()]

"""How a transaction's statements travel to MariaDB: batched on its connection, or kept for a GroupCommit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiomysql


@dataclass(frozen=True)
class Table:
    """Where an INSERT puts its rows: a table and its columns, in the order of each row's values.

    Repositories hand rows for a Table (`Statements.insert`) instead of INSERT text, so a
    GroupCommit can put several transactions' rows for one table into one INSERT without reading SQL.
    """

    name: str
    columns: tuple[str, ...]
    head: str = field(init=False, repr=False, compare=False)  # INSERT INTO name (columns) VALUES
    row: str = field(init=False, repr=False, compare=False)  # (%s, ...), one row's placeholders

    def __post_init__(self) -> None:
        object.__setattr__(self, "head", f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ")
        object.__setattr__(self, "row", "(" + ", ".join(["%s"] * len(self.columns)) + ")")


Rows = Sequence[Sequence[Any]]
# A kept write: SQL and its arguments, or a Table and its rows.
Write = tuple[str, Sequence[Any]] | tuple[Table, Rows]


class Statements(Protocol):
    """Where a repository sends one transaction's SQL: a Pipeline (now) or a Recorder (a group, later)."""

    def write(self, sql: str, args: Sequence[Any] = ()) -> None: ...
    def insert(self, table: Table, rows: Rows) -> None: ...
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

    def insert(self, table: Table, rows: Rows) -> None:
        """Queue one INSERT of these rows (none: nothing)."""
        if rows:
            self._pending.append(table.head + ", ".join(self._render(table.row, row) for row in rows))

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Send the queued writes and this read; return the read's rows."""
        return await self._send(self._render(sql, args))

    async def commit(self) -> None:
        """Send the queued writes and COMMIT."""
        await self._send("COMMIT")

    def _render(self, sql: str, args: Sequence[Any]) -> str:
        return sql % tuple(self._literal(a) for a in args) if args else sql

    def _literal(self, value: Any) -> str:
        """The driver's literal, with the commonest values' dispatch taken here (a fifth of an upload's SQL time)."""
        kind = type(value)
        if kind is int:  # not bool: type(True) is bool
            return str(value)
        if value is None:
            return "NULL"
        if kind is datetime and value.tzinfo is None:  # as pymysql writes it: microseconds only when non-zero
            return f"'{value.isoformat(' ')}'"
        return str(self._conn.literal(value))  # strings escaped as the connection's mode asks

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
        self.writes: list[Write] = []

    def write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """Keep a write, in order."""
        self.writes.append((sql, args))

    def insert(self, table: Table, rows: Rows) -> None:
        """Keep an insert's rows, in order."""
        if rows:
            self.writes.append((table, rows))

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise TypeError("a grouped unit of work is write-only: it cannot read")


def merge_inserts(writes: Sequence[Write]) -> list[tuple[Table, list[Sequence[Any]]]] | None:
    """Merge inserts into one per table; None if any write is not an insert.

    The result inserts into each table once, in the order each first appears, with its rows in
    their original order. That reorders rows across tables, which is sound for batches like
    several uploads' (images, storage, history, outbox each): every table's rows depend only on
    rows of tables that first appeared before it.
    """
    merged: dict[Table, list[Sequence[Any]]] = {}
    for target, args in writes:
        if not isinstance(target, Table):
            return None
        merged.setdefault(target, []).extend(args)
    return list(merged.items())

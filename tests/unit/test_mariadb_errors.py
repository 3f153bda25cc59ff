"""How MariaDB errors are read: in-doubt commits and outages (issue 13)."""

from __future__ import annotations

import asyncio

import pymysql
import pytest

from adapters.db.mariadb import is_unreachable, outcome_unknown


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        # No connection could be opened: nothing was sent.
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), False),
        (pymysql.err.OperationalError(2002, "no socket"), False),
        (pymysql.err.OperationalError(2005, "Unknown MySQL server host"), False),
        # The connection was closed before the COMMIT was written (aiomysql's _ensure_alive).
        (pymysql.err.InterfaceError("(0, 'Not connected')"), False),
        (pymysql.err.InterfaceError("Cancelled during execution"), False),
        # MariaDB answered with an error: the batch stopped at that statement, before its COMMIT.
        (pymysql.err.IntegrityError(1062, "Duplicate entry"), False),
        (pymysql.err.OperationalError(1213, "Deadlock found"), False),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), False),
        (pymysql.err.DataError(1406, "Data too long"), False),
        (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), False),
        (pymysql.err.OperationalError(1927, "Connection was killed"), False),
        (pymysql.err.OperationalError(1053, "Server shutdown in progress"), False),
        (pymysql.err.OperationalError(1040, "Too many connections"), False),
        # The COMMIT may have been sent and run: the answer never came.
        (pymysql.err.OperationalError(2013, "Lost connection during query"), True),
        (pymysql.err.OperationalError(2006, "MySQL server has gone away"), True),
        (pymysql.err.OperationalError(2055, "Lost connection at 'reading ...'"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncio.CancelledError(), True),
    ],
)
def test_a_commit_is_in_doubt_only_when_something_may_have_reached_the_server(exc: Exception, unknown: bool) -> None:
    assert outcome_unknown(exc) is unknown


def test_unreachable_means_an_outage_not_a_refused_statement() -> None:
    assert is_unreachable(pymysql.err.OperationalError(2003, "refused"))
    assert is_unreachable(pymysql.err.OperationalError(2013, "lost"))
    assert not is_unreachable(pymysql.err.OperationalError(1213, "Deadlock"))
    assert not is_unreachable(pymysql.err.DataError(1406, "Data too long"))
    assert not is_unreachable(ValueError("a bug"))

"""How MariaDB errors are read: in-doubt commits and outages (issue 13)."""

from __future__ import annotations

import pymysql
import pytest

from adapters.db.mariadb import is_unreachable, outcome_unknown


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), False),  # nothing was sent
        (pymysql.err.OperationalError(2002, "no socket"), False),
        (pymysql.err.IntegrityError(1062, "Duplicate entry"), False),  # MariaDB refused: no COMMIT ran
        (pymysql.err.OperationalError(2013, "Lost connection during query"), True),
        (pymysql.err.InterfaceError(0, ""), True),
        (ConnectionResetError(), True),
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

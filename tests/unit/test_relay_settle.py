"""Which rows of a publish attempt are marked, failed for good, or retried (outbox/relay.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from outbox.settle import Row, settle

T = datetime(2025, 1, 1, tzinfo=UTC)


def rows(*keys: str) -> list[Row]:
    return [Row(n, f"e{n}", "t", k, b"{}", T) for n, k in enumerate(keys, start=1)]


def test_all_acknowledged_rows_are_published() -> None:
    out = settle(rows("a", "b"), [None, None])
    assert (out.published, out.failed, out.retry) == ([1, 2], [], [])


def test_a_too_large_row_is_failed_and_does_not_block_others() -> None:
    out = settle(rows("a", "a", "b"), [MessageSizeTooLargeError("big"), None, None])
    assert out.published == [2, 3]
    assert [row_id for row_id, _ in out.failed] == [1]


def test_a_transient_failure_holds_back_later_rows_of_the_same_key_only() -> None:
    out = settle(rows("a", "b", "a", "b"), [KafkaConnectionError("down"), None, None, None])
    assert out.published == [2, 4]
    assert out.retry == [1, 3]
    assert out.error and "KafkaConnectionError" in out.error


def test_a_timeout_is_transient() -> None:
    assert settle(rows("a"), [KafkaTimeoutError()]).retry == [1]


def test_only_outages_are_retried_by_the_workers() -> None:
    import pymysql

    from adapters.retry import is_transient

    assert is_transient(pymysql.err.OperationalError(2013, "Lost connection"))
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(pymysql.err.IntegrityError(1062, "Duplicate entry"))
    assert not is_transient(ValueError("a bug"))

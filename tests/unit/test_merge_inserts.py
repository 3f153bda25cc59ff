"""Merging a group's single-row INSERTs into one multi-row INSERT per statement."""

from __future__ import annotations

from adapters.db.repositories import INSERT_HISTORY, INSERT_IMAGE, LOCK_REFERENCE, UPDATE_IMAGE
from adapters.db.statements import merge_inserts


def test_rows_of_the_same_insert_merge_in_order_of_first_appearance() -> None:
    writes = [(INSERT_IMAGE, ("a",)), (INSERT_HISTORY, ("ha",)), (INSERT_IMAGE, ("b",)), (INSERT_HISTORY, ("hb",))]
    merged = merge_inserts(writes)
    assert merged is not None
    assert [(head.split(" (")[0], rows) for head, _, rows in merged] == [
        ("INSERT INTO images", [("a",), ("b",)]),
        ("INSERT INTO status_history", [("ha",), ("hb",)]),
    ]
    head, row, _ = merged[0]
    assert head + row == INSERT_IMAGE


def test_anything_but_a_plain_single_row_insert_is_not_merged() -> None:
    assert merge_inserts([(INSERT_IMAGE, ("a",)), (UPDATE_IMAGE, ("b",))]) is None
    assert merge_inserts([(LOCK_REFERENCE, ("POST", "r", "t"))]) is None  # ON DUPLICATE KEY UPDATE
    assert merge_inserts([("INSERT INTO t (a) VALUES (NOW())", ())]) is None

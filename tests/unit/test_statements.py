"""Structured inserts: a table's INSERT text, and a group's inserts merged per table without reading SQL."""

from __future__ import annotations

from adapters.db.repositories import IMAGES, STATUS_HISTORY, UPDATE_IMAGE
from adapters.db.statements import Recorder, Table, merge_inserts


def test_a_table_renders_its_insert_head_and_row_placeholders() -> None:
    table = Table("t", ("a", "b", "c"))
    assert table.head == "INSERT INTO t (a, b, c) VALUES "
    assert table.row == "(%s, %s, %s)"
    assert table == Table("t", ("a", "b", "c")) and hash(table) == hash(Table("t", ("a", "b", "c")))


def test_rows_of_one_table_merge_in_order_of_first_appearance() -> None:
    recorder = Recorder()
    recorder.insert(IMAGES, [("a",)])
    recorder.insert(STATUS_HISTORY, [("ha",)])
    recorder.insert(IMAGES, [("b",), ("c",)])
    recorder.insert(STATUS_HISTORY, [])  # no rows: nothing kept
    recorder.insert(STATUS_HISTORY, [("hb",)])
    assert merge_inserts(recorder.writes) == [(IMAGES, [("a",), ("b",), ("c",)]), (STATUS_HISTORY, [("ha",), ("hb",)])]


def test_a_group_with_any_other_statement_is_not_merged() -> None:
    recorder = Recorder()
    recorder.insert(IMAGES, [("a",)])
    recorder.write(UPDATE_IMAGE, ("b",))
    assert merge_inserts(recorder.writes) is None

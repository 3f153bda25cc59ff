from __future__ import annotations

from datetime import UTC, datetime

from adapters.db.reference_cache import seconds_until


def test_next_reload_is_later_today_when_before_half_past_midnight() -> None:
    assert seconds_until(0, 30, datetime(2025, 1, 20, 0, 10, tzinfo=UTC)) == 20 * 60


def test_next_reload_is_tomorrow_once_it_has_passed() -> None:
    assert seconds_until(0, 30, datetime(2025, 1, 20, 0, 30, tzinfo=UTC)) == 24 * 3600

"""core/quotas.py: the decision of a quota, pure, over minute buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import errors
from core.quotas import DAY, HOUR, QuotaLimits, Usage, check, minute_of, oldest_counted

NOW = datetime(2026, 12, 7, 12, 30, 40, tzinfo=UTC)


def at(minutes_ago: float, images: int = 1, nbytes: int = 100) -> Usage:
    return Usage(minute_of(NOW - timedelta(minutes=minutes_ago)), images, nbytes)


def test_no_limit_set_is_inactive_and_lets_everything_through() -> None:
    assert not QuotaLimits().active
    check(QuotaLimits(), [at(1, images=10**6)], NOW, 10**6, 10**12)


def test_an_upload_that_fits_passes_and_one_past_the_limit_is_refused() -> None:
    limits = QuotaLimits(images_per_hour=3)
    check(limits, [at(5), at(10)], NOW, 1, 1)
    with pytest.raises(errors.QuotaExceeded, match="images per hour: 3"):
        check(limits, [at(5), at(10), at(20)], NOW, 1, 1)


def test_retry_after_is_when_the_oldest_bucket_needed_leaves_the_window() -> None:
    limits = QuotaLimits(images_per_hour=2)
    with pytest.raises(errors.QuotaExceeded) as refused:
        check(limits, [at(50), at(10)], NOW, 1, 1)
    # The bucket of 50 minutes ago (12:30:40 - 50 min = 11:40:40, bucket 11:40) is counted until 12:41.
    assert refused.value.retry_after_s == (datetime(2026, 12, 7, 12, 41, tzinfo=UTC) - NOW).seconds


def test_the_oldest_minute_of_a_window_is_counted_whole() -> None:
    """No true rolling hour may hold more than the limit: the bucket holding now - 1 h still counts."""
    assert oldest_counted(NOW, HOUR) == datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    with pytest.raises(errors.QuotaExceeded):
        check(QuotaLimits(images_per_hour=1), [Usage(datetime(2026, 12, 7, 11, 30, tzinfo=UTC), 1, 1)], NOW, 1, 1)


def test_buckets_outside_a_window_do_not_count_in_it() -> None:
    check(QuotaLimits(images_per_hour=1), [at(61 + 1)], NOW, 1, 1)
    with pytest.raises(errors.QuotaExceeded, match="images per day"):
        check(QuotaLimits(images_per_hour=1, images_per_day=1), [at(62)], NOW, 1, 1)


def test_bytes_are_counted_apart_from_images() -> None:
    limits = QuotaLimits(bytes_per_day=1000)
    check(limits, [at(100, nbytes=600)], NOW, 5, 400)
    with pytest.raises(errors.QuotaExceeded, match="bytes per day"):
        check(limits, [at(100, nbytes=600)], NOW, 1, 401)


def test_a_request_over_the_limit_on_its_own_waits_a_whole_window() -> None:
    with pytest.raises(errors.QuotaExceeded) as refused:
        check(QuotaLimits(bytes_per_day=1000), [], NOW, 1, 1001)
    assert refused.value.retry_after_s == DAY.total_seconds()


def test_the_longest_wait_of_the_windows_exceeded_is_the_answer() -> None:
    limits = QuotaLimits(images_per_hour=1, images_per_day=1)
    with pytest.raises(errors.QuotaExceeded) as refused:
        check(limits, [at(10)], NOW, 1, 1)
    assert refused.value.retry_after_s > HOUR.total_seconds()

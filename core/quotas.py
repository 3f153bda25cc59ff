"""Quotas per uploader (CONTRACT 2.7): images and bytes per rolling hour and day.

Usage is counted in minute buckets (at most 1,441 rows an uploader a day). A window counts
every bucket that overlaps it, the oldest minute whole, so no true rolling hour or day ever
holds more than its limit; the price is up to a minute of extra wait. The decision is pure:
the adapter reads an uploader's buckets under that uploader's lock, in the upload's own
transaction, and records the new usage in it (adapters/db/quotas.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core import errors

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BUCKET = timedelta(minutes=1)


@dataclass(frozen=True)
class QuotaLimits:
    """What one uploader may upload per rolling hour and day; 0 means no limit."""

    images_per_hour: int = 0
    bytes_per_hour: int = 0
    images_per_day: int = 0
    bytes_per_day: int = 0

    @property
    def active(self) -> bool:
        """Tell whether any limit is set."""
        return any((self.images_per_hour, self.bytes_per_hour, self.images_per_day, self.bytes_per_day))

    def counted_since(self, now: datetime) -> datetime:
        """The oldest bucket any set limit counts at `now` (what an upload's check has to read)."""
        return oldest_counted(now, DAY if self.images_per_day or self.bytes_per_day else HOUR)


@dataclass(frozen=True)
class Usage:
    """What an uploader uploaded in one minute bucket."""

    minute: datetime
    images: int
    bytes: int


def minute_of(at: datetime) -> datetime:
    """The start of the minute bucket `at` falls in."""
    return at.replace(second=0, microsecond=0)


def oldest_counted(now: datetime, window: timedelta) -> datetime:
    """The first bucket a window ending at `now` counts (the one holding `now - window`)."""
    return minute_of(now - window)


def check(limits: QuotaLimits, usage: Sequence[Usage], now: datetime, images: int, nbytes: int) -> None:
    """Raise QuotaExceeded, with how long until it would fit, if this upload takes a window over its limit."""
    waits: dict[str, float] = {}  # limit exceeded -> seconds until the upload fits it
    for window, what, limit, added in (
        (HOUR, "images per hour", limits.images_per_hour, images),
        (HOUR, "bytes per hour", limits.bytes_per_hour, nbytes),
        (DAY, "images per day", limits.images_per_day, images),
        (DAY, "bytes per day", limits.bytes_per_day, nbytes),
    ):
        if not limit:
            continue
        counted = sorted((u for u in usage if u.minute >= oldest_counted(now, window)), key=lambda u: u.minute)
        amounts = [u.images if what.startswith("images") else u.bytes for u in counted]
        wait = _wait_until_fits(counted, amounts, limit, added, now, window)
        if wait is not None:
            waits[f"{what}: {limit}"] = wait
    if waits:
        exceeded = ", ".join(waits)
        raise errors.QuotaExceeded(
            f"the uploader's quota is used up ({exceeded})", retry_after_s=math.ceil(max(waits.values()))
        )


def _wait_until_fits(
    counted: Sequence[Usage], amounts: Sequence[int], limit: int, added: int, now: datetime, window: timedelta
) -> float | None:
    """Seconds until enough old buckets leave the window for `added` to fit; None if it fits now."""
    total = sum(amounts)
    if total + added <= limit:
        return None
    if added > limit:  # this request alone is over the limit: it never fits, say so with a whole window
        return window.total_seconds()
    for bucket, amount in zip(counted, amounts, strict=True):
        total -= amount
        if total + added <= limit:  # fits once this bucket is no longer counted
            return max(1.0, (bucket.minute + BUCKET + window - now).total_seconds())
    return window.total_seconds()  # unreachable: with every bucket gone the total is 0

"""How long what the service keeps is kept (CONTRACT 6, guide 11.1): the sweeps' ages, in one place."""

from __future__ import annotations

from datetime import timedelta

# An image not confirmed (TEMP) or never converted (FAILED) a day after its upload is removed, files and rows.
TEMP_EXPIRY = timedelta(hours=24)
FAILED_EXPIRY = timedelta(hours=24)
# A file with no row this long after it was written was left by an upload that never committed.
ORPHAN_AGE = timedelta(hours=1)
# Kafka's default retention: after that no message can be redelivered to need its dedupe row.
PROCESSED_EVENTS_RETENTION = timedelta(days=7)

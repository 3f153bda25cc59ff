"""The relay's own metrics, served by `python -m outbox` when IMAGES_RELAY_METRICS_PORT is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("outbox_published_total", "Outbox rows published")
FAILED = Counter("outbox_failed_total", "Outbox rows that can never be published")
RETRIED = Counter("outbox_retried_total", "Outbox rows left for a later attempt")
BATCH_ROWS = Histogram("outbox_batch_rows", "Rows per claimed batch", buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000))
PUBLISH_SECONDS = Histogram("outbox_publish_seconds", "Time to publish and acknowledge one batch")
COMMIT_TO_ACK = Histogram(
    "outbox_commit_to_ack_seconds",
    "From an outbox row's commit (its created_at) to the broker's acknowledgement of its message",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PENDING = Gauge("outbox_pending_rows", "Outbox rows not yet published")
OLDEST_AGE = Gauge("outbox_oldest_pending_age_seconds", "Age of the oldest unpublished row")
LEADER = Gauge("outbox_relay_active", "1 while this relay holds the leader lock")

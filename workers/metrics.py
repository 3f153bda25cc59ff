"""The workers' Prometheus metrics, served by `python -m workers worker` on IMAGES_WORKER_METRICS_PORT.

Names follow Prometheus's conventions (`_total` counters, `_seconds` in base units). The
conversion processes' restarts are counted where they happen (adapters/images/process_pool.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONVERSIONS = Counter(
    "image_conversions_total",
    "Uploaded images handled by the converter, by outcome (READY, FAILED, skipped) and input format",
    ["outcome", "format"],
)
CONVERSION_SECONDS = Histogram(
    "image_conversion_seconds",
    "Time one conversion took in its process (decode, encode, write)",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("worker_messages_in_flight", "Messages being handled now", ["topic"])
POISON = Counter("worker_poison_messages_total", "Messages recorded as poison and skipped", ["consumer"])
CONSUMER_LAG = Gauge(
    "worker_consumer_lag_messages",
    "Messages on an assigned partition not yet committed by this worker (end offset minus committed)",
    ["topic", "partition"],
)
ASSIGNED = Gauge(
    "worker_assigned_partitions",
    "Partitions this worker holds after its group's last rebalance (0 until it has joined, and while rebalancing)",
)

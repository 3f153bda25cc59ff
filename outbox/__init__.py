"""The outbox relay: publishes committed outbox rows to Kafka (CONTRACT section 5)."""

"""Kafka: the producer and topic set-up."""

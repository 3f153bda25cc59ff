"""faust-streaming's Kafka transport with the consumer's fetch wait as a setting.

faust-streaming builds its aiokafka consumer with `fetch_max_wait_ms=1500`, fixed. Apache Kafka
answers a waiting fetch as soon as a record arrives, so that costs nothing there; tansu (the
local broker) does not when the fetch spans several partitions: it answers after the whole
wait. Measured with one record every 0.37 s over 8 partitions: 483 ms p50 with 1500 ms, 110 ms
with 500, 12 ms with 100 (bench/NOTES.md). Upload-to-READY at light load paid that wait.
`IMAGES_WORKER_FETCH_MAX_WAIT_MS` (default 100) sets it; on Kafka a lower value only means
more empty fetches of an idle consumer (10 per second at 100 ms).
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[type] = _Consumer


class App(faust.App):
    """A faust.App whose Kafka consumer waits at most `fetch_max_wait_ms` for a fetch."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)

"""The asyncio bridge described in Confluent's blog post "Integrating Apache
Kafka With Python Asyncio Web Applications" (Matt Howlett), written from the
post's description for side-by-side comparison.

The pattern: a ``confluent_kafka.Producer``, a Python thread that calls the
blocking ``poll(0.1)`` in a loop, and one ``loop.call_soon_threadsafe`` per
delivered message to complete an ``asyncio.Future`` on the event loop.

Three produce flavours, as in the post:

* ``AIOProducer.produce``   -> awaitable future (the ``/items1`` shape);
* ``AIOProducer.produce2``  -> future *and* ``on_delivery`` dispatched to the
  loop (the ``/items2`` out-of-band shape);
* ``Producer.produce``      -> no future; ``on_delivery`` runs on the poll
  thread (``/items3``), or nothing at all (fire-and-forget, ``/items4``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException


class _PollThreadOwner:
    """A confluent_kafka.Producer served by a Python poll thread."""

    def __init__(self, configs: dict[str, Any]) -> None:
        self._producer = confluent_kafka.Producer(configs)
        self._cancelled = False
        self._poll_thread = threading.Thread(
            target=self._poll_loop, name="blog-poll", daemon=True
        )
        self._poll_thread.start()

    def _poll_loop(self) -> None:
        # The post's choice: a 0.1 s blocking poll, which also bounds how long
        # close() waits for the thread.
        while not self._cancelled:
            self._producer.poll(0.1)

    def flush(self, timeout: float = 30.0) -> int:
        """Blocking flush (not in the post; used by the benchmark between
        measurements, always from a worker thread, never the loop)."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self._cancelled = True
        self._poll_thread.join()

    def __len__(self) -> int:
        return len(self._producer)


class AIOProducer(_PollThreadOwner):
    """Futures completed with one call_soon_threadsafe per message."""

    def __init__(
        self,
        configs: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        super().__init__(configs)

    def produce(self, topic: str, value: Any) -> asyncio.Future[Any]:
        result = self._loop.create_future()
        loop = self._loop

        def ack(err: Any, msg: Any) -> None:
            if err:
                loop.call_soon_threadsafe(
                    result.set_exception, KafkaException(err)
                )
            else:
                loop.call_soon_threadsafe(result.set_result, msg)

        self._producer.produce(topic, value, on_delivery=ack)
        return result

    def produce2(
        self,
        topic: str,
        value: Any,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> asyncio.Future[Any]:
        """Future plus an optional callback, both run on the event loop."""
        result = self._loop.create_future()
        loop = self._loop

        def ack(err: Any, msg: Any) -> None:
            if err:
                loop.call_soon_threadsafe(
                    result.set_exception, KafkaException(err)
                )
            else:
                loop.call_soon_threadsafe(result.set_result, msg)
            if on_delivery is not None:
                loop.call_soon_threadsafe(on_delivery, err, msg)

        self._producer.produce(topic, value, on_delivery=ack)
        return result


class Producer(_PollThreadOwner):
    """Out-of-band produce: the callback (if any) runs on the poll thread."""

    def produce(
        self,
        topic: str,
        value: Any,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        self._producer.produce(topic, value, on_delivery=on_delivery)

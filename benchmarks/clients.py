"""One adapter per Python client, each written in that client's own idiom.

Every adapter offers the same small surface so the scenarios in
``benchmarks.worker`` are shared code:

* ``await start()`` / ``await close()``;
* ``one`` -- a zero-argument callable returning an awaitable that resolves
  when one message is delivered (the ``await producer.produce(...)`` shape);
* ``await gather(n)`` -- enqueue ``n`` messages, then await all of them;
* ``await window_fill(k, done)`` -- enqueue ``k`` messages, each future
  given ``done`` as its done-callback (the sliding window's refill: the
  window itself is ``benchmarks.worker._window``);
* ``await ff(n)`` -- enqueue ``n`` messages fire-and-forget;
* ``await flush()`` -- wait until everything enqueued is delivered.

The hot loops live inside the adapters so that no adapter pays for a
generic wrapper another one does not need.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

DoneCallback = Callable[["asyncio.Future[Any]"], None]

# Room for fire-and-forget bursts: every librdkafka-based client gets the
# same local queue bound, so nobody is measured against a smaller queue.
RDKAFKA_QUEUE_MAX_MESSAGES = 1_000_000


def rdkafka_conf(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "bootstrap.servers": spec["bootstrap"],
        "acks": str(spec["acks"]),
        "linger.ms": int(spec["linger_ms"]),
        "queue.buffering.max.messages": RDKAFKA_QUEUE_MAX_MESSAGES,
        "client.id": f"bench-{spec['client']}",
    }


async def _sleep_full() -> None:
    # The local queue is full: give the delivery side a moment.
    await asyncio.sleep(0.0005)


class Adapter:
    name = ""
    one: Callable[[], Awaitable[Any]]

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.topic: str = spec["topic"]
        self.value = b"x" * int(spec["value_size"])

    async def start(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def gather(self, n: int) -> None:  # pragma: no cover
        raise NotImplementedError

    async def window_fill(self, k: int,
                          done: DoneCallback) -> None:  # pragma: no cover
        raise NotImplementedError

    async def ff(self, n: int) -> None:  # pragma: no cover
        raise NotImplementedError

    async def flush(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        return {}


class AiokafkaC(Adapter):
    """aiokafka_c: produce() returns a future enqueued at call time;
    produce_nowait() is fire-and-forget."""

    name = "aiokafka_c"

    async def start(self) -> None:
        from aiokafka_c import AIOProducer, KafkaError, KafkaException

        self._exc = KafkaException
        self._queue_full = KafkaError._QUEUE_FULL
        self.p = AIOProducer(rdkafka_conf(self.spec))
        self.one = functools.partial(self.p.produce, self.topic, self.value)

    async def close(self) -> None:
        await self.p.close()

    async def gather(self, n: int) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        await asyncio.gather(*[produce(topic, value) for _ in range(n)])

    async def window_fill(self, k: int, done: DoneCallback) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        for _ in range(k):
            produce(topic, value).add_done_callback(done)

    async def ff(self, n: int) -> None:
        produce_nowait, topic, value = (
            self.p.produce_nowait,
            self.topic,
            self.value,
        )
        i = 0
        while i < n:
            try:
                while i < n:
                    produce_nowait(topic, value)
                    i += 1
            except self._exc as exc:
                # librdkafka's queue and the overflow behind it are full
                if exc.args[0].code() != self._queue_full:
                    raise
                await _sleep_full()

    async def flush(self) -> None:
        await self.p.flush(60.0)

    def versions(self) -> dict[str, str]:
        import aiokafka_c

        out = {"aiokafka_c": getattr(aiokafka_c, "__version__", "?")}
        for attr in ("librdkafka_version", "libversion"):
            fn = getattr(aiokafka_c, attr, None)
            if callable(fn):
                try:
                    v = fn()
                    v = v[0] if isinstance(v, tuple) else v
                    out["librdkafka"] = str(v)
                    break
                except Exception:  # noqa: BLE001,S110 - version is a nicety
                    pass
        return out


class Blog(Adapter):
    """The blog's bridge: Python poll thread + call_soon_threadsafe per
    message (benchmarks/blog_producer.py)."""

    name = "blog"

    async def start(self) -> None:
        from benchmarks.blog_producer import AIOProducer

        self.p = AIOProducer(rdkafka_conf(self.spec))
        self.one = functools.partial(self.p.produce, self.topic, self.value)

    async def close(self) -> None:
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(None, self.p.close)

    async def gather(self, n: int) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        await asyncio.gather(*[produce(topic, value) for _ in range(n)])

    async def window_fill(self, k: int, done: DoneCallback) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        for _ in range(k):
            produce(topic, value).add_done_callback(done)

    async def ff(self, n: int) -> None:
        # The post's out-of-band Producer.produce without a callback.
        produce = self.p._producer.produce
        topic, value = self.topic, self.value
        i = 0
        while i < n:
            try:
                while i < n:
                    produce(topic, value)
                    i += 1
            except BufferError:
                await _sleep_full()

    async def flush(self) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, self.p.flush, 60.0
        )

    def versions(self) -> dict[str, str]:
        import confluent_kafka

        return {
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0] + " (wheel-bundled)",
        }


class ConfluentAIO(Adapter):
    """confluent_kafka.aio.AIOProducer with its defaults: ``await
    produce()`` returns a future that resolves on delivery (a double await);
    messages sit in a Python buffer until 1000 accumulate or the buffer
    timer (1 s) fires."""

    name = "confluent_aio"

    async def start(self) -> None:
        from confluent_kafka.aio import AIOProducer

        self.p = AIOProducer(rdkafka_conf(self.spec))

        async def one() -> Any:
            fut = await self.p.produce(self.topic, self.value)
            return await fut

        self.one = one

    async def close(self) -> None:
        await self.p.close()

    async def gather(self, n: int) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        futs = [await produce(topic, value) for _ in range(n)]
        await asyncio.gather(*futs)

    async def window_fill(self, k: int, done: DoneCallback) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        for _ in range(k):
            (await produce(topic, value)).add_done_callback(done)

    async def ff(self, n: int) -> None:
        produce, topic, value = self.p.produce, self.topic, self.value
        for _ in range(n):
            await produce(topic, value)

    async def flush(self) -> None:
        await self.p.flush(60.0)

    def versions(self) -> dict[str, str]:
        import confluent_kafka

        return {
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0] + " (wheel-bundled)",
        }


class Aiokafka(Adapter):
    """aiokafka: ``await send()`` returns a future; ``send_and_wait``."""

    name = "aiokafka"

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        acks: Any = "all" if str(self.spec["acks"]) in ("all", "-1") else int(
            self.spec["acks"]
        )
        self.p = AIOKafkaProducer(
            bootstrap_servers=self.spec["bootstrap"],
            acks=acks,
            linger_ms=int(self.spec["linger_ms"]),
            client_id="bench-aiokafka",
        )
        await self.p.start()
        self.one = functools.partial(
            self.p.send_and_wait, self.topic, self.value
        )

    async def close(self) -> None:
        await self.p.stop()

    async def gather(self, n: int) -> None:
        send, topic, value = self.p.send, self.topic, self.value
        futs = [await send(topic, value) for _ in range(n)]
        await asyncio.gather(*futs)

    async def window_fill(self, k: int, done: DoneCallback) -> None:
        send, topic, value = self.p.send, self.topic, self.value
        for _ in range(k):
            (await send(topic, value)).add_done_callback(done)

    async def ff(self, n: int) -> None:
        send, topic, value = self.p.send, self.topic, self.value
        for _ in range(n):
            await send(topic, value)

    async def flush(self) -> None:
        await self.p.flush()

    def versions(self) -> dict[str, str]:
        import aiokafka

        return {"aiokafka": aiokafka.__version__}


class AsyncioFloor(Adapter):
    """No Kafka at all: futures resolved in batches by one loop callback,
    the way aiokafka_c resolves a batch of delivery reports.  What asyncio
    itself costs per awaited message (create_future, gather or a task
    wake-up, set_result): the floor under every asyncio client."""

    name = "asyncio_floor"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pending: list[asyncio.Future[None]] = []
        self._scheduled = False
        self.one = self._one

    def _resolve(self) -> None:
        pending, self._pending = self._pending, []
        self._scheduled = False
        for f in pending:
            if not f.cancelled():
                f.set_result(None)

    def _one(self) -> "asyncio.Future[None]":
        f = self._loop.create_future()
        self._pending.append(f)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._resolve)
        return f

    async def close(self) -> None:
        pass

    async def gather(self, n: int) -> None:
        one = self._one
        await asyncio.gather(*[one() for _ in range(n)])

    async def window_fill(self, k: int, done: DoneCallback) -> None:
        one = self._one
        for _ in range(k):
            one().add_done_callback(done)

    async def ff(self, n: int) -> None:
        pass

    async def flush(self) -> None:
        pass

    def versions(self) -> dict[str, str]:
        import sys

        return {"python": sys.version.split()[0]}


ASYNC_ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a for a in (AiokafkaC, Blog, ConfluentAIO, Aiokafka, AsyncioFloor)
}

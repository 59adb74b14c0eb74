"""Consumer scenarios: ``python -m benchmarks.consumer '<json spec>'``.

One process reads the run's pre-filled topic with one client through one
API shape and prints one line ``RESULT {json}`` (the same protocol as
``benchmarks.worker``):

* ``iter``  -- one message per call: ``async for`` (aiokafka_c, aiokafka),
  ``await poll()`` (confluent aio), ``poll()`` (confluent sync);
* ``batch`` -- a list per call: ``await consume(500)`` (aiokafka_c),
  ``await consume(1000)`` (confluent aio), ``consume(1000)`` (confluent
  sync), ``await getmany()`` (aiokafka, its default ``max_records``).

Every consumer gets a fresh group id and ``auto.offset.reset=earliest``
and otherwise its client's defaults.  The measurement runs from the first
message (joining the group and the first fetch are not timed) to the
``count``-th message, or ``seconds`` after the first, whichever comes first.
Every message's value is read (its length summed), and errors are checked
the way each client reports them.

Reported per measurement: msg/s, CPU microseconds per message for the whole
process (``time.process_time``: librdkafka's and any helper threads
included) and for the thread driving the loop (``time.thread_time``), and
for the asyncio clients the lateness of a 1 ms ``asyncio.sleep`` ticker
running alongside (p50/p99/max), as in the producer ``lag`` scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.stats import percentile

perf = time.perf_counter

# Batch size each client's batch call asks for (aiokafka's getmany() uses
# its default max_records: everything fetched).
BATCH = {"aiokafka_c": 500, "confluent_aio": 1000, "confluent_sync": 1000,
         "native": 1000, "aiokafka": None}


def rdkafka_consumer_conf(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "bootstrap.servers": spec["bootstrap"],
        "group.id": spec["group_id"],
        "auto.offset.reset": "earliest",
        "client.id": f"bench-{spec['client']}-consumer",
        **spec.get("extra_conf", {}),
    }


def _shape(spec: dict[str, Any]) -> str:
    return spec["variant"].split("_", 1)[0]


class _Meter:
    def start(self) -> None:
        self.t0 = perf()
        self.p0 = time.process_time()
        self.l0 = time.thread_time()

    def stop(self) -> None:
        self.seconds = perf() - self.t0
        self.cpu_proc = time.process_time() - self.p0
        self.cpu_loop = time.thread_time() - self.l0


class _State:
    """Counts shared by a hot loop and the measurement."""

    __slots__ = ("n", "bytes", "end", "count")

    def __init__(self, count: int) -> None:
        self.n = 0
        self.bytes = 0
        self.count = count
        self.end = 0.0


def _result(spec: dict[str, Any], m: _Meter, st: _State,
            lags: list[float] | None) -> dict[str, Any]:
    timed = st.n - 1  # the first message starts the clock
    per = 1e6 / timed if timed > 0 else None
    out: dict[str, Any] = {
        "name": f"consume_{spec['variant']}",
        "kind": "consume",
        "msgs": timed,
        "seconds": round(m.seconds, 6),
        "rate": timed / m.seconds if m.seconds > 0 else None,
        "cpu_proc_us": m.cpu_proc * per if per else None,
        "cpu_loop_us": m.cpu_loop * per if per else None,
        "bytes": st.bytes,
        "received": st.n,
        "capped_by": "count" if st.n >= st.count else "seconds",
        "batch": BATCH.get(spec["client"]) if _shape(spec) == "batch"
        else 1,
    }
    if lags is not None:
        s = sorted(lags)
        out.update(
            ticks=len(s),
            lag_p50_ms=percentile(s, 50),
            lag_p99_ms=percentile(s, 99),
            lag_max_ms=s[-1] if s else None,
        )
    return out


# --------------------------------------------------------------------------
# asyncio clients: each adapter has start(), close(), first() (wait for and
# count the first message, untimed) and iter(st) / batch(st) hot loops that
# run until st.count messages or perf() > st.end.
# --------------------------------------------------------------------------


class AiokafkaC:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    async def start(self) -> None:
        from aiokafka_c import AIOConsumer

        self.c = AIOConsumer(rdkafka_consumer_conf(self.spec))
        await self.c.subscribe([self.spec["topic"]])
        self._it = self.c.__aiter__()

    async def close(self) -> None:
        await self.c.close()

    async def first(self, st: _State) -> None:
        if _shape(self.spec) == "iter":
            msg = await self._it.__anext__()
            st.n, st.bytes = 1, len(msg.value())
            return
        while not st.n:
            for msg in await self.c.consume(1, 1.0):
                if msg.error() is not None:
                    raise RuntimeError(f"consume: {msg.error()}")
                st.n, st.bytes = 1, len(msg.value())

    async def iter(self, st: _State) -> None:
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            async for msg in self._it:
                nbytes += len(msg.value())
                n += 1
                if n >= count or (not n & 1023 and perf() > end):
                    break
        finally:
            st.n, st.bytes = n, nbytes

    async def batch(self, st: _State) -> None:
        consume, size = self.c.consume, BATCH["aiokafka_c"]
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            while n < count:
                for msg in await consume(min(size, count - n), 1.0):
                    if msg.error() is not None:
                        raise RuntimeError(f"consume: {msg.error()}")
                    nbytes += len(msg.value())
                    n += 1
                if perf() > end:
                    break
        finally:
            st.n, st.bytes = n, nbytes

    def versions(self) -> dict[str, str]:
        import aiokafka_c

        out = {"aiokafka_c": getattr(aiokafka_c, "__version__", "?")}
        for attr in ("librdkafka_version", "libversion"):
            fn = getattr(aiokafka_c, attr, None)
            if callable(fn):
                v = fn()
                out["librdkafka"] = str(v[0] if isinstance(v, tuple) else v)
                break
        return out


class ConfluentAIO:
    """confluent_kafka.aio.AIOConsumer: every call goes through its thread
    pool executor (default max_workers=100)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    async def start(self) -> None:
        from confluent_kafka.aio import AIOConsumer

        self.c = AIOConsumer(rdkafka_consumer_conf(self.spec))
        await self.c.subscribe([self.spec["topic"]])

    async def close(self) -> None:
        await self.c.close()

    async def first(self, st: _State) -> None:
        while not st.n:
            msg = await self.c.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                raise RuntimeError(f"poll: {msg.error()}")
            st.n, st.bytes = 1, len(msg.value())

    async def iter(self, st: _State) -> None:
        poll = self.c.poll
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            while n < count:
                msg = await poll(1.0)
                if msg is not None:
                    if msg.error() is not None:
                        raise RuntimeError(f"poll: {msg.error()}")
                    nbytes += len(msg.value())
                    n += 1
                    if n & 1023:
                        continue
                if perf() > end:
                    break
        finally:
            st.n, st.bytes = n, nbytes

    async def batch(self, st: _State) -> None:
        consume, size = self.c.consume, BATCH["confluent_aio"]
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            while n < count:
                for msg in await consume(min(size, count - n), 1.0):
                    if msg.error() is not None:
                        raise RuntimeError(f"consume: {msg.error()}")
                    nbytes += len(msg.value())
                    n += 1
                if perf() > end:
                    break
        finally:
            st.n, st.bytes = n, nbytes

    def versions(self) -> dict[str, str]:
        import confluent_kafka

        return {
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0] + " (wheel-bundled)",
        }


class Aiokafka:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self.c = AIOKafkaConsumer(
            self.spec["topic"],
            bootstrap_servers=self.spec["bootstrap"],
            group_id=self.spec["group_id"],
            auto_offset_reset="earliest",
            client_id="bench-aiokafka-consumer",
        )
        await self.c.start()
        self._it = self.c.__aiter__()

    async def close(self) -> None:
        await self.c.stop()

    async def first(self, st: _State) -> None:
        if _shape(self.spec) == "iter":
            msg = await self._it.__anext__()
            st.n, st.bytes = 1, len(msg.value)
            return
        # One record, then the timed getmany() loop takes the rest.
        while not st.n:
            for recs in (await self.c.getmany(timeout_ms=1000,
                                              max_records=1)).values():
                for msg in recs:
                    st.n, st.bytes = 1, len(msg.value)

    async def iter(self, st: _State) -> None:
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            async for msg in self._it:
                nbytes += len(msg.value)
                n += 1
                if n >= count or (not n & 1023 and perf() > end):
                    break
        finally:
            st.n, st.bytes = n, nbytes

    async def batch(self, st: _State) -> None:
        getmany = self.c.getmany
        n, nbytes, count, end = st.n, st.bytes, st.count, st.end
        try:
            while n < count:
                for recs in (await getmany(timeout_ms=1000)).values():
                    for msg in recs:
                        nbytes += len(msg.value)
                        n += 1
                if perf() > end:
                    break
        finally:
            st.n, st.bytes = n, nbytes

    def versions(self) -> dict[str, str]:
        import aiokafka

        return {"aiokafka": aiokafka.__version__}


ADAPTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "aiokafka_c": AiokafkaC,
    "confluent_aio": ConfluentAIO,
    "aiokafka": Aiokafka,
}


async def run_async(spec: dict[str, Any]) -> dict[str, Any]:
    a = ADAPTERS[spec["client"]](spec)
    join = float(spec.get("join_timeout", 60.0))
    await asyncio.wait_for(a.start(), join)
    st = _State(int(spec["count"]))
    try:
        await asyncio.wait_for(a.first(st), join)
        lags: list[float] = []
        running = True

        async def ticker() -> None:
            sleep = asyncio.sleep
            while running:
                t0 = perf()
                await sleep(0.001)
                lags.append((perf() - t0 - 0.001) * 1e3)

        hot: Callable[[_State], Awaitable[None]] = getattr(a, _shape(spec))
        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)  # the ticker is armed before the clock runs
        m = _Meter()
        m.start()
        st.end = m.t0 + float(spec["seconds"])
        try:
            await hot(st)
        finally:
            m.stop()
            running = False
            await tick
        meas = _result(spec, m, st, lags)
    finally:
        await asyncio.wait_for(a.close(), join)
    return {"measurements": [meas], "versions": a.versions()}


# --------------------------------------------------------------------------
# confluent_kafka.Consumer, no event loop: the Python floor
# --------------------------------------------------------------------------


def run_sync(spec: dict[str, Any]) -> dict[str, Any]:
    import confluent_kafka

    c = confluent_kafka.Consumer(rdkafka_consumer_conf(spec))
    c.subscribe([spec["topic"]])
    st = _State(int(spec["count"]))
    join_end = perf() + float(spec.get("join_timeout", 60.0))
    try:
        while not st.n:
            if perf() > join_end:
                raise TimeoutError("no first message before the join timeout")
            msg = c.poll(0.1)
            if msg is None:
                continue
            if msg.error() is not None:
                raise RuntimeError(f"poll: {msg.error()}")
            st.n, st.bytes = 1, len(msg.value())
        m = _Meter()
        m.start()
        n, nbytes, count = st.n, st.bytes, st.count
        end = m.t0 + float(spec["seconds"])
        if _shape(spec) == "iter":
            poll = c.poll
            while n < count:
                msg = poll(1.0)
                if msg is not None:
                    if msg.error() is not None:
                        raise RuntimeError(f"poll: {msg.error()}")
                    nbytes += len(msg.value())
                    n += 1
                    if n & 1023:
                        continue
                if perf() > end:
                    break
        else:
            consume, size = c.consume, BATCH["confluent_sync"]
            while n < count:
                for msg in consume(min(size, count - n), 1.0):
                    if msg.error() is not None:
                        raise RuntimeError(f"consume: {msg.error()}")
                    nbytes += len(msg.value())
                    n += 1
                if perf() > end:
                    break
        m.stop()
        st.n, st.bytes = n, nbytes
        meas = _result(spec, m, st, None)
    finally:
        c.close()
    return {
        "measurements": [meas],
        "versions": {
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0] + " (wheel-bundled)",
        },
    }


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    try:
        if spec["client"] == "confluent_sync":
            result = run_sync(spec)
        else:
            if spec.get("loop") == "uvloop":
                import uvloop

                uvloop.install()
            result = asyncio.run(run_async(spec))
        result["ok"] = True
    except BaseException as exc:  # report, never hang the harness
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    result["pid"] = os.getpid()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

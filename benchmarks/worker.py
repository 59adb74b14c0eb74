"""One benchmark process: ``python -m benchmarks.worker '<json spec>'``.

Runs one client through one scenario group (or, in smoke mode, all groups)
against one topic and prints one line ``RESULT {json}`` on stdout.  The
harness (``benchmarks.harness``) starts a fresh process for every
(client, scenario, settings, repeat) so no client inherits another's
threads, allocator state or imported modules.

Scenario groups and the measurements they produce:

* ``ff``      -- ``ff``: fire-and-forget throughput, timed to the end of the
  final flush (plus ``ff_cb`` for the sync confluent-kafka floor);
* ``gather``  -- ``gather_<N>``: enqueue N, await all N, repeat;
* ``tasks``   -- ``tasks_<K>``: K tasks each awaiting its own produce, the
  shape of K concurrent web requests;
* ``window``  -- ``window_<N>``: one coroutine keeps N futures in flight,
  each completion freeing a slot it refills (sustained throughput);
* ``latency`` -- ``latency``: one awaited produce at a time, p50/p99/p99.9;
* ``lag``     -- ``lag``: a 1 ms ticker's lateness while K=1000 tasks
  produce flat out.

Every throughput measurement also reports CPU microseconds per message for
the whole process (``time.process_time``: includes librdkafka's and any
helper threads) and for the thread driving the loop (``time.thread_time``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from benchmarks.stats import percentile

perf = time.perf_counter
WARMUP_TIMEOUT = 60.0


class _Meter:
    """Wall, process-CPU and this-thread-CPU deltas around a measurement."""

    def __enter__(self) -> _Meter:
        self.t0 = perf()
        self.p0 = time.process_time()
        self.l0 = time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = perf() - self.t0
        self.cpu_proc = time.process_time() - self.p0
        self.cpu_loop = time.thread_time() - self.l0

    def result(self, name: str, msgs: int, **extra: Any) -> dict[str, Any]:
        per = 1e6 / msgs if msgs else None
        out = {
            "name": name,
            "kind": "throughput",
            "msgs": msgs,
            "seconds": round(self.seconds, 6),
            "rate": msgs / self.seconds if self.seconds > 0 else None,
            "cpu_proc_us": self.cpu_proc * per if per else None,
            "cpu_loop_us": self.cpu_loop * per if per else None,
        }
        out.update(extra)
        return out


def _latency_result(name: str, samples_ns: list[int]) -> dict[str, Any]:
    s = sorted(x / 1e6 for x in samples_ns)
    return {
        "name": name,
        "kind": "latency",
        "msgs": len(s),
        "p50_ms": percentile(s, 50),
        "p99_ms": percentile(s, 99),
        "p999_ms": percentile(s, 99.9),
        "mean_ms": sum(s) / len(s) if s else None,
        "max_ms": s[-1] if s else None,
    }


# --------------------------------------------------------------------------
# asyncio clients
# --------------------------------------------------------------------------


class _Stop:
    """A flag flipped by the loop after ``seconds``: cheaper than reading the
    clock in every iteration of a hot loop."""

    def __init__(self, seconds: float) -> None:
        self.stopped = False
        self._h = asyncio.get_running_loop().call_later(seconds, self.set)

    def set(self) -> None:
        self.stopped = True

    def cancel(self) -> None:
        self._h.cancel()


async def _rounds(
    count: int, seconds: float, step: Callable[[], Awaitable[int]]
) -> int:
    if seconds <= 0:
        return 0
    stop = _Stop(seconds)
    done = 0
    try:
        while done < count and not stop.stopped:
            done += await step()
    finally:
        stop.cancel()
    return done


async def _tasks(one: Callable[[], Awaitable[Any]], k: int, count: int,
                 seconds: float) -> int:
    if seconds <= 0:
        return 0
    stop = _Stop(seconds)
    state = {"left": count, "done": 0}

    async def worker() -> None:
        while state["left"] > 0 and not stop.stopped:
            state["left"] -= 1
            await one()
            state["done"] += 1

    try:
        await asyncio.gather(*[worker() for _ in range(k)])
    finally:
        stop.cancel()
    return state["done"]


class _Window:
    """A sliding window's bookkeeping.  ``done`` is every future's
    done-callback: it frees the future's slot, counts a failure and wakes
    the producing coroutine if it waits in ``room``.  O(1) per completion;
    runs on the loop thread."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.errors = 0
        self.first_error: BaseException | None = None
        self._room: asyncio.Future[None] | None = None

    def done(self, fut: asyncio.Future[Any]) -> None:
        self.in_flight -= 1
        if fut.cancelled() or fut.exception() is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = (asyncio.CancelledError()
                                    if fut.cancelled() else fut.exception())
        room = self._room
        if room is not None:
            # Woken once: the rest of a batch of completions runs before
            # the producer does, so it refills them all in one go.
            self._room = None
            room.set_result(None)

    async def room(self, limit: int) -> None:
        """Return once fewer than ``limit`` futures are in flight."""
        while self.in_flight >= limit:
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    def check(self, sent: int) -> None:
        """Raise if any of the ``sent`` deliveries failed."""
        if self.errors:
            raise RuntimeError(
                f"{self.errors} of {sent} deliveries failed, the first: "
                f"{self.first_error!r}")


async def _window(a: Any, n: int, count: int, seconds: float) -> int:
    """Keep n messages in flight through ``a.window_fill``, refilling as
    they complete, until count are sent or seconds pass; then wait for
    the last.  Returns the number sent, raises if any failed."""
    if seconds <= 0:
        return 0
    stop = _Stop(seconds)
    w = _Window()
    sent = 0
    try:
        while sent < count and not stop.stopped:
            k = min(n - w.in_flight, count - sent)
            w.in_flight += k
            await a.window_fill(k, w.done)
            sent += k
            await w.room(n)
        await w.room(1)
    finally:
        stop.cancel()
    w.check(sent)
    return sent


async def _warmup(adapter: Any, spec: dict[str, Any]) -> None:
    """Connect, fetch metadata and push a first batch through, untimed."""
    await asyncio.wait_for(adapter.gather(10), WARMUP_TIMEOUT)
    await asyncio.wait_for(adapter.flush(), WARMUP_TIMEOUT)


Results = list[dict[str, Any]]


async def _scenario_ff(a: Any, spec: dict[str, Any]) -> Results:
    chunk = 1000

    async def step() -> int:
        await a.ff(chunk)
        await asyncio.sleep(0)  # let the loop breathe, as any app would
        return chunk

    await _rounds(10**9, spec["warmup_seconds"], step)
    await a.flush()
    with _Meter() as m:
        n = await _rounds(spec["count"], spec["seconds"], step)
        enqueued = perf() - m.t0
        await a.flush()
    return [m.result("ff", n, enqueue_rate=n / enqueued if n else None)]


async def _scenario_gather(a: Any, spec: dict[str, Any]) -> Results:
    out = []
    for n in spec["gather_ns"]:
        async def step(n: int = n) -> int:
            await a.gather(n)
            return n

        await _rounds(max(n, 1), spec["warmup_seconds"], step)
        with _Meter() as m:
            done = await _rounds(spec["count"], spec["seconds"], step)
        out.append(m.result(f"gather_{n}", done))
    return out


async def _scenario_tasks(a: Any, spec: dict[str, Any]) -> Results:
    out = []
    for k in spec["task_ks"]:
        await _tasks(a.one, k, k, spec["warmup_seconds"])
        with _Meter() as m:
            done = await _tasks(a.one, k, spec["count"], spec["seconds"])
        out.append(m.result(f"tasks_{k}", done))
    return out


async def _scenario_window(a: Any, spec: dict[str, Any]) -> Results:
    out = []
    for n in spec["window_ns"]:
        await _window(a, n, n, spec["warmup_seconds"])
        with _Meter() as m:
            done = await _window(a, n, spec["count"], spec["seconds"])
        out.append(m.result(f"window_{n}", done))
    return out


async def _scenario_latency(a: Any, spec: dict[str, Any]) -> Results:
    one = a.one
    if spec["warmup_seconds"] > 0:
        stop = _Stop(spec["warmup_seconds"])
        for _ in range(20):
            await one()
            if stop.stopped:
                break
        stop.cancel()
    samples: list[int] = []
    stop = _Stop(spec["latency_seconds"])
    now = time.perf_counter_ns
    try:
        while len(samples) < spec["latency_count"] and not stop.stopped:
            t0 = now()
            await one()
            samples.append(now() - t0)
    finally:
        stop.cancel()
    return [_latency_result("latency", samples)]


async def _scenario_lag(a: Any, spec: dict[str, Any]) -> Results:
    k = spec["lag_tasks"]
    await _tasks(a.one, k, k, spec["warmup_seconds"])
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        sleep = asyncio.sleep
        while running:
            t0 = perf()
            await sleep(0.001)
            lags.append((perf() - t0 - 0.001) * 1e3)

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    try:
        with _Meter() as m:
            done = await _tasks(a.one, k, 10**9, spec["lag_seconds"])
    finally:
        running = False
        await tick
    s = sorted(lags)
    return [
        m.result(
            "lag",
            done,
            kind="lag",
            ticks=len(s),
            lag_p50_ms=percentile(s, 50),
            lag_p99_ms=percentile(s, 99),
            lag_max_ms=s[-1] if s else None,
        )
    ]


ASYNC_SCENARIOS = {
    "ff": _scenario_ff,
    "gather": _scenario_gather,
    "tasks": _scenario_tasks,
    "window": _scenario_window,
    "latency": _scenario_latency,
    "lag": _scenario_lag,
}


async def run_async(spec: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.clients import ASYNC_ADAPTERS

    adapter = ASYNC_ADAPTERS[spec["client"]](spec)
    await asyncio.wait_for(adapter.start(), WARMUP_TIMEOUT)
    measurements: list[dict[str, Any]] = []
    try:
        await _warmup(adapter, spec)
        for group in spec["groups"]:
            measurements += await ASYNC_SCENARIOS[group](adapter, spec)
            await adapter.flush()
    finally:
        await asyncio.wait_for(adapter.close(), WARMUP_TIMEOUT)
    return {"measurements": measurements, "versions": adapter.versions()}


# --------------------------------------------------------------------------
# confluent-kafka's synchronous Producer: the Python floor
# --------------------------------------------------------------------------


def _deadline(seconds: float) -> float:
    return perf() + seconds


class _SyncOps(NamedTuple):
    """The sync floor's scenario loops, closures over one producer."""

    ff: Callable[[int, float, bool], int]
    gather: Callable[[int, int, float], int]
    window: Callable[[int, int, float], int]
    latency: Callable[[int, float], list[int]]


def _sync_latency_op(
    produce: Any, poll: Any, cb: Any, topic: str, value: bytes,
    state: dict[str, Any],
) -> Callable[[int, float], list[int]]:
    """One produce at a time, each served by poll() until its delivery
    report: 20 untimed round trips first, then up to count timed ones."""

    def latency(count: int, seconds: float) -> list[int]:
        samples: list[int] = []
        end = _deadline(seconds)
        now = time.perf_counter_ns
        for i in range(20 + count):
            if perf() > end:
                break
            t0 = now()
            target = state["dr"] + 1
            produce(topic, value, on_delivery=cb)
            while state["dr"] < target:
                poll(1.0)
            if i >= 20:
                samples.append(now() - t0)
        return samples

    return latency


def _sync_ops(p: Any, topic: str, value: bytes,
              state: dict[str, Any]) -> _SyncOps:
    """Each loop produces through the closure's own ``produce``/``poll``
    and counts deliveries in ``state`` ("dr", "err"; ff also leaves its
    enqueue seconds in "enq")."""
    produce, poll, flush = p.produce, p.poll, p.flush

    def cb(err: Any, msg: Any) -> None:
        state["dr"] += 1
        if err is not None:
            state["err"] += 1

    def ff(count: int, seconds: float, with_cb: bool) -> int:
        end, i = _deadline(seconds), 0
        state["enq"] = perf()
        while i < count and perf() < end:
            for _ in range(1000):
                try:
                    if with_cb:
                        produce(topic, value, on_delivery=cb)
                    else:
                        produce(topic, value)
                except BufferError:
                    poll(0.0005)
                    continue
                poll(0)
                i += 1
        state["enq"] = perf() - state["enq"]
        flush(60)
        return i

    def gather(n: int, count: int, seconds: float) -> int:
        # Serve delivery reports with poll() until all n arrived -- not
        # flush(), which makes librdkafka ignore linger.ms and would not
        # match what the asyncio clients can do.
        end, done = _deadline(seconds), 0
        while done < count and perf() < end:
            target = state["dr"] + n
            for _ in range(n):
                produce(topic, value, on_delivery=cb)
            while state["dr"] < target:
                poll(0.1)
            done += n
        return done

    def window(k: int, count: int, seconds: float) -> int:
        end, sent = _deadline(seconds), 0
        base = state["dr"]
        while sent < count and perf() < end:
            while sent - (state["dr"] - base) < k and sent < count:
                produce(topic, value, on_delivery=cb)
                sent += 1
            poll(0.1)
        flush(60)
        return sent

    latency = _sync_latency_op(produce, poll, cb, topic, value, state)
    return _SyncOps(ff, gather, window, latency)


def _sync_group(ops: _SyncOps, group: str, spec: dict[str, Any],
                state: dict[str, Any]) -> Results:
    """One scenario group's measurements, each after its warm-up."""
    ms: Results = []
    if group == "ff":
        for name, with_cb in (("ff", False), ("ff_cb", True)):
            ops.ff(10**9, spec["warmup_seconds"], with_cb)
            with _Meter() as m:
                n = ops.ff(spec["count"], spec["seconds"], with_cb)
            ms.append(m.result(name, n, enqueue_rate=n / state["enq"]))
    elif group == "gather":
        for n in spec["gather_ns"]:
            ops.gather(n, 10**9, spec["warmup_seconds"])
            with _Meter() as m:
                done = ops.gather(n, spec["count"], spec["seconds"])
            ms.append(m.result(f"gather_{n}", done))
    elif group in ("tasks", "window"):
        # Without a loop, K tasks awaiting are a window of K in flight.
        sizes = spec["task_ks"] if group == "tasks" else spec["window_ns"]
        for n in sizes:
            ops.window(n, 10**9, spec["warmup_seconds"])
            with _Meter() as m:
                done = ops.window(n, spec["count"], spec["seconds"])
            ms.append(m.result(f"{group}_{n}", done))
    elif group == "latency":
        samples = ops.latency(spec["latency_count"], spec["latency_seconds"])
        ms.append(_latency_result("latency", samples))
    # "lag" has no meaning without an event loop.
    return ms


def run_sync(spec: dict[str, Any]) -> dict[str, Any]:
    import confluent_kafka

    from benchmarks.clients import rdkafka_conf

    p = confluent_kafka.Producer(rdkafka_conf(spec))
    state = {"dr": 0, "err": 0}
    ops = _sync_ops(p, spec["topic"], b"x" * int(spec["value_size"]), state)
    ops.gather(10, 10, WARMUP_TIMEOUT)
    ms: Results = []
    for group in spec["groups"]:
        ms += _sync_group(ops, group, spec, state)
    p.flush(60)
    return {
        "measurements": ms,
        "versions": {
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka": confluent_kafka.libversion()[0] + " (wheel-bundled)",
        },
        "delivery_errors": state["err"],
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

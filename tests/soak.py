"""Soak: produce and consume at a steady rate through broker restarts and
watch what the process holds over time.

    python -m tests.soak --minutes 30            # its own broker, restarted
    python -m tests.soak --minutes 5 --bootstrap host:port   # no restarts

One AIOProducer awaits ``--rate`` messages a second (acks=all) and one
AIOConsumer in a group reads them with ``async for`` (auto-commit), on one
loop, beside a 10 ms ticker that measures the loop's lag.  With its own
broker the soak restarts it (SIGTERM, same data) ``--restarts`` times,
evenly spread.  Every ``--interval`` seconds it samples RSS, threads, open
file descriptors, the ticker's p99 lateness and the counters, prints the
sample as a line and at the end a JSON summary (``SOAK-SUMMARY {...}``).

It fails (exit status 1) when RSS after the drain and close is more than
``--max-rss-growth-mib`` above the end of the first quarter (warm-up), or the thread or descriptor count
at the end is above the most seen during warm-up plus a small margin
(librdkafka's threads and sockets come back after each restart), or an
acknowledged message was never consumed.  tests/test_soak.py runs a
one-minute version.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from aiokafka_c import (
    AIOAdminClient,
    AIOConsumer,
    AIOProducer,
    KafkaException,
    NewTopic,
)

PARTITIONS = 3
ACKED, SEEN = 1, 2
THREAD_MARGIN = 4
FD_MARGIN = 8


@dataclass
class Sample:
    t: float
    rss_mib: float
    threads: int
    fds: int
    lag_p99_ms: float
    sent: int
    acked: int
    failed: int
    consumed: int
    broker_up: bool


@dataclass
class Counters:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    consumed: int = 0
    # One byte per offset and partition (ACKED | SEEN bits): a set of
    # (partition, offset) tuples would itself grow ~200 bytes a message
    # and hide what the soak looks for.
    marks: dict[int, bytearray] = field(default_factory=dict)
    distinct_seen: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_end_mib: float = 0.0

    def mark(self, partition: int, offset: int, bit: int) -> None:
        b = self.marks.setdefault(partition, bytearray())
        if offset >= len(b):
            b.extend(bytes(offset + 1 - len(b) + 4096))
        if bit == SEEN and not b[offset] & SEEN:
            self.distinct_seen += 1
        b[offset] |= bit

    def acked_not_seen(self) -> int:
        return sum(v & (ACKED | SEEN) == ACKED
                   for b in self.marks.values() for v in b)

    def error(self, exc: BaseException) -> None:
        name = (exc.args[0].name() if isinstance(exc, KafkaException)
                else type(exc).__name__)
        self.errors[name] = self.errors.get(name, 0) + 1


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def create_topic(bootstrap: str, topic: str) -> None:
    async with AIOAdminClient({"bootstrap.servers": bootstrap}) as admin:
        fs = admin.create_topics([NewTopic(topic, PARTITIONS, 1)],
                                 operation_timeout=30, request_timeout=30)
        await asyncio.wait_for(fs[topic], 60)


async def produce_steadily(p: AIOProducer, topic: str, rate: int,
                           c: Counters, stop: asyncio.Event) -> None:
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    pending: set[asyncio.Future[Any]] = set()

    async def one(i: int) -> None:
        try:
            m = await p.produce(topic, b"soak-%d" % i)
        except KafkaException as exc:
            c.failed += 1
            c.error(exc)
            return
        c.acked += 1
        c.mark(m.partition() or 0, m.offset() or 0, ACKED)

    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        for _ in range(per_tick):
            fut = asyncio.ensure_future(one(c.sent))
            pending.add(fut)
            fut.add_done_callback(pending.discard)
            c.sent += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    if pending:
        await asyncio.wait(pending, timeout=120)


async def consume(cons: AIOConsumer, c: Counters) -> None:
    while True:
        try:
            async for m in cons:
                if m.error() is not None:
                    continue
                c.consumed += 1
                c.mark(m.partition() or 0, m.offset() or 0, SEEN)
        except KafkaException as exc:  # broker restarts: keep reading
            c.error(exc)
            await asyncio.sleep(0.2)
            continue
        return


async def ticker(lateness: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lateness.append((loop.time() - t - 0.01) * 1000)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from tests.kafkabroker import KafkaBroker

        broker = KafkaBroker()
        bootstrap = await asyncio.to_thread(broker.start)
    broker_up = True
    topic = f"soak-{uuid.uuid4().hex[:8]}"
    c = Counters()
    samples: list[Sample] = []
    lateness: list[float] = []
    stop = asyncio.Event()
    try:
        await create_topic(bootstrap, topic)
        producer = AIOProducer({"bootstrap.servers": bootstrap, "acks": "all",
                                "linger.ms": 5,
                                "message.timeout.ms": 120000})
        consumer = AIOConsumer({"bootstrap.servers": bootstrap,
                                "group.id": topic,
                                "auto.offset.reset": "earliest",
                                "session.timeout.ms": 45000})
        await consumer.subscribe([topic])
        tasks = [
            asyncio.ensure_future(produce_steadily(producer, topic,
                                                   args.rate, c, stop)),
            asyncio.ensure_future(ticker(lateness, stop)),
        ]
        reading = asyncio.ensure_future(consume(consumer, c))
        loop = asyncio.get_running_loop()
        start = loop.time()
        duration = args.minutes * 60
        restarts = ([duration * (i + 1) / (args.restarts + 1)
                     for i in range(args.restarts)] if broker else [])
        restarting: asyncio.Future[Any] | None = None
        while loop.time() - start < duration:
            await asyncio.sleep(args.interval)
            now = loop.time() - start
            if restarts and now >= restarts[0] and restarting is None:
                restarts.pop(0)
                broker_up = False
                assert broker is not None
                restarting = asyncio.ensure_future(
                    asyncio.to_thread(broker.restart))
            if restarting is not None and restarting.done():
                restarting.result()
                restarting = None
                broker_up = True
            window, lateness[:] = lateness[:], []
            s = Sample(round(now, 1), round(rss_mib(), 1),
                       len(os.listdir("/proc/self/task")),
                       len(os.listdir("/proc/self/fd")),
                       round(percentile(window, 0.99), 2), c.sent, c.acked,
                       c.failed, c.consumed, broker_up)
            samples.append(s)
            print("SOAK-SAMPLE", json.dumps(asdict(s)), flush=True)
        if restarting is not None:
            await restarting
        stop.set()
        await asyncio.gather(*tasks)
        # Everything acknowledged must come out of the consumer.
        deadline = loop.time() + 120
        while c.acked_not_seen() and loop.time() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.wait_for(consumer.close(), 60)
        await asyncio.wait_for(reading, 10)
        await asyncio.wait_for(producer.close(), 60)
        # Drained and closed: what is left is what the process keeps.
        gc.collect()
        c.rss_end_mib = round(rss_mib(), 1)
    finally:
        stop.set()
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    return verdict(args, samples, c)


def verdict(args: argparse.Namespace, samples: list[Sample],
            c: Counters) -> dict[str, Any]:
    warm = samples[: max(1, len(samples) // 4)]
    rest = samples[len(warm):] or warm
    # The last sample may hold a backlog (a restart's worth of messages in
    # flight); after the drain and close only what leaked stays.
    growth = c.rss_end_mib - warm[-1].rss_mib
    problems = []
    if growth > args.max_rss_growth_mib:
        problems.append(f"RSS grew {growth:.1f} MiB after warm-up")
    max_threads = max(s.threads for s in warm) + THREAD_MARGIN
    if samples[-1].threads > max_threads:
        problems.append(f"{samples[-1].threads} threads at the end, "
                        f"warm-up peak + margin {max_threads}")
    max_fds = max(s.fds for s in warm) + FD_MARGIN
    if samples[-1].fds > max_fds:
        problems.append(f"{samples[-1].fds} fds at the end, warm-up peak + "
                        f"margin {max_fds}")
    missing = c.acked_not_seen()
    if missing:
        problems.append(f"{missing} acknowledged messages never consumed")
    if c.acked == 0:
        problems.append("nothing was acknowledged")
    return {
        "sent": c.sent, "acked": c.acked, "failed": c.failed,
        "consumed": c.consumed, "distinct_consumed": c.distinct_seen,
        "acked_not_consumed": missing, "errors": c.errors,
        "rss_mib": {"warm": warm[-1].rss_mib, "peak": max(
            s.rss_mib for s in samples), "last_sample": rest[-1].rss_mib,
            "after_close": c.rss_end_mib},
        "rss_growth_mib": round(growth, 1),
        "threads": [min(s.threads for s in samples),
                    max(s.threads for s in samples), samples[-1].threads],
        "fds": [min(s.fds for s in samples), max(s.fds for s in samples),
                samples[-1].fds],
        "lag_p99_ms_max": max(s.lag_p99_ms for s in samples),
        "samples": len(samples), "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.soak",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=int, default=2000,
                    help="messages per second (default 2000)")
    ap.add_argument("--interval", type=float, default=5,
                    help="seconds between samples (default 5)")
    ap.add_argument("--restarts", type=int, default=2,
                    help="broker restarts, with its own broker (default 2)")
    ap.add_argument("--bootstrap", help="use this broker (no restarts)")
    ap.add_argument("--max-rss-growth-mib", type=float, default=64)
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.interval <= 0:
        ap.error("--minutes, --rate and --interval must be positive")
    summary = asyncio.run(soak(args))
    print("SOAK-SUMMARY", json.dumps(summary), flush=True)
    for p in summary["problems"]:
        print("soak: FAILED:", p, file=sys.stderr)
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the AIOConsumer tests (no fixtures here).

Test data is produced, and offsets are checked, with confluent-kafka, an
independent client, so a bug in the consumer under test cannot hide
itself in its own checks.  Message ``i`` of a batch goes to partition
``i % partitions`` with value ``b"v<i>"`` and key ``b"k<i>"``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CKTopicPartition

from aiokafka_c import AIOConsumer, AIOProducer, KafkaException, Message

ROOT = Path(__file__).resolve().parent.parent

#: generous bound for anything that should take a second or two
SLOW = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def consumer_conf(
    bootstrap: str, group: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A consumer config for the real broker: a fresh group, earliest,
    fast heartbeats so rebalances finish in about a second.  ``extra``
    keys use "_" for "." ("enable_auto_commit"); Python-only keys
    (``max_buffer_messages``, ``error_cb`` ...) are passed as they are."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group or unique("g"),
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    python_keys = {
        "error_cb", "stats_cb", "throttle_cb", "logger", "on_commit",
        "max_buffer_messages", "max_buffer_bytes",
    }
    for k, v in extra.items():
        conf[k if k in python_keys else k.replace("_", ".")] = v
    return conf


def produce(
    bootstrap: str,
    topic: str,
    n: int,
    *,
    partitions: int = 1,
    start: int = 0,
    headers: Any = None,
    timestamp: int | None = None,
    value_size: int = 0,
) -> list[tuple[int, int]]:
    """Produces messages start..start+n-1 with confluent-kafka; returns
    their (partition, offset) in that order.  Fails on any error."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000})
    errors: list[Any] = []
    results: list[Any] = [None] * n
    pad = b"x" * value_size
    for j in range(n):
        i = start + j

        def cb(err: Any, msg: Any, j: int = j) -> None:
            if err is not None:
                errors.append(err)
            else:
                results[j] = (msg.partition(), msg.offset())

        kwargs: dict[str, Any] = {}
        if headers is not None:
            kwargs["headers"] = headers(i) if callable(headers) else headers
        if timestamp is not None:
            kwargs["timestamp"] = timestamp + i
        while True:
            try:
                p.produce(topic, b"v%d" % i + pad, key=b"k%d" % i,
                          partition=i % partitions, on_delivery=cb, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        if j % 10000 == 9999:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} messages not delivered"
    assert not errors, errors
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def value_index(msg: Message) -> int:
    """i of a message produced by produce()."""
    v = msg.value()
    assert v is not None and v.startswith(b"v"), v
    return int(v[1:].rstrip(b"x"))


def committed(
    bootstrap: str, group: str, topic: str, partitions: int = 1
) -> dict[int, int]:
    """The group's committed offsets, read with confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed(
            [CKTopicPartition(topic, p) for p in range(partitions)],
            timeout=30)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in tps}


def watermarks(
    bootstrap: str, topic: str, partitions: int = 1
) -> dict[int, tuple[int, int]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    try:
        return {
            p: c.get_watermark_offsets(CKTopicPartition(topic, p),
                                       timeout=30)
            for p in range(partitions)
        }
    finally:
        c.close()


async def take(
    consumer: AIOConsumer, n: int, timeout: float = SLOW
) -> list[Message]:
    """Exactly n messages through consume(); fails on an error message or
    when they do not all arrive within timeout (never hangs)."""
    got: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < n:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"got {len(got)} of {n} messages")
        batch = await asyncio.wait_for(
            consumer.consume(min(n - len(got), 500), min(left, 1.0)),
            left + 10)
        for m in batch:
            err = m.error()
            if err is not None:
                raise KafkaException(err)
        got.extend(batch)
    return got


async def take_until_quiet(
    consumer: AIOConsumer, quiet: float = 1.0, timeout: float = SLOW
) -> list[Message]:
    """Everything until nothing arrives for `quiet` seconds."""
    got: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        batch = await asyncio.wait_for(consumer.consume(500, quiet),
                                       quiet + 30)
        if not batch:
            return got
        for m in batch:
            assert m.error() is None, m.error()
        got.extend(batch)
    raise AssertionError("never quiet")


def by_partition(msgs: Iterable[Message]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for m in msgs:
        p, off = m.partition(), m.offset()
        assert p is not None and off is not None
        out.setdefault(p, []).append(off)
    return out


async def wait_assigned(
    consumer: AIOConsumer, n: int | None = None, timeout: float = SLOW
) -> None:
    """Until assignment() is non-empty (or has n partitions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        a = consumer.assignment()
        if (n is None and a) or (n is not None and len(a) == n):
            return
        if loop.time() > deadline:
            raise AssertionError(f"assignment still {a}")
        await asyncio.sleep(0.02)


# ---- the embedded mock cluster ---------------------------------------------


@asynccontextmanager
async def mock_cluster(**extra: Any) -> AsyncIterator[tuple[AIOProducer, str]]:
    """An AIOProducer owning a librdkafka mock cluster of one broker, and
    that broker's address, for a consumer to connect to like to any
    cluster.  The producer's _mock_set_broker_up() takes it down."""
    stats: list[str] = []
    conf: dict[str, Any] = {
        "test.mock.num.brokers": 1,
        "linger.ms": 0,
        "stats_cb": stats.append,
        "statistics.interval.ms": 100,
    }
    conf.update(extra)
    p = AIOProducer(conf)
    try:
        await asyncio.wait_for(p.produce("warm-up", b"x", partition=0), 30)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        address = None
        while address is None:
            for js in stats:
                for b in json.loads(js)["brokers"].values():
                    if b.get("nodeid") == 1:
                        address = b["nodename"]
            if loop.time() > deadline:
                raise AssertionError("no mock broker address in stats")
            await asyncio.sleep(0.05)
        yield p, address
    finally:
        await p.close(5)


# ---- subprocesses -------------------------------------------------------------


def run_script(
    source: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs source in a fresh interpreter (dev mode) from the repository
    root, so the aiokafka_c of this tree is imported.  A hang fails the
    test (TimeoutExpired) instead of blocking it."""
    return subprocess.run(
        [sys.executable, "-X", "dev", "-X", "faulthandler", "-c",
         textwrap.dedent(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def assert_clean_exit(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    for bad in ("Fatal Python error", "Segmentation", "Traceback",
                "AddressSanitizer", "Assertion"):
        assert bad not in r.stderr, r.stderr


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def monotonic() -> float:
    return time.monotonic()
